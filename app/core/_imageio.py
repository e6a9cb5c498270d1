"""Load any photo a user is likely to drop on the app as upright RGB uint8, or fail with one clear line.

Pillow decodes (it reads EXIF orientation, palettes, CMYK and 16-bit data that ``cv2.imread`` silently gets
wrong or refuses), and every failure becomes an :class:`ImageError` whose message names the file, so the GUI
can show it and the batch CLI can log it without a traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from app.core._errors import EmotionLensError, one_line

# HEIC/HEIF (iPhones' default) are decoded by pillow-heif when it is installed (the ``heic`` extra; ~26 MB
# installed, within the bundle's budget); AVIF by Pillow's own plugin (Pillow >= 11.3 wheels). Both suffixes
# are always listed so that a build without the decoder says how to convert instead of skipping silently.
HEIF_SUFFIXES: frozenset[str] = frozenset({".heic", ".heif", ".hif"})
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm", ".avif"}
) | HEIF_SUFFIXES

# Decompression-bomb guard, checked on the header size before any pixel is decoded. 120 megapixels admits
# every camera photo up to medium format (a 4000x3000 phone photo is 12 MP, a 100 MP camera 102 MP) while an
# RGB copy of the largest allowed image still fits in ~360 MB.
MAX_PIXELS = 120_000_000

# The formats named in messages when a file's contents are not an image.
_FORMATS_HINT = "JPEG, PNG, BMP, TIFF, WebP, GIF, PGM/PPM, HEIC/HEIF, AVIF"
_CONVERT_HINT = (
    "convert it to JPEG first (macOS Preview: File > Export; Windows Photos: Save as; Linux: "
    "heif-convert IN OUT.jpg), or pip install pillow-heif"
)


def _register_optional_decoders() -> dict[str, bool]:
    """Plug pillow-heif into Pillow where installed; report which optional formats can be decoded."""
    heif = False
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        heif = True
    except Exception:  # not installed, or its native library failed to load: HEIC gets the convert hint
        pass
    try:
        from PIL import features

        avif = bool(features.check("avif"))
    except Exception:
        avif = False
    return {"heif": heif, "avif": avif}


DECODERS = _register_optional_decoders()


def readable_formats() -> list[str]:
    """The formats this installation reads, for --help and README: the core ones plus the optional ones."""
    names = ["JPEG", "PNG", "BMP", "TIFF", "WebP", "GIF", "PGM/PPM"]
    return names + (["HEIC/HEIF"] if DECODERS["heif"] else []) + (["AVIF"] if DECODERS["avif"] else [])


def file_kind(mode: int) -> str:
    """What a file that is not a regular file or folder is, for messages: FIFOs must never be opened."""
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


class ImageError(EmotionLensError, ValueError):
    """An image that cannot be loaded; ``str()`` is one line ``"<path>: <reason>"``.

    ``path`` and ``reason`` are also kept separately so a CSV/JSON report can store them in their own fields.
    """

    def __init__(self, message: str, *, path: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason if reason is not None else message


def _fail(path: Path, reason: str) -> ImageError:
    return ImageError(f"{path}: {reason}", path=str(path), reason=reason)


def os_reason(e: OSError, what: str = "read") -> str:
    """One line for an OSError met while trying to ``what`` a path (shared with the folder walk)."""
    import errno

    if isinstance(e, PermissionError):
        return f"cannot {what} (permission denied)"
    if e.errno == errno.ELOOP:
        return "symbolic link loop (the link points back at itself)"
    if e.errno == errno.ENAMETOOLONG:
        return f"cannot {what}: path too long for this system"
    return f"cannot {what} ({e.strerror or one_line(e)})"


def _too_large(size: str) -> str:
    return (
        f"image too large ({size}; the limit is {MAX_PIXELS / 1e6:.0f} megapixels, a guard against "
        "decompression bombs); downscale it first"
    )


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to RGB uint8; transparency is composited on white (how viewers show it)."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im)
        if a.dtype.kind in "iu" and (mode != "I" or int(a.max(initial=0)) > 255):
            # 16-bit samples: scale 0..65535 to 0..255 (/257 maps 65535 exactly to 255).
            a = (np.clip(a.astype(np.float32), 0, 65535) / 257.0 + 0.5).astype(np.uint8)
        else:
            a = np.clip(a, 0, 255).astype(np.uint8)
        return np.repeat(a[:, :, None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        a = (np.nan_to_num(a) * 255 + 0.5).astype(np.uint8)
        return np.repeat(a[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb)


def _unidentified(p: Path, f) -> str:  # noqa: ANN001 - an open binary file
    """Why Pillow knew no format: a HEIC/AVIF file this installation has no decoder for, or not an image."""
    with contextlib.suppress(OSError):
        f.seek(0)
        head = f.read(32)
        brand = head[8:12] if head[4:8] == b"ftyp" else b""
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1") or (
            not brand and p.suffix.lower() in HEIF_SUFFIXES
        ):
            return f"HEIC/HEIF photo, which this installation cannot decode; {_CONVERT_HINT}"
        if brand in (b"avif", b"avis"):
            return "AVIF image, which this installation cannot decode; convert it to JPEG or PNG first"
    return f"not an image file (contents are not {_FORMATS_HINT})"


def load_image(path: str | os.PathLike, *, data: bytes | None = None) -> np.ndarray:
    """Read ``path`` as an upright RGB uint8 ``(H, W, 3)`` array; raise :class:`ImageError` with one line.

    Orientation comes from the EXIF tag (phones store portraits sideways), because the face cascade only
    finds upright faces. Multi-frame files (GIF, TIFF) give their first frame. ``data``: the file's contents,
    read elsewhere with :func:`read_image_bytes` (a cluster worker without the client's files); ``path`` then
    only names the image in messages, and the same file gives the same pixels or the same reason.
    """
    p = Path(os.fspath(path))
    if data is not None:
        if not data:
            raise _fail(p, "empty file (0 bytes)")
        return _decode(p, io.BytesIO(data))
    with _open_checked(p) as f:
        return _decode(p, f)


def read_image_bytes(path: str | os.PathLike) -> bytes:
    """The contents of the image file ``path``, for :func:`load_image` ``data`` on another machine; a file that
    cannot be read raises the :class:`ImageError` that :func:`load_image` would (FIFOs, folders, permissions)."""
    p = Path(os.fspath(path))
    with _open_checked(p) as f:
        try:
            return f.read()
        except OSError as e:
            raise _fail(p, os_reason(e)) from None


def _open_checked(p: Path):  # noqa: ANN202 - an open binary file
    """Open a regular, non-empty file for reading, or raise :class:`ImageError` saying why not."""
    try:
        st = p.stat()
    except FileNotFoundError:
        reason = "broken symbolic link (its target is missing)" if os.path.islink(p) else "no such file"
        raise _fail(p, reason) from None
    except PermissionError:
        raise _fail(p, "cannot read (permission denied)") from None
    except OSError as e:
        raise _fail(p, os_reason(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(p, "is a folder, not an image")
    if not stat.S_ISREG(st.st_mode):  # opening a FIFO for reading would block until a writer comes
        raise _fail(p, f"is a {file_kind(st.st_mode)}, not an image file")
    if st.st_size == 0:
        raise _fail(p, "empty file (0 bytes)")
    try:
        # O_NONBLOCK: should the name become a FIFO between stat() and open(), open() still returns at once.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except PermissionError:
        raise _fail(p, "cannot read (permission denied)") from None
    except OSError as e:
        raise _fail(p, os_reason(e)) from None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise _fail(p, "is not a regular file")
    return f


def _decode(p: Path, f) -> np.ndarray:  # noqa: ANN001 - a binary file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns on corrupt EXIF, bombs...: each file gets one clear line
        try:
            im = Image.open(f)
        except Image.DecompressionBombError as e:  # Pillow's own, stricter-than-ours limit fired first
            m = re.search(r"\((\d+) pixels\)", str(e))
            size = f"{int(m.group(1)) / 1e6:.0f} megapixels" if m else "too many pixels"
            raise _fail(p, _too_large(size)) from None
        except Image.UnidentifiedImageError:
            raise _fail(p, _unidentified(p, f)) from None
        except Exception as e:  # plugins raise SyntaxError, struct.error, EOFError... on broken headers
            raise _fail(p, f"corrupt image header ({one_line(e)})") from None
        w, h = im.size
        if w <= 0 or h <= 0:
            raise _fail(p, f"corrupt image header (size {w}x{h})")
        if w * h > MAX_PIXELS:
            raise _fail(p, _too_large(f"{w}x{h} = {w * h / 1e6:.0f} megapixels"))
        try:
            im.load()
        except MemoryError:
            raise _fail(p, f"not enough memory to decode a {w}x{h} image") from None
        except Exception as e:  # OSError "image file is truncated", SyntaxError "broken PNG file", ...
            reason = one_line(e)
            if "truncated" in reason.lower():
                raise _fail(p, "truncated image: the file ends before the picture does (interrupted copy?)") from None
            raise _fail(p, f"corrupt image data ({reason})") from None
        # A malformed EXIF block should not cost the user the photo: keep it as stored then.
        with contextlib.suppress(Exception):
            im = ImageOps.exif_transpose(im) or im
        try:
            return _to_rgb(im)
        except MemoryError:
            raise _fail(p, f"not enough memory to decode a {w}x{h} image") from None
        except Exception as e:
            raise _fail(p, f"cannot convert {im.mode} pixels to RGB ({one_line(e)})") from None
