"""The batch command's videos: frames.csv, tracks.csv, timelines/ and annotated videos, with exact resume.

Videos are labelled one after the other in the batch's own process (a video's frames depend on each other
through tracking and smoothing, so one video is one task; ``--workers`` processes serve the photos).

How a kill is survived (``kill -9`` included): each video's rows are appended to frames.csv in chunks; after
each chunk (at most every ``CHECKPOINT_S`` seconds) ``.video-progress.json`` records the video, the labelling
state after the chunk's last frame (tracker, cut detector, smoother: app.video._pipeline) and frames.csv's size
at that point. ``--resume`` cuts frames.csv back to that size and continues decoding after that frame with
that state, so every analysed frame appears exactly once and tracks keep their numbers across the resume.
A finished video gets a line in ``.videos.jsonl`` (its frames.csv end, its tracks, any error); tracks.csv
and the charts are then rebuilt from the rows on disk, so a resumed video's outputs equal an uninterrupted
run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.batch._scan import ANNOTATED, Item
from app.core import atomic_path, key, shown, write_text
from app.outputs import (
    ENCODING,
    ERRORS,
    FRAMES,
    TIMELINES,
    TRACKS,
    VIDEO_PROGRESS,
    VIDEOS,
    FramesAppender,
    csv_text,
    frame_rows,
    frames_bytes,
    frames_header,
    header_size,
    read_video_series,
    track_rows,
    tracks_header,
    write_timelines,
)
from app.video import VideoError, VideoOptions, label_video

if TYPE_CHECKING:
    from app.models import Labeler

CHECKPOINT_S = 1.0  # at most this much labelling is redone after a kill; a checkpoint costs ~1 ms


@dataclass
class VideoOutputs:
    """The video outputs of one --out folder, as :func:`prepare_videos` left them."""

    out_dir: Path
    header: list[str]
    done: dict[str, dict]  # finished videos by key
    progress: dict | None  # the video in progress when the last run stopped


def _read_jsonl(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line: the video is labelled again from its checkpoint
            if isinstance(rec, dict) and "key" in rec:
                done[rec["key"]] = rec
    return done


def prepare_videos(out_dir: Path, labeler: Labeler, resume: bool) -> VideoOutputs:
    """Start frames.csv afresh, or on resume keep the finished videos' rows and the in-progress video's rows up
    to its last checkpoint (cutting off anything written after it)."""
    from app.core import write_bytes

    header = frames_header(labeler.models)
    frames_csv, videos, progress_file = out_dir / FRAMES, out_dir / VIDEOS, out_dir / VIDEO_PROGRESS
    done: dict[str, dict] = {}
    progress = None
    if resume and frames_csv.exists():
        with open(frames_csv, encoding=ENCODING, errors=ERRORS, newline="") as f:
            first = f.readline().rstrip("\r\n")
        if first and first.split(",") != header:
            from app.batch._journal import UsageError

            raise UsageError(f"{frames_csv}: written with other models; resume with the same --zoo or choose a new "
                             "--out")
        done = {k: v for k, v in _read_jsonl(videos).items() if not v.get("retry")}
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            progress = json.loads(progress_file.read_text(encoding="utf-8"))
        if progress is not None and progress.get("key") in done:
            progress = None
        ends = [int(v.get("frames_end", 0)) for v in done.values()]
        keep = max([*ends, int(progress["frames_bytes"]) if progress else 0])
        size = frames_csv.stat().st_size
        if keep == 0:
            keep = header_size(labeler.models)
        if keep < size:
            os.truncate(frames_csv, keep)
    else:
        write_bytes(frames_csv, frames_bytes(labeler.models, []))
        write_bytes(videos, b"")
        with contextlib.suppress(FileNotFoundError):
            progress_file.unlink()
    if not resume:
        _write_tracks(out_dir, {})
    return VideoOutputs(out_dir, header, done, progress)


def _write_tracks(out_dir: Path, done: dict[str, dict]) -> None:
    rows = [tracks_header()] + [r for v in done.values() for r in v.get("tracks", [])]
    write_text(out_dir / TRACKS, csv_text(rows))


def annotated_video_path(out_dir: Path, item: Item) -> Path:
    """annotated/<its place in the input tree>.mp4: an MP4 whatever the source container."""
    return out_dir / ANNOTATED / item.rel.with_suffix(".mp4")


def timelines_dir(out_dir: Path, item: Item) -> Path:
    """timelines/<its place in the input tree, suffix and all>/: one folder of charts per video."""
    return out_dir / TIMELINES / item.rel


def label_one_video(labeler: Labeler, item: Item, outs: VideoOutputs, opts: VideoOptions, annotate: bool = False,
                    should_stop: Callable[[], bool] = lambda: False,
                    progress: Callable[[int, int | None, float], None] | None = None) -> dict | None:
    """Label one video into frames.csv (continuing from its checkpoint if the last run stopped in it), then
    write its tracks.csv rows, charts and, with ``annotate``, the annotated copy. Returns its record, or None
    when ``should_stop`` stopped it (its checkpoint then lets ``--resume`` continue)."""
    from app.video import probe

    out_dir, k = outs.out_dir, key(item.path)
    name = str(item.path)
    state = outs.progress["state"] if outs.progress and outs.progress.get("key") == k else None
    frames_csv = out_dir / FRAMES
    start_bytes = int(outs.progress.get("start_bytes", 0)) if state else frames_csv.stat().st_size
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"key": k, "video": name, "frames": 0, "tracks": [], "error": None}
    try:
        info = probe(item.path, max_side=opts.max_side)
    except VideoError as e:
        rec["error"] = e.reason
        rec["retry"] = True  # nothing was written: a resumed run tries it again
        return rec
    rec.update(width=info.source_width, height=info.source_height, duration_s=info.duration_s, fps=info.fps)
    stopped = False
    out = FramesAppender(frames_csv)
    try:
        pending: list[list[Any]] = []
        last_checkpoint = time.monotonic()
        done_frames = int(outs.progress.get("frames", 0)) if state else 0
        total = info.frames
        if opts.fps and info.duration_s:
            total = int(info.duration_s * opts.fps) + 1
        try:
            for vf in label_video(labeler, item.path, opts, state):
                pending += frame_rows(name, vf, labeler.models)
                _save_thumbnails(timelines_dir(out_dir, item), vf)
                done_frames += 1
                if vf.state is not None:
                    size = out.append(pending)
                    pending = []
                    stopped = should_stop()
                    if stopped or time.monotonic() - last_checkpoint >= CHECKPOINT_S:
                        out.sync()  # the rows are on disk before the checkpoint that counts them
                        write_text(out_dir / VIDEO_PROGRESS, json.dumps(
                            {"key": k, "state": vf.state, "frames_bytes": size,
                             "start_bytes": start_bytes, "frames": done_frames}))
                        last_checkpoint = time.monotonic()
                    if stopped:
                        break
                if progress is not None:
                    progress(done_frames, total, vf.time_s)
        except VideoError as e:  # the frames before the damage are in; say where it stopped
            rec["error"] = e.reason
            if done_frames == 0:
                rec["retry"] = True
        end = out.append(pending)
        out.sync()
    finally:
        out.close()
    if stopped:
        return None
    rec["frames"] = done_frames
    rec["frames_end"] = end
    write_video_outputs(labeler, item, out_dir, rec, info.duration_s, start_bytes, opts, annotate)
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


def write_video_outputs(labeler: Labeler, item: Item, out_dir: Path, rec: dict, duration_s: float | None,
                        start_bytes: int, opts: VideoOptions, annotate: bool) -> None:
    """A video's tracks (into ``rec``), charts and annotated copy, all from its frames.csv rows between
    ``start_bytes`` and ``rec["frames_end"]``: built from the rows on disk, so a resumed or stitched video's
    outputs are those of its rows (app.batch._cluster writes a segmented video's rows, then calls this)."""
    frames_csv, name, end = out_dir / FRAMES, str(item.path), int(rec["frames_end"])
    series = read_video_series(frames_csv, name, start_bytes, end)
    rec["tracks"] = track_rows(name, series)
    span = (0.0, float(duration_s or max((t[-1] for t, _ in series.values()), default=1.0)))
    try:
        if series:
            write_timelines(timelines_dir(out_dir, item), item.path.name, series, span,
                            _thumbnails(timelines_dir(out_dir, item)))
    except OSError as e:
        rec["timeline_error"] = f"cannot write charts ({e.strerror or e})"
    if annotate and rec["frames"]:
        from app.outputs import write_annotated

        try:
            note = write_annotated(item.path, annotated_video_path(out_dir, item), frames_csv, name, start_bytes,
                                   end, labeler, opts.max_side)
            if note:
                rec["annotate_note"] = note
        except (OSError, VideoError, ValueError) as e:
            rec["annotate_error"] = str(getattr(e, "reason", None) or e)


def _thumb_path(folder: Path, track: int) -> Path:
    return folder / f"track{track}_face.png"


def _save_thumbnails(folder: Path, vf) -> None:  # noqa: ANN001 - VideoFrame
    """A track's face crop, saved the first frame the detector finds it: the chart's thumbnail. Written at once
    (a few hundred bytes), so a resumed run still has the faces of tracks that ended before the kill."""
    for f in vf.faces:
        path = _thumb_path(folder, f.track)
        if f.detected and not path.exists():
            save_thumbnail(folder, f.track, thumbnail_png(f.crop))


def thumbnail_png(crop: Any) -> bytes:
    """A face crop as the PNG bytes of its chart thumbnail (a cluster worker sends these to the client)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG")
    return buf.getvalue()


def save_thumbnail(folder: Path, track: int, png: bytes) -> None:
    """Write track ``track``'s thumbnail unless it has one (the first detection's face is kept)."""
    path = _thumb_path(folder, track)
    if path.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(png)


def _thumbnails(folder: Path) -> dict[int, Any]:
    import numpy as np
    from PIL import Image

    out = {}
    for p in folder.glob("track*_face.png"):
        with contextlib.suppress(OSError, ValueError):
            out[int(p.name[5:-9])] = np.asarray(Image.open(p).convert("L"))
    return out


def finish_video(outs: VideoOutputs, rec: dict) -> None:
    """Record a finished video: its journal line, then tracks.csv with every finished video's tracks."""
    with open(outs.out_dir / VIDEOS, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())
    outs.done[rec["key"]] = rec
    outs.progress = None
    with contextlib.suppress(FileNotFoundError):
        (outs.out_dir / VIDEO_PROGRESS).unlink()
    _write_tracks(outs.out_dir, {k: v for k, v in outs.done.items() if not v.get("retry")})


