"""The training data path: the set resident on the device as uint8, batches gathered by index, augmentation there.

FER2013 is small (114,836 x 48 x 48 uint8 = 265 MB with the offline augmentation), so it is copied to the
device once and every batch is one index gather plus a handful of vectorised ops (mirror, replicate-padded
shift, random erasing) on the device: no per-image Python work, no DataLoader processes, and on a GPU no
host-to-device copy per step.

Determinism: each epoch's order comes from a CPU generator seeded from (seed, epoch), the same on every
device and every process, so a resumed run draws the same batches as an uninterrupted one and N processes
split exactly the order one process would use. Augmentation parameters are drawn for the whole global batch
on every process and each process keeps its own rows, so a distributed step augments exactly as a single
process would.

The robustness augmentations of issue 34 (photometric, geometric, crop jitter, occlusion; see
:func:`online_augment` for their order and ranges) follow the same rules: vectorised over the batch, on the
batch's device, parameters drawn from the epoch generator for the whole global batch, and at probability 0
no draw at all, so a run without them draws (and augments) exactly as it did before they existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from training.config import TrainConfig
from training.datasets import FER2013


@dataclass(frozen=True)
class TrainingSet:
    """What one epoch iterates: images, hard labels, FER+ vote distributions (``ferplus-soft`` only) and
    ``rows``, each row's index in the whole pool (the offline-augmented set or the raw split) that per-row
    archives such as a teacher's logits are indexed by."""

    images: np.ndarray
    labels: np.ndarray
    dist: np.ndarray | None
    rows: np.ndarray


def label_votes(cfg: TrainConfig):  # noqa: ANN201 - training.ferplus.Votes | None
    """The run's FER+ votes, or None when it has no ``ferplus`` file."""
    if not cfg.ferplus:
        return None
    from training.ferplus import read_votes

    return read_votes(cfg.ferplus)


def training_set(cfg: TrainConfig, data: FER2013, votes=None) -> TrainingSet:  # noqa: ANN001
    """The offline-augmented set if given, else the raw split, limited to ``cfg.limit`` originals and to the
    rows the label source keeps (training.ferplus.targets), labelled by it."""
    from training.ferplus import targets

    if cfg.augmented:
        from training.augment import load as load_augmented

        aug = load_augmented(cfg.augmented)
        if int(aug.source_index.max()) + 1 != len(data.train):
            raise ValueError(
                f"{cfg.augmented}: made from {int(aug.source_index.max()) + 1} training images, but the data has "
                f"{len(data.train)}; rerun training.augment on the same --data"
            )
        images, source = aug.images, aug.source_index.astype(np.int64)
    else:
        images, source = data.train.images, np.arange(len(data.train))
    if votes is None:
        votes = label_votes(cfg)
    t = targets(data.train, votes, cfg.labels, cfg.contempt, drop_nonfaces=not cfg.keep_nonfaces)
    keep = t.keep[source]
    if cfg.limit is not None:
        keep &= source < cfg.limit
    rows = np.flatnonzero(keep)
    labels = t.labels[source[rows]]  # the augmented archive's labels are its originals' (mirrors keep them)
    dist = None if t.soft is None else t.soft[source[rows]]
    return TrainingSet(images[rows] if len(rows) != len(images) else images, labels, dist, rows)


