"""What users keep: labels.csv, frames.csv, tracks.csv, timelines, annotated pictures and videos, saliency
pictures, and the encoding every CSV and JSON file shares.
"""

from typing import TYPE_CHECKING

from app.core._lazy import attach

_EXPORTS = {
    "LABEL_BG": "_annotate",
    "SEP": "_annotate",
    "SEP_COLOR": "_annotate",
    "annotate": "_annotate",
    "color": "_annotate",
    "label_parts": "_annotate",
    "number_prefix": "_annotate",
    "save_image": "_annotate",
    "tag_text": "_annotate",
    "text_color": "_annotate",
    "ENCODING": "_csv",
    "ERRORS": "_csv",
    "csv_text": "_csv",
    "json_text": "_csv",
    "read_rows": "_csv",
    "FramesAppender": "_frames_csv",
    "FramesRecorder": "_frames_csv",
    "KEY_COLUMNS": "_frames_csv",
    "frame_rows": "_frames_csv",
    "frames_bytes": "_frames_csv",
    "frames_header": "_frames_csv",
    "header_size": "_frames_csv",
    "rows_as_dicts": "_frames_csv",
    "labels_header": "_labels_csv",
    "photo_rows": "_labels_csv",
    "ANNOTATED": "_layout",
    "EXPLAINED": "_layout",
    "FRAMES": "_layout",
    "JOURNAL": "_layout",
    "LABELS": "_layout",
    "OWN_FILES": "_layout",
    "OutputLayout": "_layout",
    "SUMMARY": "_layout",
    "TIMELINES": "_layout",
    "TRACKS": "_layout",
    "VIDEOS": "_layout",
    "VIDEO_PROGRESS": "_layout",
    "Placement": "_placement",
    "place_labels": "_placement",
    "place_popup": "_placement",
    "face_strip": "_saliency_pictures",
    "overlay": "_saliency_pictures",
    "Series": "_timeline",
    "plot_area": "_timeline",
    "time_at": "_timeline",
    "track_chart": "_timeline",
    "write_annotated": "_video_annotate",
    "HOLD_MAX_S": "_video_rows",
    "TrackStats": "_video_rows",
    "read_video_series": "_video_rows",
    "track_rows": "_video_rows",
    "tracks_header": "_video_rows",
    "video_series": "_video_rows",
    "write_timelines": "_video_rows",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers and import-linter
    from app.outputs._annotate import LABEL_BG as LABEL_BG
    from app.outputs._annotate import SEP as SEP
    from app.outputs._annotate import SEP_COLOR as SEP_COLOR
    from app.outputs._annotate import annotate as annotate
    from app.outputs._annotate import color as color
    from app.outputs._annotate import label_parts as label_parts
    from app.outputs._annotate import number_prefix as number_prefix
    from app.outputs._annotate import save_image as save_image
    from app.outputs._annotate import tag_text as tag_text
    from app.outputs._annotate import text_color as text_color
    from app.outputs._csv import ENCODING as ENCODING
    from app.outputs._csv import ERRORS as ERRORS
    from app.outputs._csv import csv_text as csv_text
    from app.outputs._csv import json_text as json_text
    from app.outputs._csv import read_rows as read_rows
    from app.outputs._frames_csv import KEY_COLUMNS as KEY_COLUMNS
    from app.outputs._frames_csv import FramesAppender as FramesAppender
    from app.outputs._frames_csv import FramesRecorder as FramesRecorder
    from app.outputs._frames_csv import frame_rows as frame_rows
    from app.outputs._frames_csv import frames_bytes as frames_bytes
    from app.outputs._frames_csv import frames_header as frames_header
    from app.outputs._frames_csv import header_size as header_size
    from app.outputs._frames_csv import rows_as_dicts as rows_as_dicts
    from app.outputs._labels_csv import labels_header as labels_header
    from app.outputs._labels_csv import photo_rows as photo_rows
    from app.outputs._layout import ANNOTATED as ANNOTATED
    from app.outputs._layout import EXPLAINED as EXPLAINED
    from app.outputs._layout import FRAMES as FRAMES
    from app.outputs._layout import JOURNAL as JOURNAL
    from app.outputs._layout import LABELS as LABELS
    from app.outputs._layout import OWN_FILES as OWN_FILES
    from app.outputs._layout import SUMMARY as SUMMARY
    from app.outputs._layout import TIMELINES as TIMELINES
    from app.outputs._layout import TRACKS as TRACKS
    from app.outputs._layout import VIDEO_PROGRESS as VIDEO_PROGRESS
    from app.outputs._layout import VIDEOS as VIDEOS
    from app.outputs._layout import OutputLayout as OutputLayout
    from app.outputs._placement import Placement as Placement
    from app.outputs._placement import place_labels as place_labels
    from app.outputs._placement import place_popup as place_popup
    from app.outputs._saliency_pictures import face_strip as face_strip
    from app.outputs._saliency_pictures import overlay as overlay
    from app.outputs._timeline import Series as Series
    from app.outputs._timeline import plot_area as plot_area
    from app.outputs._timeline import time_at as time_at
    from app.outputs._timeline import track_chart as track_chart
    from app.outputs._video_annotate import write_annotated as write_annotated
    from app.outputs._video_rows import HOLD_MAX_S as HOLD_MAX_S
    from app.outputs._video_rows import TrackStats as TrackStats
    from app.outputs._video_rows import read_video_series as read_video_series
    from app.outputs._video_rows import track_rows as track_rows
    from app.outputs._video_rows import tracks_header as tracks_header
    from app.outputs._video_rows import video_series as video_series
    from app.outputs._video_rows import write_timelines as write_timelines