def label_videos(labeler: Labeler, items: list[Item], outs: VideoOutputs, opts: VideoOptions, annotate: bool,
                 should_stop: Callable[[], bool], log: Callable[[str], None] | None = None,
                 progress: Callable[[int, int | None, float], None] | None = None,
                 started: Callable[[Item], None] | None = None) -> tuple[list[dict], bool]:
    """Every video of ``items`` not already done; returns this run's records and whether it stopped early."""
    records = []
    for it in items:
        if key(it.path) in outs.done:
            continue
        if should_stop():
            return records, True
        if started is not None:
            started(it)
        rec = label_one_video(labeler, it, outs, opts, annotate, should_stop, progress)
        if rec is None:
            return records, True
        if rec.get("error") and log is not None:
            log(f"{'skipped' if rec.get('retry') else 'stopped early'}: {shown(it.path)}: {rec['error']}")
        finish_video(outs, rec)
        records.append(rec)
    return records, False


def video_summary(outs: VideoOutputs, items: list[Item]) -> dict:
    """summary.json's ``videos`` section over every video of this folder (earlier resumed runs included)."""
    current = {key(it.path) for it in items}
    recs = [v for k, v in outs.done.items() if k in current]
    ok = [r for r in recs if not r.get("error")]
    return {
        "videos": len(items),
        "done": len(recs),
        "frames": sum(int(r.get("frames", 0)) for r in recs),
        "tracks": sum(len(r.get("tracks", [])) for r in recs),
        "labelled": sum(1 for r in ok if r.get("tracks")),
        "errors": [{"video": r["video"], "reason": r["error"], "frames_kept": int(r.get("frames", 0))}
                   for r in recs if r.get("error")],
        "annotate_errors": [{"video": r["video"], "reason": r["annotate_error"]} for r in recs
                            if r.get("annotate_error")],
        "annotate_notes": [{"video": r["video"], "note": r["annotate_note"]} for r in recs if r.get("annotate_note")],
    }
