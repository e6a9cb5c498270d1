"""Emotion-over-time charts of a video's tracks: one per track, one overview per video.

Drawn with Pillow, which the app already ships for its annotations, instead of matplotlib: the bundle is
within a few MB of its budget once the video decoder is in, and matplotlib (excluded from the bundle by
name, build.spec) would add ~40 MB for seven polylines and an axis. The window's player draws the same chart
below the video, with a cursor at the current time (:func:`track_chart`'s ``cursor_s``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from app.core import COLORS, EMOTIONS
from app.outputs._annotate import _font

BACKGROUND = (255, 255, 255)
GRID = (225, 225, 225)
INK = (40, 40, 40)
MAX_POINTS = 2000  # a track's series is thinned to this many points: an hour at 30 fps stays a small chart


@dataclass
class Series:
    """One track's smoothed probabilities over time: ``times`` (N,) seconds, ``probs`` (N, 7)."""

    track: int
    times: np.ndarray
    probs: np.ndarray
    thumbnail: np.ndarray | None = None  # a 48x48 grey crop of the face

    def thinned(self, max_points: int = MAX_POINTS) -> Series:
        if len(self.times) <= max_points:
            return self
        idx = np.linspace(0, len(self.times) - 1, max_points).round().astype(int)
        return Series(self.track, self.times[idx], self.probs[idx], self.thumbnail)


def _axes(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], t0: float, t1: float, font) -> None:  # noqa: ANN001
    x0, y0, x1, y1 = box
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y1 - q * (y1 - y0)
        draw.line((x0, y, x1, y), fill=GRID)
        draw.text((x0 - 4, y), f"{q:.2f}".rstrip("0").rstrip(".") if q not in (0.0, 1.0) else f"{q:.0f}",
                  fill=INK, font=font, anchor="rm")
    span = max(t1 - t0, 1e-6)
    step = next(s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 1e9) if span / s <= 8)
    t = np.ceil(t0 / step) * step
    while t <= t1 + 1e-9:
        x = x0 + (t - t0) / span * (x1 - x0)
        draw.line((x, y0, x, y1), fill=GRID)
        draw.text((x, y1 + 4), _clock(t), fill=INK, font=font, anchor="mt")
        t += step
    draw.rectangle(box, outline=INK)


def _clock(t: float) -> str:
    m, s = divmod(t, 60)
    return f"{int(m)}:{s:04.1f}" if t < 600 and s != int(s) else f"{int(m)}:{int(s):02d}"


def plot_area(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The chart's plotting rectangle in an image of ``size``: where time maps to x (the window's seek)."""
    w, h = size
    return 44, 26, w - 12 - (0 if w < 420 else 70), h - 24


def time_at(x: float, size: tuple[int, int], t0: float, t1: float) -> float:
    """The time under pixel column ``x`` of a chart drawn at ``size`` over ``[t0, t1]``: a click seeks there."""
    x0, _, x1, _ = plot_area(size)
    return t0 + min(1.0, max(0.0, (x - x0) / max(1, x1 - x0))) * (t1 - t0)


def track_chart(series: Series, size: tuple[int, int] = (900, 260), span: tuple[float, float] | None = None,
                cursor_s: float | None = None, title: str | None = None) -> Image.Image:
    """The seven smoothed probabilities of one track against time, in the app's emotion colours, with the
    face's thumbnail and a legend; ``span`` fixes the time axis (the video's), ``cursor_s`` draws a cursor."""
    s = series.thinned()
    im = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(im)
    font = _font(11)
    box = plot_area(size)
    x0, y0, x1, y1 = box
    t0, t1 = span if span else (float(s.times[0]), float(s.times[-1])) if len(s.times) else (0.0, 1.0)
    if t1 <= t0:
        t1 = t0 + 1.0
    _axes(draw, box, t0, t1, font)
    if len(s.times):
        xs = x0 + (s.times - t0) / (t1 - t0) * (x1 - x0)
        # a gap longer than a second (the face out of view) breaks the line instead of bridging it
        breaks = np.flatnonzero(np.diff(s.times) > 1.0) + 1
        for k, emotion in enumerate(EMOTIONS):
            ys = y1 - s.probs[:, k] * (y1 - y0)
            for seg in np.split(np.arange(len(xs)), breaks):
                pts = list(zip(xs[seg].tolist(), ys[seg].tolist(), strict=True))
                if len(pts) > 1:
                    draw.line(pts, fill=COLORS[emotion], width=2)
                elif pts:
                    draw.point(pts, fill=COLORS[emotion])
    if cursor_s is not None and t0 <= cursor_s <= t1:
        cx = x0 + (cursor_s - t0) / (t1 - t0) * (x1 - x0)
        draw.line((cx, y0, cx, y1), fill=INK, width=2)
    draw.text((x0, 6), title or f"track {series.track}", fill=INK, font=_font(13))
    if size[0] >= 420:  # legend and thumbnail at the right
        lx = x1 + 10
        for k, emotion in enumerate(EMOTIONS):
            y = y0 + 4 + 14 * k
            draw.rectangle((lx, y, lx + 9, y + 9), fill=COLORS[emotion])
            draw.text((lx + 13, y + 5), emotion, fill=INK, font=font, anchor="lm")
        if s.thumbnail is not None and y0 + 14 * 7 + 56 < y1 + 20:
            thumb = Image.fromarray(np.asarray(s.thumbnail, np.uint8)).convert("RGB").resize((48, 48))
            im.paste(thumb, (lx, y0 + 14 * 7 + 8))
    return im


def overview_chart(tracks: list[Series], span: tuple[float, float], width: int = 900, row: int = 34,
                   title: str = "") -> Image.Image:
    """One band per track: its smoothed label through the video as coloured stretches (the label it holds),
    so who felt what when is one picture."""
    font = _font(11)
    h = 30 + row * max(1, len(tracks)) + 24
    im = Image.new("RGB", (width, h), BACKGROUND)
    draw = ImageDraw.Draw(im)
    x0, x1 = 70, width - 12
    t0, t1 = span
    if t1 <= t0:
        t1 = t0 + 1.0
    draw.text((x0, 6), title, fill=INK, font=_font(13))
    for i, s in enumerate(tracks):
        y = 30 + i * row
        draw.text((x0 - 6, y + row / 2), f"track {s.track}", fill=INK, font=font, anchor="rm")
        if not len(s.times):
            continue
        labels = s.probs.argmax(1)
        ends = np.append(s.times[1:], s.times[-1] + (np.median(np.diff(s.times)) if len(s.times) > 1 else 0.1))
        for t_a, t_b, k in zip(s.times, ends, labels, strict=True):
            t_b = min(t_b, t_a + 1.0)  # out of view for longer than a second: left blank
            xa = x0 + (t_a - t0) / (t1 - t0) * (x1 - x0)
            xb = x0 + (t_b - t0) / (t1 - t0) * (x1 - x0)
            draw.rectangle((xa, y + 4, max(xa + 1, xb), y + row - 4), fill=COLORS[EMOTIONS[int(k)]])
    y = 30 + row * max(1, len(tracks)) + 4
    lx = x0
    for emotion in EMOTIONS:
        draw.rectangle((lx, y, lx + 9, y + 9), fill=COLORS[emotion])
        draw.text((lx + 13, y + 5), emotion, fill=INK, font=font, anchor="lm")
        lx += 20 + int(draw.textlength(emotion, font=font)) + 10
    draw.text((x1, y + 5), f"{_clock(t0)} - {_clock(t1)}", fill=INK, font=font, anchor="rm")
    return im