def training_arrays(cfg: TrainConfig, data: FER2013) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels one epoch iterates (training_set without the extras)."""
    ts = training_set(cfg, data)
    return ts.images, ts.labels


def validation_split(cfg: TrainConfig, data: FER2013, votes=None):  # noqa: ANN001, ANN201 - Split
    """PublicTest as the run is validated on: FER2013's labels, or the FER+ majority (contempt dropped, the
    evaluation truth, so runs with either contempt rule pick epochs on the same faces) for FER+ label sources."""
    if cfg.labels == "fer2013":
        return data.val
    from training.ferplus import truth_split

    return truth_split(data.val, votes if votes is not None else label_votes(cfg))


def validation_rows(cfg: TrainConfig, data: FER2013, votes=None) -> np.ndarray | None:  # noqa: ANN001
    """Which PublicTest rows :func:`validation_split` keeps, in its order (indices into ``data.val``), or None
    when it keeps them all in order (FER2013 labels). With FER+ labels the faces without a FER+ majority leave."""
    if cfg.labels == "fer2013":
        return None
    from training.ferplus import truth

    return np.flatnonzero(truth(data.val, votes if votes is not None else label_votes(cfg)) >= 0)


@dataclass(frozen=True)
class ResidentSet:
    """A split on the device: ``images`` uint8 [N,H,W], ``labels`` int64 [N], for distillation the teacher's
    probabilities ``soft`` float32 [N,7], and for ``ferplus-soft`` the vote distributions ``dist`` [N,7]."""

    images: torch.Tensor
    labels: torch.Tensor
    soft: torch.Tensor | None = None
    dist: torch.Tensor | None = None

    @classmethod
    def put(cls, images: np.ndarray, labels: np.ndarray, device: torch.device,
            soft: np.ndarray | None = None, dist: np.ndarray | None = None) -> ResidentSet:
        imgs = torch.from_numpy(np.ascontiguousarray(images))
        labs = torch.from_numpy(np.ascontiguousarray(labels)).long()
        for name, extra in (("soft", soft), ("vote-distribution", dist)):
            if extra is not None and len(extra) != len(labels):
                raise ValueError(f"{len(extra)} {name} targets for {len(labels)} training images")

        def put_rows(a: np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)

        return cls(imgs.to(device), labs.to(device), put_rows(soft), put_rows(dist))

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images [B,1,H,W] in [0,1] and labels for the indices ``idx`` (on the same device)."""
        return self.images[idx].unsqueeze(1).float().div_(255), self.labels[idx]


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def epoch_generators(seed: int, epoch: int, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Generator]:
    """(order of the ``n`` examples on ``device``, generator for the augmentation on ``device``).

    The order always comes from a CPU generator, so it is the same on every device; on the CPU the same
    generator then drives the augmentation, as it always has.
    """
    gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    order = torch.randperm(n, generator=gen)
    if device.type == "cpu":
        return order, gen
    return order.to(device), torch.Generator(device=device).manual_seed(epoch_seed(seed, epoch))


class BatchDraws:
    """Random numbers for ``rows`` of a global batch of ``n`` images: every draw is made for all ``n`` from the
    shared generator (the same state on every rank) and then sliced, so each rank gets its rows of exactly
    what one process drawing for the whole batch would get."""

    def __init__(self, gen: torch.Generator, n: int, rows: slice, device: torch.device) -> None:
        self.gen, self.n, self.rows, self.device = gen, n, rows, device

    def rand(self, *size: int) -> torch.Tensor:
        return torch.rand(*size, generator=self.gen, device=self.device)[self.rows]

    def randn(self, *size: int) -> torch.Tensor:
        return torch.randn(*size, generator=self.gen, device=self.device)[self.rows]

    def randint(self, lo: int, hi: int, size: tuple) -> torch.Tensor:
        return torch.randint(lo, hi, size, generator=self.gen, device=self.device)[self.rows]

    def uniform(self, lo: float, hi: float, *size: int) -> torch.Tensor:
        """Uniform in [lo, hi) of the global ``size`` (default ``(n,)``), sliced to the rows."""
        return lo + (hi - lo) * self.rand(*(size or (self.n,)))


