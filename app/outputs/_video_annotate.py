"""``--annotate`` for videos: an MP4 copy with each tracked face's box, track number and labels drawn in the
app's colours and placement rules (app.outputs._annotate), the source's audio kept.

Drawn in a second pass from the rows already in frames.csv rather than while labelling: the copy is then
the same whether the labelling ran in one go or was resumed three times, and labelling never waits on the
encoder. The pass decodes the video again (about 1 ms a frame at 360p) and reads frames.csv in step with
it, so memory stays flat. Frames that were not analysed (``--fps`` sampling) show the last analysed frame's
boxes for up to ``HOLD_S``.

Audio: the video is encoded first (H.264, the frames' own presentation times, so variable frame rates stay
as they were), then its packets and the source's audio packets are interleaved by time into the final file
without re-encoding. An audio codec MP4 cannot hold is left out with a note (``AudioNotKept``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from app.core import Box, EmotionLensError, Prediction, ShownFace, atomic_path
from app.outputs._frames_csv import read_frame_rows
from app.video import VideoError, frames, probe

if TYPE_CHECKING:
    from app.models import Labeler

HOLD_S = 1.0
TIME_BASE = Fraction(1, 90000)  # MPEG's clock: exact for 24, 25, 30 and 29.97 fps alike


class AudioNotKept(EmotionLensError, ValueError):
    """The annotated video was written without the source's audio; the message says why."""


def _rows(frames_csv: Path, video: str, start: int, end: int) -> Iterator[tuple[int, list[dict[str, str]]]]:
    """(frame index, that frame's rows by column name) of ``video`` in frames.csv's byte range, in order."""
    current, rows = None, []
    for row in read_frame_rows(frames_csv, video, start, end):
        idx = int(row["frame"])
        if idx != current and rows:
            yield current, rows
            rows = []
        current = idx
        rows.append(row)
    if rows:
        yield current, rows


def _shown(rows: list[dict[str, str]], labeler: Labeler, scale: float) -> list[ShownFace]:
    """The frame's tracks as the annotator draws them: numbered by track, tagged with the smoothed label."""
    faces = []
    for r in rows:
        box = Box(*(round(int(r[c]) * scale) for c in ("x", "y", "w", "h")))
        preds = {m.name: Prediction(None, r[f"{m.name}_label"], float(r[f"{m.name}_confidence"]))
                 for m in labeler.models}
        smooth = r["smooth_label"]
        faces.append(ShownFace(int(r["track"]), box, preds, Prediction(None, smooth, float(r[f"p_{smooth}"]))))
    return faces


def write_annotated(src: str | os.PathLike, dst: str | os.PathLike, frames_csv: Path, video: str, start: int,
                    end: int, labeler: Labeler, max_side: int) -> str | None:
    """Write the annotated copy of ``src`` to ``dst`` (atomically); returns a note when audio was left out."""
    import av

    from app.core import temp_name
    from app.outputs._annotate import annotate

    info = probe(src, max_side=max_side)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    names = {m.name: m.display_name for m in labeler.models}
    scale = info.scale
    w, h = info.width - info.width % 2, info.height - info.height % 2  # H.264 in 4:2:0 wants even sides
    rows = _rows(frames_csv, video, start, end)
    pending = next(rows, None)
    shown, shown_t = None, -1.0
    tmp_video = temp_name(dst.with_suffix(".video.mp4"))
    try:
        with av.open(str(tmp_video), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=max(1, round(info.fps or 30)))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.time_base = TIME_BASE
            stream.options = {"preset": "veryfast", "crf": "20"}
            last_pts = -1
            try:
                for fr in frames(src, max_side=max_side):
                    while pending is not None and pending[0] < fr.index:
                        pending = next(rows, None)
                    if pending is not None and pending[0] == fr.index:
                        shown, shown_t = _shown(pending[1], labeler, scale), fr.time_s
                        pending = next(rows, None)
                    elif fr.time_s - shown_t > HOLD_S:
                        shown = None
                    rgb = fr.rgb[:h, :w]
                    if shown is not None:
                        rgb = annotate(rgb, shown, names)
                    vframe = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    pts = max(last_pts + 1, round(fr.time_s / TIME_BASE))
                    vframe.pts, vframe.time_base, last_pts = pts, TIME_BASE, pts
                    for packet in stream.encode(vframe):
                        out.mux(packet)
            except VideoError:
                pass  # a damaged source: the copy ends where its labels end
            for packet in stream.encode():
                out.mux(packet)
        note = None
        if info.has_audio:
            try:
                with atomic_path(dst) as tmp:
                    _mux_with_audio(tmp_video, src, tmp)
                return None
            except (av.FFmpegError, ValueError, OSError) as e:
                note = f"audio not kept ({' '.join(str(e).split())[:120]})"
        os.replace(tmp_video, dst)
        return note
    finally:
        tmp_video.unlink(missing_ok=True)


def _mux_with_audio(video_file: Path, src: str | os.PathLike, dst: Path) -> None:
    """Interleave ``video_file``'s packets with ``src``'s first audio stream's packets into ``dst``, by time."""
    import heapq

    import av

    with av.open(str(video_file)) as vin, av.open(str(src)) as ain, av.open(str(dst), "w", format="mp4") as out:
        vs, aus = vin.streams.video[0], ain.streams.audio[0]
        ov = out.add_stream_from_template(vs)
        oa = out.add_stream_from_template(aus)

        def packets(container, stream, target):  # noqa: ANN001, ANN202
            for p in container.demux(stream):
                if p.dts is None or p.size == 0:
                    continue
                yield float(p.dts * p.time_base), id(p), p, target

        for _, _, p, target in heapq.merge(packets(vin, vs, ov), packets(ain, aus, oa), key=lambda x: x[0]):
            p.stream = target
            out.mux(p)
