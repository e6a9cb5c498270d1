"""Is a video file shorter than its own header says? The container's size fields against the file's size.

FFmpeg reads a cut-off recording as a video that simply ends early, and gives no reason; these few fields tell
:mod:`app.video` to say "the file ends early" (with how much of it is there) instead. MP4/MOV boxes, the
Matroska/WebM segment and AVI's RIFF size are read; other containers are never called truncated. Pure file
reading, no decoder, so it is also what :mod:`app.video` asks when FFmpeg cannot open a file at all.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any


def truncation(path: Path) -> tuple[int, int] | None:
    """``(bytes present, bytes the header declares)`` when the file is shorter than its container says.

    Checked for the formats whose top level records sizes: MP4/MOV (box sizes), Matroska/WebM (the Segment's
    size; live recordings write "unknown" and are not judged) and AVI (RIFF chunk sizes). None otherwise.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(64)
            if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
                declared = _mp4_end(f, size)
            elif head[:4] == b"\x1a\x45\xdf\xa3":
                declared = _matroska_end(head, f)
            elif head[:4] == b"RIFF" and head[8:12] == b"AVI ":
                declared = _riff_end(f, size)
            else:
                return None
    except OSError:
        return None
    return (size, declared) if declared is not None and declared > size else None


def _mp4_end(f: Any, size: int) -> int | None:
    """End offset of the last top-level box, walking box headers (a box of size 0 runs to the end of file)."""
    pos = 0
    for _ in range(10_000):
        if pos >= size:
            return pos
        f.seek(pos)
        hdr = f.read(16)
        if len(hdr) < 8:
            return pos + 8
        n = struct.unpack(">I", hdr[:4])[0]
        if n == 1:
            if len(hdr) < 16:
                return pos + 16
            n = struct.unpack(">Q", hdr[8:16])[0]
        elif n == 0:
            return None
        if n < 8:
            return None  # not a box: garbage, which the demuxer judges
        pos += n
    return None


def mp4_boxes(path: Path) -> tuple[set[bytes], bool]:
    """Top-level box types of an MP4/MOV file, and whether every box header was sane up to the end of the file
    (only then does a missing index mean an unfinished recording rather than damage)."""
    found: set[bytes] = set()
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            pos = 0
            for _ in range(10_000):
                f.seek(pos)
                hdr = f.read(16)
                if len(hdr) < 8:
                    return found, True
                n = struct.unpack(">I", hdr[:4])[0]
                kind = hdr[4:8]
                if not all(32 <= c < 127 for c in kind):
                    return found, False
                found.add(kind)
                if n == 1 and len(hdr) == 16:
                    n = struct.unpack(">Q", hdr[8:16])[0]
                if n == 0 or pos + n >= size:  # the last box: runs to, or past, the end of the file
                    return found, True
                if n < 8:
                    return found, False
                pos += n
    except OSError:
        pass
    return found, False


def _ebml_vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at ``pos``: (value, length), or None if malformed."""
    if pos >= len(data) or data[pos] == 0:
        return None
    first = data[pos]
    length = 8 - first.bit_length() + 1
    if pos + length > len(data):
        return None
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, length


def _matroska_end(head: bytes, f: Any) -> int | None:
    """End offset of the Segment element from its declared size; None when it is "unknown" (live recording)."""
    f.seek(0)
    data = f.read(4096)
    size = _ebml_vint(data, 4, keep_marker=False)  # after the 4-byte EBML header ID
    if size is None:
        return None
    pos = 4 + size[1] + size[0]
    seg_id = _ebml_vint(data, pos, keep_marker=True)
    if seg_id is None or seg_id[0] != 0x18538067:
        return None
    pos += seg_id[1]
    seg_size = _ebml_vint(data, pos, keep_marker=False)
    if seg_size is None:
        return None
    value, length = seg_size
    if value == (1 << (7 * length)) - 1:  # all ones: unknown size
        return None
    return pos + length + value


def _riff_end(f: Any, size: int) -> int | None:
    """End offset of the last RIFF chunk (AVI files over 1 GB chain RIFF 'AVIX' chunks)."""
    pos = 0
    for _ in range(10_000):
        if pos >= size:
            return pos
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8 or hdr[:4] != b"RIFF":
            return pos if pos else None
        pos += 8 + struct.unpack("<I", hdr[4:8])[0]
        pos += pos & 1
    return None


def truncated_reason(path: Path) -> str | None:
    """The one-line reason a truncated file is refused or stopped, or None when it is whole."""
    t = truncation(path)
    if t is None:
        return None
    have, want = t
    return (f"the file ends early: it holds {_kb(have)} of the {_kb(want)} its header declares (truncated by an "
            "interrupted copy or download or an unfinished recording, or a damaged header)")


def _kb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"