# The robustness augmentations' ranges (issue 34). Lengths are fractions of the image side, angles degrees.
CONTRAST = (0.6, 1.4)  # factor around the image's own mean: flat webcam light .. harsh sun
GAMMA = (0.7, 1.4)  # x ** gamma, drawn log-uniformly: over- and under-exposed photos, other camera curves
BLUR_SIGMA = (0.0, 1.2)  # Gaussian blur in pixels of the 48x48 input: focus, motion, upscaled small faces
NOISE_STD = (0.0, 0.06)  # Gaussian sensor noise, as a share of the [0, 1] range
JPEG_QUALITY = (15, 60)  # IJG quality of a JPEG round trip: messenger / web photos, video frames
ROTATION, SCALE, SHIFT = 15.0, (0.85, 1.15), 0.08  # geometric: ±15°, face size x0.85..1.15, ±8% shift
# Crop jitter: the framings the app's detectors hand the models. A Haar box is cropped at 1.09x its side and
# an MTCNN box at 0.99x (app.detect), each calibrated to FER2013's median framing, but one face's box varies
# around that median: on PublicTest the Haar box side is 0.859-0.953 of the frame (quartiles; median 0.917,
# so crops about 6% tighter to 4% looser than the median), and aligned crops, which place the eyes by their
# distance, inherit its spread (0.332-0.406 around 0.373, about -11%/+9%). Zoom: a crop side of 0.92..1.12 of
# the FER2013 framing covers the Haar quartiles and most of the aligned spread, reaching further on the loose
# side (more background, a smaller face). Shift: the box centre sits a median dx 0, dy +0.006 box sides off
# the face's, varying by a few percent between faces: ±5% of the side. Tilt: aligned crops level the eyes,
# unaligned ones keep the head's tilt, on PublicTest -4.4° to +2.8° (Haar eyes) and -5.2° to +3.2° (MTCNN)
# interquartile: ±6°.
CROP_ZOOM, CROP_SHIFT, CROP_TILT = (0.92, 1.12), 0.05, 6.0
# Occlusion: a glasses-like band across the eyes (app.detect._align puts FER2013's eye line at 0.39 of the
# height) or a hand-like ellipse over the lower half.
BAND_CENTRE, BAND_HEIGHT = (0.30, 0.45), (0.08, 0.14)
BLOB_SIZE, BLOB_GREY, BLOB_NOISE, BAND_NOISE = (0.20, 0.40), (0.45, 0.75), 0.05, 0.02
# The IJG standard luminance quantisation table (quality 50), which libjpeg scales by the quality.
JPEG_LUMA = (
    (16, 11, 10, 16, 24, 40, 51, 61), (12, 12, 14, 19, 26, 58, 60, 55), (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62), (18, 22, 37, 56, 68, 109, 103, 77), (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101), (72, 92, 95, 98, 112, 100, 103, 99),
)


def _rows(mask: torch.Tensor) -> torch.Tensor:
    return mask[:, None, None, None]


def _similarity(angle_deg: torch.Tensor, zoom: torch.Tensor, shift: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[B,3,3] maps from output to input coordinates (affine_grid's normalised [-1, 1], align_corners=False):
    rotate by ``angle_deg`` in pixel space, sample ``zoom`` times the output's extent (< 1 magnifies the face),
    move by ``shift`` [B,2] in normalised units."""
    a = torch.deg2rad(angle_deg)
    c, s = torch.cos(a) * zoom, torch.sin(a) * zoom
    m = torch.zeros(len(a), 3, 3, device=a.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = c, -s * (h / w), shift[:, 0]
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = s * (w / h), c, shift[:, 1]
    m[:, 2, 2] = 1
    return m


def affine_jitter(x: torch.Tensor, draws: BatchDraws, geometric: float, crop_jitter: float) -> torch.Tensor:
    """Geometric augmentation and crop jitter, each applied to an image with its probability, composed into one
    affine per image and one bilinear ``grid_sample`` with border padding (so two interpolations never blur an
    image twice). Geometric: rotation ±ROTATION°, face size SCALE, shift ±SHIFT of the side. Crop jitter: the
    crop's side CROP_ZOOM times the FER2013 framing, its centre ±CROP_SHIFT, tilt ±CROP_TILT° (see the
    constants for what each stands for). Images hit by neither are returned untouched."""
    if geometric <= 0 and crop_jitter <= 0:
        return x
    b, _, h, w = x.shape
    n, dev = draws.n, x.device
    eye = torch.eye(3, device=dev).expand(b, 3, 3)
    m, hit = eye, torch.zeros(b, dtype=torch.bool, device=dev)
    if crop_jitter > 0:  # the crop frames the source first ...
        on = draws.rand(n) < crop_jitter
        crop = _similarity(draws.uniform(-CROP_TILT, CROP_TILT), draws.uniform(*CROP_ZOOM),
                           draws.uniform(-CROP_SHIFT, CROP_SHIFT, n, 2) * 2, h, w)
        m, hit = torch.where(on[:, None, None], crop, eye), hit | on
    if geometric > 0:  # ... then the framed face is rotated, scaled and moved
        on = draws.rand(n) < geometric
        geo = _similarity(draws.uniform(-ROTATION, ROTATION), 1 / draws.uniform(*SCALE),
                          draws.uniform(-SHIFT, SHIFT, n, 2) * 2, h, w)
        m, hit = m @ torch.where(on[:, None, None], geo, eye), hit | on
    grid = F.affine_grid(m[:, :2], list(x.shape), align_corners=False)
    moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return torch.where(_rows(hit), moved, x)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of [B,1,H,W] with one ``sigma`` [B] (pixels) per image, replicate borders; the
    kernel's radius is fixed by BLUR_SIGMA's top (3 sigma), sigma 0 is the identity. Written as weighted sums of
    shifted copies rather than a grouped conv so each image's result does not depend on the batch around it
    (a DDP rank's rows equal one process's bit for bit)."""
    r = math.ceil(3 * BLUR_SIGMA[1])
    taps = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-taps[None] ** 2 / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)
    h, w = x.shape[-2:]
    padded = F.pad(x, (r, r, 0, 0), mode="replicate")
    x = sum(k[:, i, None, None, None] * padded[..., i : i + w] for i in range(2 * r + 1))
    padded = F.pad(x, (0, 0, r, r), mode="replicate")
    return sum(k[:, i, None, None, None] * padded[..., i : i + h, :] for i in range(2 * r + 1))


