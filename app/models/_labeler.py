"""Detect faces and label each with every model in the zoo plus their ensemble, using ONNX Runtime.

One :class:`Labeler` loads every manifest model once; each photo then costs one detection and one batched
run per model (all faces of the photo together), which is what keeps a folder of group photos fast.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from app.core import (
    CROP_SIZE,
    Detection,
    FaceResult,
    PhotoResult,
    Prediction,
    default_threads,
    load_image,
    session_options,
)
from app.detect import DETECTORS, crop_faces, find_faces, reading_order
from app.models._saliency import Head, SaliencyUnavailable, finish, load_head, occlusion_maps
from app.models._sessions import open_model
from app.models._zoo import ModelInfo, default_zoo_dir, label_source, load_manifest

if TYPE_CHECKING:
    pass











def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def weighted_mean(probs: list[np.ndarray], weights: list[float] | np.ndarray) -> np.ndarray:
    """The ensemble rule, shared with training.evaluate and training.ensemble: weights normalised to sum 1."""
    w = np.asarray(weights, dtype=np.float64)
    return np.tensordot(w / w.sum(), np.stack(probs).astype(np.float64), axes=1)


class Labeler:
    """Every model of a zoo, loaded once; thread-safe for concurrent ``label_*`` calls (ORT sessions are).

    Examples:
        >>> from app import Labeler
        >>> labeler = Labeler()                        # the default zoo, Haar faces verified by eyes
        >>> result = labeler.label_image(sample_photo)  # a path, or an RGB/gray numpy array
        >>> [(f.index, f.ensemble.label) for f in result.faces]
        [(1, 'happy')]

    Args:
        zoo_dir: folder with ``manifest.json`` (default: ``$EMOTIONLENS_ZOO``, else the shipped ``models_zoo/``).
        threads: ONNX Runtime threads per model (default: one per core, at most 8).
        detector: face detector, one of ``app.detect.DETECTORS`` (``"haar"``, the default, or ``"mtcnn"``).
        eye_check: keep only Haar faces in which eyes are found (the default; far fewer false faces).
        tta: flip test-time augmentation (about twice the labelling cost; see :meth:`classify`).
        provider: ONNX Runtime execution provider for the models: ``"cpu"`` (the default), ``"cuda"``,
            ``"coreml"``, ``"directml"`` or ``"auto"`` (the best one installed); see :mod:`app.core._onnx`.

    The options are defaults for every ``label_*`` call; a call may still override them one by one.
    Raises :class:`app.models.ZooError` (one line naming the file) for a missing or broken zoo, and
    :class:`app.core.ProviderError` for a provider this onnxruntime lacks.
    """

    def __init__(self, zoo_dir: str | os.PathLike | None = None, threads: int | None = None, *,
                 detector: str = DETECTORS[0], eye_check: bool = True, tta: bool = False,
                 provider: str = "cpu") -> None:
        import onnxruntime as ort

        from app.core import describe, resolve

        if detector not in DETECTORS:
            raise ValueError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
        self.providers = resolve(provider)
        self.provider = describe(self.providers)  # "auto" resolved: what the sessions run on
        self.detector, self.eye_check, self.tta = detector, bool(eye_check), bool(tta)
        self.zoo_dir = Path(zoo_dir) if zoo_dir is not None else default_zoo_dir()
        self.classes, self.models = load_manifest(self.zoo_dir)
        self.threads = threads if threads and threads > 0 else default_threads()
        opts = session_options(self.threads)
        self._sessions: dict[str, object] = {}
        self._heads: dict[str, Head | None] = {}
        self.saliency_notes: dict[str, str] = {}  # why a model's maps fall back to occlusion
        for m in self.models:
            self._sessions[m.name] = self._load(ort, m, opts)

    def _load(self, ort, m: ModelInfo, opts) -> object:  # noqa: ANN001 - ort is imported lazily
        sess, blob = open_model(ort, m.file, m.name, opts, m.input_size, len(self.classes), self.providers)
        outs = sess.get_outputs()
        self._heads[m.name] = None
        if not m.saliency:
            self.saliency_notes[m.name] = "no saliency record in the manifest"
        else:
            try:
                self._heads[m.name] = load_head(m.saliency, m.file.parent, blob, [o.name for o in outs], opts)
            except SaliencyUnavailable as e:  # the maps fall back to occlusion; the labels never suffer
                shown = m.saliency.get("shown") == "occlusion"  # then the bundle leaves the explainer out
                self.saliency_notes[m.name] = f"shows occlusion; its other methods are unavailable ({e})" if shown \
                    else str(e)
        return sess

    def _model_input(self, m: ModelInfo, crops: np.ndarray) -> np.ndarray:
        """``[N, 1, H, W]`` float32 in [0, 1] at the model's input size."""
        h, w = m.input_size
        batch = crops
        if crops.shape[1:] != (h, w):
            batch = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA) for c in crops])
        return (batch.astype(np.float32) / 255.0)[:, None]

    def saliency_methods(self, name: str) -> list[str]:
        """Every method :meth:`explain` can use for model ``name``, the one it shows by default first."""
        head = self._heads.get(name)
        methods = [head.method, *head.alternatives, "occlusion"] if head is not None else ["occlusion"]
        shown = self.saliency_method(name)
        return [shown, *[x for x in methods if x != shown]]

    def saliency_method(self, name: str) -> str:
        """What :meth:`explain` shows for model ``name`` by default: the manifest's ``saliency.shown`` (chosen by
        ``benchmarks/saliency_deletion.py``'s measurements, see training.saliency_export), else its explainer's
        method, else occlusion."""
        head = self._heads.get(name)
        if head is None:
            return "occlusion"
        model = next(m for m in self.models if m.name == name)
        shown = model.saliency.get("shown")
        return shown if shown in (head.method, *head.alternatives, "occlusion") else head.method

    def explain(self, crops: np.ndarray, method: str | None = None) -> dict[str, np.ndarray]:
        """Saliency maps ``{name: (N, classes, H, W)}`` in [0, 1] over the uint8 crops ``(N, H, W)``, every class.

        A separate run from :meth:`classify` (which never fetches the extra outputs), so labelling with the maps
        off costs what it did; with them on this adds one run per model (``app/models/_saliency.py`` has the methods).
        ``method`` (the faithfulness benchmark compares them): ``"occlusion"`` for every model, or another method
        a model's explainer also computes (the CNN's ``"grad-cam"``); None or any other value: the shipped one.
        """
        crops = np.asarray(crops, dtype=np.uint8)
        if crops.ndim == 2:
            crops = crops[None]
        n, k = len(crops), len(self.classes)
        out: dict[str, np.ndarray] = {}
        for m in self.models:
            if n == 0:
                out[m.name] = np.zeros((0, k, *crops.shape[1:]), np.float32)
                continue
            x = self._model_input(m, crops)
            sess = self._sessions[m.name]
            wanted = method if method in self.saliency_methods(m.name) else self.saliency_method(m.name)
            head = None if wanted == "occlusion" else self._heads.get(m.name)
            if head is not None:
                res = sess.run(["logits", *head.fetches], {"input": x})  # type: ignore[attr-defined]
                raw = head.maps(x, res[1:], wanted)
            else:
                raw = occlusion_maps(lambda b, s=sess: s.run(["logits"], {"input": b})[0], x)  # type: ignore
            out[m.name] = finish(raw, crops.shape[1:])
        return out

    def classify(self, crops: np.ndarray, tta: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per-model probabilities ``{name: (N, 7)}`` and their weighted mean (the ensemble) for uint8 crops.

        ``crops`` is ``(N, H, W)``. One ONNX run per model for the whole batch; crops are resized if a model wants
        another input size. The weights are the manifest's: equal unless ``training.ensemble`` chose them.

        ``tta`` (flip test-time augmentation) also shows every model the mirrored crops, at about twice the
        cost. It follows the rule ``training.evaluate --tta`` scored (the manifest's ``*_accuracy_tta``): a
        model's probabilities are the softmax of its mean logits over both views, and the ensemble is the
        normalised geometric mean over both views of the weighted mean.
        """
        crops = np.asarray(crops, dtype=np.uint8)
        if crops.ndim == 2:
            crops = crops[None]
        if crops.ndim != 3:
            raise ValueError(f"crops must be (N, H, W) uint8, got shape {crops.shape}")
        n, k = len(crops), len(self.classes)
        if n == 0:
            empty = np.zeros((0, k), np.float32)
            return {m.name: empty for m in self.models}, empty
        views = 2 if tta else 1
        logits: dict[str, np.ndarray] = {}  # (views, N, 7) per model
        for m in self.models:
            x = self._model_input(m, crops)
            # One run per view, as training.evaluate does: int8 models quantise activations per batch, so
            # mixing both views in one batch would shift their results slightly.
            inputs = [x, np.ascontiguousarray(x[..., ::-1])] if tta else [x]
            sess = self._sessions[m.name]
            out = [sess.run(["logits"], {"input": v})[0] for v in inputs]  # type: ignore[attr-defined]
            logits[m.name] = np.asarray(out, dtype=np.float64).reshape(views, n, k)
        weights = [m.ensemble_weight for m in self.models]
        per_model = {name: softmax(v.mean(axis=0)) for name, v in logits.items()}
        if views == 1:
            ensemble = weighted_mean(list(per_model.values()), weights)
        else:
            ensembles = [weighted_mean([softmax(v[i]) for v in logits.values()], weights) for i in range(views)]
            ensemble = softmax(np.mean([np.log(np.clip(e, 1e-12, None)) for e in ensembles], axis=0))
        return {name: p.astype(np.float32) for name, p in per_model.items()}, ensemble.astype(np.float32)

    def prediction(self, probs: np.ndarray) -> Prediction:
        """The :class:`Prediction` of one face's probabilities (7,): top class and its probability."""
        i = int(np.argmax(probs))
        return Prediction(probs=probs, label=self.classes[i], confidence=float(probs[i]))

    @property
    def label_source(self) -> str:
        """What the zoo's models were trained to agree with, e.g. ``"FER+ votes"`` (:func:`app.models.label_source`)."""
        return label_source(self.models)

    def label_image(
        self, image: np.ndarray | str | os.PathLike, eye_check: bool | None = None,
        path: str | os.PathLike | None = None, tta: bool | None = None, detector: str | None = None,
    ) -> PhotoResult:
        """Detect, crop and label every face of an image; faces numbered in reading order.

        ``image`` is a file path (decoded with :func:`app.core.load_image`, which raises
        :class:`app.core.ImageError` with a one-line reason; ``seconds`` then includes decoding) or an RGB
        or gray ``uint8`` array. ``eye_check``, ``tta`` and ``detector`` default to the constructor's.
        ``path`` only names an array's source in the result."""
        if isinstance(image, str | os.PathLike):
            return self.label_file(image, eye_check=eye_check, tta=tta, detector=detector)
        tta = self.tta if tta is None else tta
        found = self.detect_image(image, eye_check=eye_check, detector=detector)
        return self.label_detections([found], tta=tta, paths=[path])[0]

    def detect_image(self, image: np.ndarray, eye_check: bool | None = None, detector: str | None = None) -> Detection:
        """The first half of :meth:`label_image`: find the faces of an RGB or gray ``uint8`` array (reading
        order) and crop them; :meth:`label_detections` labels them, one image's or many images' at once."""
        eye_check = self.eye_check if eye_check is None else eye_check
        detector = self.detector if detector is None else detector
        t0 = time.perf_counter()
        gray, boxes = find_faces(image, eye_check=eye_check, detector=detector)
        boxes = [boxes[i] for i in reading_order([(b.x, b.y, b.w, b.h) for b in boxes])]
        crops = crop_faces(gray, boxes)
        return Detection(boxes, crops, (int(gray.shape[1]), int(gray.shape[0])), time.perf_counter() - t0)

    def label_detections(self, found: list[Detection], tta: bool | None = None,
                         paths: list[str | os.PathLike | None] | None = None) -> list[PhotoResult]:
        """Label the faces of several images with **one** :meth:`classify` call (one run per model over all
        their crops), so a GPU gets batches worth its start-up cost; one :class:`PhotoResult` per detection.

        The probabilities equal labelling each image alone up to float rounding (ONNX Runtime's kernels may
        sum in another order for another batch size); ``label_seconds`` is the shared run split by faces.
        """
        tta = self.tta if tta is None else tta
        paths = list(paths) if paths is not None else [None] * len(found)
        t0 = time.perf_counter()
        crops = np.concatenate([d.crops for d in found]) if found else np.zeros((0, *CROP_SIZE), np.uint8)
        per_model, ensemble = self.classify(crops, tta=tta)
        share = (time.perf_counter() - t0) / max(1, len(crops))
        results, start = [], 0
        for d, path in zip(found, paths, strict=True):
            faces = [
                FaceResult(
                    index=i + 1,
                    box=b,
                    crop=d.crops[i],
                    predictions={m.name: self.prediction(per_model[m.name][start + i]) for m in self.models},
                    ensemble=self.prediction(ensemble[start + i]),
                )
                for i, b in enumerate(d.boxes)
            ]
            start += len(d.boxes)
            label_s = share * len(d.boxes) if len(found) > 1 else time.perf_counter() - t0
            results.append(PhotoResult(path=None if path is None else str(path), size=d.size, faces=faces,
                                       seconds=d.seconds + label_s, detect_seconds=d.seconds, label_seconds=label_s))
        return results

    def label_images(self, images: list[np.ndarray], eye_check: bool | None = None, tta: bool | None = None,
                     detector: str | None = None) -> list[PhotoResult]:
        """:meth:`label_image` over several RGB or gray arrays with all their faces in one model run per model
        (:meth:`label_detections`): what keeps a GPU fed when photos have one face each."""
        return self.label_detections([self.detect_image(im, eye_check, detector) for im in images], tta=tta)

    def label_file(
        self, path: str | os.PathLike, eye_check: bool | None = None, tta: bool | None = None,
        detector: str | None = None,
    ) -> PhotoResult:
        """:func:`load_image` then :meth:`label_image`; ``seconds`` includes decoding. Raises ImageError."""
        t0 = time.perf_counter()
        rgb = load_image(path)
        result = self.label_image(rgb, eye_check=eye_check, path=path, tta=tta, detector=detector)
        return replace(result, seconds=time.perf_counter() - t0)
