"""Videos and live sources: decoding (PyAV), truncation checks, shot cuts, the face tracker, label smoothing,
the one labelling pipeline over frames, and live cameras.
"""

from typing import TYPE_CHECKING

from app.core._lazy import attach

_EXPORTS = {
    "Frame": "_decode",
    "FrameTable": "_decode",
    "MAX_SIDE": "_decode",
    "VIDEO_SUFFIXES": "_decode",
    "VideoError": "_decode",
    "VideoInfo": "_decode",
    "frame_at": "_decode",
    "frame_table": "_decode",
    "frames": "_decode",
    "is_video": "_decode",
    "probe": "_decode",
    "sampled": "_decode",
    "Labeler": "_labeler",
    "LiveError": "_live",
    "LiveStats": "_live",
    "open_source": "_live",
    "run_live": "_live",
    "TrackFace": "_pipeline",
    "VideoFrame": "_pipeline",
    "VideoOptions": "_pipeline",
    "label_frames": "_pipeline",
    "label_video": "_pipeline",
    "sample_clip": "_sample_clip",
    "SMOOTH_S": "_smooth",
    "DETECT_EVERY": "_track",
    "FrameTracks": "_track",
    "TrackingRun": "_track",
    "assign": "_track",
    "iou": "_track",
    "track_frames": "_track",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers and import-linter
    from app.video._decode import MAX_SIDE as MAX_SIDE
    from app.video._decode import VIDEO_SUFFIXES as VIDEO_SUFFIXES
    from app.video._decode import Frame as Frame
    from app.video._decode import FrameTable as FrameTable
    from app.video._decode import VideoError as VideoError
    from app.video._decode import VideoInfo as VideoInfo
    from app.video._decode import frame_at as frame_at
    from app.video._decode import frame_table as frame_table
    from app.video._decode import frames as frames
    from app.video._decode import is_video as is_video
    from app.video._decode import probe as probe
    from app.video._decode import sampled as sampled
    from app.video._labeler import Labeler as Labeler
    from app.video._live import LiveError as LiveError
    from app.video._live import LiveStats as LiveStats
    from app.video._live import open_source as open_source
    from app.video._live import run_live as run_live
    from app.video._pipeline import TrackFace as TrackFace
    from app.video._pipeline import VideoFrame as VideoFrame
    from app.video._pipeline import VideoOptions as VideoOptions
    from app.video._pipeline import label_frames as label_frames
    from app.video._pipeline import label_video as label_video
    from app.video._sample_clip import sample_clip as sample_clip
    from app.video._smooth import SMOOTH_S as SMOOTH_S
    from app.video._track import DETECT_EVERY as DETECT_EVERY
    from app.video._track import FrameTracks as FrameTracks
    from app.video._track import TrackingRun as TrackingRun
    from app.video._track import assign as assign
    from app.video._track import iou as iou
    from app.video._track import track_frames as track_frames