def _block_dct(device: torch.device) -> torch.Tensor:
    """[64,64]: the orthonormal 8x8 2-D DCT-II (JPEG's) of a row-major flattened block, ``coef = K @ block``."""
    k = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * k[None] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return torch.kron(d, d).float().to(device)


def jpeg_tables(quality: torch.Tensor) -> torch.Tensor:
    """libjpeg's luminance quantisation tables [B,8,8] for IJG qualities [B] (1..100)."""
    q = quality.clamp(1, 100).float()
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)
    base = torch.tensor(JPEG_LUMA, dtype=torch.float32, device=quality.device)
    return torch.floor((base[None] * scale[:, None, None] + 50) / 100).clamp(1, 255)


def jpeg_roundtrip(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """What a grayscale JPEG at IJG ``quality`` [B] does to [B,1,H,W] in [0, 1]: 8-bit levels, 8x8 block DCT,
    rounding to libjpeg's quantisation table, inverse DCT, 8-bit levels again (the baseline codec without its
    entropy coding, which is lossless). Edges not a multiple of 8 are replicated into whole blocks, as
    encoders do. On the batch's device, one matrix product each way: 1.8 ms for 128 48x48 faces on one CPU
    thread, against 6-10 ms for torchvision's libjpeg encode/decode image by image on the CPU, and it agrees
    with libjpeg to 0.6 of a level on average (tests/test_online_aug.py). On the CPU an image's result does
    not depend on the batch around it (tested); a GPU's matrix kernels may differ in the last bit between batch
    sizes, which shows only where a coefficient falls on a rounding tie."""
    b, _, h, w = x.shape
    ph, pw = -h % 8, -w % 8
    v = torch.round(x.clamp(0, 1) * 255) - 128
    if ph or pw:
        v = F.pad(v, (0, pw, 0, ph), mode="replicate")
    hb, wb = v.shape[-2] // 8, v.shape[-1] // 8
    blocks = v.reshape(b, hb, 8, wb, 8).permute(0, 1, 3, 2, 4).reshape(b, hb * wb, 64)
    k = _block_dct(x.device)
    table = jpeg_tables(quality).reshape(b, 1, 64)
    coef = torch.round(blocks @ k.T / table) * table
    v = (coef @ k).reshape(b, hb, wb, 8, 8).permute(0, 1, 3, 2, 4).reshape(b, 1, hb * 8, wb * 8)[..., :h, :w]
    return (torch.round(v + 128).clamp(0, 255) / 255).to(x.dtype)


def photometric(x: torch.Tensor, draws: BatchDraws, p: float) -> torch.Tensor:
    """Camera and processing changes, each applied to an image independently with probability ``p``, in this
    order: Gaussian blur (sigma BLUR_SIGMA px), contrast (CONTRAST times the distance from the image's mean),
    gamma (GAMMA, log-uniform), Gaussian noise (std NOISE_STD of the range), JPEG round trip (quality
    JPEG_QUALITY). Values stay in [0, 1]."""
    if p <= 0:
        return x
    b, _, h, w = x.shape
    n = draws.n
    on = draws.rand(n, 5) < p
    sigma, contrast = draws.uniform(*BLUR_SIGMA), draws.uniform(*CONTRAST)
    gamma = torch.exp(draws.uniform(math.log(GAMMA[0]), math.log(GAMMA[1])))
    noise = draws.randn(n, 1, h, w) * draws.uniform(*NOISE_STD)[:, None, None, None]
    quality = draws.randint(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, (n,))
    x = torch.where(_rows(on[:, 0]), gaussian_blur(x, sigma), x)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = torch.where(_rows(on[:, 1]), (mean + contrast[:, None, None, None] * (x - mean)).clamp(0, 1), x)
    x = torch.where(_rows(on[:, 2]), x.clamp(0, 1) ** gamma[:, None, None, None], x)
    x = torch.where(_rows(on[:, 3]), (x + noise).clamp(0, 1), x)
    return torch.where(_rows(on[:, 4]), jpeg_roundtrip(x, quality), x)


def occlusion_masks(draws: BatchDraws, p: float, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mask [B,1,H,W] bool, fill [B,1,H,W], band [B] bool) of :func:`occlude`: which pixels each image loses,
    what they become, and whether the occluder is the band (else the blob)."""
    n, dev = draws.n, draws.device
    hit, band = draws.rand(n) < p, draws.rand(n) < 0.5
    band_y, band_h = draws.uniform(*BAND_CENTRE), draws.uniform(*BAND_HEIGHT)
    band_value = torch.where(draws.rand(n) < 0.5, draws.uniform(0.0, 0.15), draws.uniform(0.85, 1.0))
    blob_w, blob_h = draws.uniform(*BLOB_SIZE), draws.uniform(*BLOB_SIZE)
    blob_x = draws.uniform(0.15, 0.85)
    blob_y = 0.5 + blob_h / 2 + draws.rand(n) * (0.5 - blob_h / 2)  # the ellipse's top stays in the lower half
    blob_value = draws.uniform(*BLOB_GREY)
    noise = draws.randn(n, 1, h, w)
    yy = ((torch.arange(h, device=dev) + 0.5) / h)[None, :, None]
    xx = ((torch.arange(w, device=dev) + 0.5) / w)[None, None, :]
    in_band = ((yy - band_y[:, None, None]).abs() <= band_h[:, None, None] / 2).expand(-1, h, w)
    in_blob = ((xx - blob_x[:, None, None]) / (blob_w[:, None, None] / 2)) ** 2 \
        + ((yy - blob_y[:, None, None]) / (blob_h[:, None, None] / 2)) ** 2 <= 1
    mask = (torch.where(band[:, None, None], in_band, in_blob) & hit[:, None, None]).unsqueeze(1)
    fill = torch.where(_rows(band), band_value[:, None, None, None] + BAND_NOISE * noise,
                       blob_value[:, None, None, None] + BLOB_NOISE * noise).clamp(0, 1)
    return mask, fill, band


def occlude(x: torch.Tensor, draws: BatchDraws, p: float) -> torch.Tensor:
    """With probability ``p`` per image, one occluder, either (evens) a glasses-like band across the eyes: full
    width, centred at BAND_CENTRE of the height, BAND_HEIGHT tall, dark (0-0.15) or light (0.85-1, glare);
    or a hand-like blob: an ellipse BLOB_SIZE of the side in each direction lying in the lower half (chin, mouth,
    cheek), skin-like grey BLOB_GREY with noise."""
    if p <= 0:
        return x
    mask, fill, _ = occlusion_masks(draws, p, *x.shape[-2:])
    return torch.where(mask, fill.to(x.dtype), x)


def online_augment(x: torch.Tensor, gen: torch.Generator, cfg: TrainConfig,
                   shard: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """The training batch's on-the-fly augmentation of a float batch [B,1,H,W] in [0, 1], all vectorised.

    In this fixed order, each step skipped (and drawing nothing) when its setting is off:

    1. ``online_aug``: random mirror, then (``shift``) a replicate-padded shift of up to ``cfg.shift`` pixels;
    2. ``crop_jitter`` and ``geometric`` (probability each): re-framing as the app's detectors frame a face,
       then rotation/scale/shift, as one affine per image (:func:`affine_jitter`);
    3. ``photometric`` (probability per sub-change): blur, contrast, gamma, noise, JPEG (:func:`photometric`);
    4. ``occlusion`` (probability): a glasses-like band or a hand-like blob (:func:`occlude`);
    5. ``erase`` (probability): random erasing of a box with a constant grey.

    Validation never augments: this is called by the training step only.

    ``shard=(rank, world)``: ``x`` is rank's slice of a global batch of ``B * world`` images; the random
    parameters are drawn for the global batch (same generator state on every rank) and sliced, so the
    global batch is augmented exactly as one process would augment it. Everything runs on ``x``'s device,
    which must be ``gen``'s.
    """
    b, _, h, w = x.shape
    rank, world = shard
    n, dev = b * world, x.device
    rows = slice(rank * b, (rank + 1) * b)
    draws = BatchDraws(gen, n, rows, dev)
    rand, randint = draws.rand, draws.randint

    if cfg.online_aug in ("flip", "shift"):
        flip = rand(n) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if cfg.online_aug == "shift" and cfg.shift > 0:
        s = cfg.shift
        padded = F.pad(x, (s, s, s, s), mode="replicate")
        oy = randint(0, 2 * s + 1, (n,))
        ox = randint(0, 2 * s + 1, (n,))
        ys = (oy[:, None] + torch.arange(h, device=dev))[:, :, None]
        xs = (ox[:, None] + torch.arange(w, device=dev))[:, None, :]
        x = padded[torch.arange(b, device=dev)[:, None, None], 0, ys, xs].unsqueeze(1)
    x = affine_jitter(x, draws, cfg.geometric, cfg.crop_jitter)
    x = photometric(x, draws, cfg.photometric)
    x = occlude(x, draws, cfg.occlusion)
    if cfg.erase > 0:
        hit = rand(n) < cfg.erase
        eh = randint(h // 6, h // 2, (n,))
        ew = randint(w // 6, w // 2, (n,))
        y0 = (rand(n) * (h - eh)).long()
        x0 = (rand(n) * (w - ew)).long()
        yy = torch.arange(h, device=dev)[None, :, None]
        xx = torch.arange(w, device=dev)[None, None, :]
        box = (yy >= y0[:, None, None]) & (yy < (y0 + eh)[:, None, None])
        box = box & (xx >= x0[:, None, None]) & (xx < (x0 + ew)[:, None, None])
        fill = rand(n, 1, 1)
        x = torch.where((box & hit[:, None, None]).unsqueeze(1), fill.unsqueeze(1), x)
    return x


def mix_batch(x: torch.Tensor, cfg: TrainConfig, epoch: int, step: int
              ) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Mixup or cutmix of a float batch [B,1,H,W] with a permutation of itself: (mixed, perm, lam).

    ``lam`` is the share of each row's own face (for cutmix, the share of its pixels left uncovered), so the
    loss weights the row's target by ``lam`` and its partner's by ``1 - lam``. Parameters come from a
    generator seeded by (seed, epoch, step): a resumed run mixes as an uninterrupted one, and every DDP
    process draws the same ``lam`` and box (each permutes its own rows).
    """
    if cfg.mix == "none":
        return x, None, 1.0
    rng = np.random.default_rng([cfg.seed, epoch, step, 7])
    lam = float(rng.beta(cfg.mix_alpha, cfg.mix_alpha))
    perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
    if cfg.mix == "mixup":
        return lam * x + (1 - lam) * x[perm], perm, lam
    h, w = x.shape[-2:]
    ch, cw = int(round(h * np.sqrt(1 - lam))), int(round(w * np.sqrt(1 - lam)))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + (ch + 1) // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + (cw + 1) // 2, w)
    mixed = x.clone()
    mixed[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    return mixed, perm, 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
