"""Every file and folder a run writes under its output folder, named in one place.

The batch command, the cluster, the window's folder labelling and video export, the folder scanner (which skips
the run's own outputs) and the tests all take the names from here, so a name cannot differ between the writer
and the reader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LABELS = "labels.csv"  # one row per face of a photo (app.outputs.photo_rows)
SUMMARY = "summary.json"  # the run: settings, counts, every skipped or bad file with its reason
JOURNAL = ".progress.jsonl"  # one line per finished image; what --resume trusts
FRAMES = "frames.csv"  # one row per tracked face per analysed frame (app.outputs.frame_rows)
TRACKS = "tracks.csv"  # one row per track (app.outputs.track_rows)
TIMELINES = "timelines"  # the charts of each video's tracks
ANNOTATED = "annotated"  # --annotate: copies with boxes and labels, mirroring the input tree
EXPLAINED = "explained"  # --explain: one PNG of saliency maps per face
VIDEO_PROGRESS = ".video-progress.json"  # the video in progress: its state and frames.csv's size after it
VIDEOS = ".videos.jsonl"  # one line per finished video
OWN_FILES = (LABELS, SUMMARY, FRAMES, TRACKS)  # what a rerun's folder scan must not take as input


@dataclass(frozen=True)
class OutputLayout:
    """The paths of one output folder: ``OutputLayout(out).frames`` is ``out / "frames.csv"``."""

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def labels(self) -> Path:
        return self.root / LABELS

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL

    @property
    def frames(self) -> Path:
        return self.root / FRAMES

    @property
    def tracks(self) -> Path:
        return self.root / TRACKS

    @property
    def timelines(self) -> Path:
        return self.root / TIMELINES

    @property
    def annotated(self) -> Path:
        return self.root / ANNOTATED

    @property
    def explained(self) -> Path:
        return self.root / EXPLAINED

    @property
    def video_progress(self) -> Path:
        return self.root / VIDEO_PROGRESS

    @property
    def videos(self) -> Path:
        return self.root / VIDEOS
