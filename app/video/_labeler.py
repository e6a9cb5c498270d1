"""The public :class:`Labeler`: the models' photo labeller with the video pipeline's two methods added.

The photo side (:class:`app.models.Labeler`) sits below video in the layers, so it cannot name the pipeline;
this subclass, one layer up, can. ``from app import Labeler`` gives this class: one object labels photos and
videos, as the API always did.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from app import models
from app.video._pipeline import VideoFrame, VideoOptions, label_video


class Labeler(models.Labeler):
    """Every model of a zoo, loaded once, for photos and videos (:class:`app.models.Labeler` has the options).

    Examples:
        >>> from app import Labeler
        >>> labeler = Labeler()                        # the default zoo, Haar faces verified by eyes
        >>> result = labeler.label_image(sample_photo)  # a path, or an RGB/gray numpy array
        >>> [(f.index, f.ensemble.label) for f in result.faces]
        [(1, 'happy')]
    """

    def video_options(self, **changes: object) -> VideoOptions:
        """:class:`app.video.VideoOptions` with this labeler's detector, eye check and TTA, plus ``changes``
        (e.g. ``fps=5``, ``detect_every=1``, ``smooth_s=0``)."""
        base = {"detector": self.detector, "eye_check": self.eye_check, "tta": self.tta}
        return VideoOptions(**{**base, **changes})  # type: ignore[arg-type]

    def label_video(self, path: str | os.PathLike, opts: VideoOptions | None = None, state: dict | None = None,
                    keep_rgb: bool = False) -> Iterator[VideoFrame]:
        """Label a video file frame by frame with tracked faces.

        Yields one :class:`app.video.VideoFrame` per analysed frame: its index, presentation time and,
        per face, the track number, box, each model's label, the raw ensemble and the smoothed ensemble.
        ``opts`` defaults to :meth:`video_options`; ``state`` (a ``VideoFrame.state``) resumes a run after the
        frame it was saved at. Raises :class:`app.video.VideoError` (a ``ValueError``) for a file that cannot
        be read.

        Examples:
            >>> frames = list(labeler.label_video(sample_clip, labeler.video_options(fps=10)))
            >>> sorted({face.track for frame in frames for face in frame.faces})
            [1]
        """
        return label_video(self, path, opts or self.video_options(), state, keep_rgb)

