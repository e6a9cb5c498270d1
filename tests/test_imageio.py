"""load_image: every awkward input either loads as upright RGB uint8 or fails with one line naming the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app.core._imageio as imageio_module
from app.core import IMAGE_SUFFIXES, ImageError, load_image
from app.core._imageio import MAX_PIXELS


def _error(path: Path) -> ImageError:
    with pytest.raises(ImageError) as info:
        load_image(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg  # one line, naming the file first
    assert info.value.path == str(path) and info.value.reason and info.value.reason in msg
    return info.value


def test_sample_loads_as_rgb_uint8(sample_photo):
    a = load_image(sample_photo)
    assert a.shape == (512, 512, 3) and a.dtype == np.uint8 and a.flags.c_contiguous


def test_truncated_jpeg_and_png(bad_images):
    for key in ("truncated_jpg", "truncated_png"):
        assert "truncated" in _error(bad_images[key]).reason


def test_zero_byte_file(bad_images):
    assert _error(bad_images["zero_byte"]).reason == "empty file (0 bytes)"


def test_text_with_image_name(bad_images):
    reason = _error(bad_images["text_as_jpg"]).reason
    assert reason.startswith("not an image file") and "JPEG" in reason


def test_missing_file_and_folder(tmp_path):
    assert _error(tmp_path / "nope.jpg").reason == "no such file"
    assert _error(tmp_path).reason == "is a folder, not an image"


def test_unreadable_file(sample_photo):
    """Checked without root's privileges (root reads through chmod 000, which would check nothing)."""
    from tests.unprivileged import run_unprivileged, skip_unless_possible, world_dir

    skip_unless_possible()
    with world_dir() as d:
        p = d / "locked.jpg"
        p.write_bytes(sample_photo.read_bytes())
        p.chmod(0)
        code = ("from app.core._imageio import ImageError, load_image\n"
                f"try:\n    load_image({str(p)!r})\nexcept ImageError as e:\n    print(e.reason)")
        r = run_unprivileged(["-c", code], home=d)
        assert r.returncode == 0 and r.stdout.strip() == "cannot read (permission denied)", r.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs and links")
def test_fifo_links_and_devices_fail_at_once(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    assert _error(tmp_path / "pipe.jpg").reason == "is a named pipe (FIFO), not an image file"  # never opened
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    assert _error(tmp_path / "loop.jpg").reason.startswith("symbolic link loop")
    (tmp_path / "gone.jpg").symlink_to("missing.jpg")
    assert _error(tmp_path / "gone.jpg").reason.startswith("broken symbolic link")
    assert _error(Path(os.devnull)).reason == "is a device file, not an image file"


def test_heic_read_or_explained(tmp_path, sample_photo):
    """HEIC (iPhones' default) is read with pillow-heif; without it the error says how to convert."""
    from app.core import _imageio as imageio

    fake = tmp_path / "IMG_0001.HEIC"
    fake.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    with open(fake, "rb") as f:
        assert imageio._unidentified(fake, f).startswith("HEIC/HEIF photo, which this installation cannot decode")
    assert ".heic" in IMAGE_SUFFIXES and ".avif" in IMAGE_SUFFIXES
    if not imageio.DECODERS["heif"]:
        assert "convert it to JPEG" in _error(fake).reason
        return
    import pillow_heif

    real = tmp_path / "portrait.heic"
    pillow_heif.from_pillow(Image.open(sample_photo).convert("RGB")).save(real, quality=90)
    a = load_image(real)
    assert a.shape == (512, 512, 3) and abs(float(a.mean()) - float(load_image(sample_photo).mean())) < 4
    assert "HEIC/HEIF" in imageio.readable_formats()


@pytest.mark.skipif(not imageio_module.DECODERS["avif"], reason="this Pillow has no AVIF")
def test_avif_read(tmp_path, sample_photo):
    p = tmp_path / "portrait.avif"
    Image.open(sample_photo).convert("RGB").save(p, quality=90)
    assert load_image(p).shape == (512, 512, 3)


def test_decompression_bomb_is_refused_with_size(bad_images, tmp_path):
    reason = _error(bad_images["huge_png"]).reason  # 30000x30000: Pillow's own limit fires first
    assert "too large" in reason and "900 megapixels" in reason and "decompression bomb" in reason
    from tests.conftest import huge_png_header

    p = tmp_path / "big.png"
    p.write_bytes(huge_png_header(12_000, 11_000))  # above our limit, below Pillow's
    assert MAX_PIXELS < 12_000 * 11_000
    reason = _error(p).reason
    assert "12000x11000" in reason and "downscale" in reason


def test_large_camera_photo_loads(tmp_path):
    p = tmp_path / "camera.jpg"
    Image.new("RGB", (4000, 3000), (120, 130, 140)).save(p, quality=80)
    assert load_image(p).shape == (3000, 4000, 3)


def test_16bit_png_scaled_to_8bit(bad_images, sample_photo):
    a = load_image(bad_images["png16"])
    gray = np.asarray(Image.open(sample_photo).convert("L"))
    assert a.shape == (512, 512, 3) and a.dtype == np.uint8
    assert np.abs(a[:, :, 0].astype(int) - gray).max() <= 1  # 65535 -> 255, not clipped to white


def test_cmyk_jpeg_converted(bad_images, sample_photo):
    a = load_image(bad_images["cmyk_jpg"]).astype(int)
    ref = load_image(sample_photo).astype(int)
    assert a.shape == ref.shape and np.abs(a - ref).mean() < 12  # same picture, not inverted


def test_rgba_composited_on_white(bad_images):
    a = load_image(bad_images["rgba_png"])
    assert a.shape == (512, 512, 3)
    assert (a[:, :40] == 255).all()  # the transparent strip is white, not black


def test_palette_and_unicode_name(bad_images):
    assert load_image(bad_images["palette_png"]).shape == (512, 512, 3)
    assert load_image(bad_images["unicode_name"]).shape == (512, 512, 3)


def test_exif_orientation_applied(bad_images):
    stored = Image.open(bad_images["exif_rotated_jpg"])
    assert stored.size == (400, 512)  # kept sideways on disk
    a = load_image(bad_images["exif_rotated_jpg"])
    assert a.shape == (400, 512, 3)  # upright: 512 wide, 400 high


def test_grayscale_and_la_modes(tmp_path, sample_photo):
    g = Image.open(sample_photo).convert("L")
    g.save(tmp_path / "g.pgm")
    g.convert("LA").save(tmp_path / "la.png")
    for name in ("g.pgm", "la.png"):
        a = load_image(tmp_path / name)
        assert a.shape == (512, 512, 3) and (a[:, :, 0] == a[:, :, 2]).all()


def test_common_suffixes_listed():
    for s in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm"):
        assert s in IMAGE_SUFFIXES


def test_image_error_is_value_error():
    assert issubclass(ImageError, ValueError)
