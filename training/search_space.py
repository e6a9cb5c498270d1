"""The annealing search space: which hyper-parameters ``training.anneal`` varies, their ranges and step sizes.

Declared once per model in :data:`DEFAULT_SPACES`; a ``--space FILE`` (JSON) overrides ranges, steps and start
values, removes a parameter from the search (``null``) or adds another TrainConfig field or model parameter.
Everything is validated up front so that a typo fails in one line before an hour of training, not after it.

Parameter types:

``log``    float searched on a log10 scale (learning rate, weight decay); ``step`` is in decades.
``float``  float on a linear scale (dropout); ``step`` in the parameter's own units.
``int``    integer (epochs); ``step`` in the parameter's own units, every move changes the value by at least 1.
``choice`` one of ``values``; numeric values are ordered (batch size: a move goes to a neighbouring size,
           ``step`` in positions), anything else is categorical (optimizer: a move picks another value).

A move scales every step by the temperature (see :func:`neighbour`), so the search takes big steps while hot
and fine-tunes while cold.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.models import MODEL_NAMES
from training.train import TrainConfig

TYPES = ("log", "float", "int", "choice")
SPEC_KEYS = {
    "log": {"type", "low", "high", "step", "start"},
    "float": {"type", "low", "high", "step", "start"},
    "int": {"type", "low", "high", "step", "start"},
    "choice": {"type", "values", "step", "start"},
}
# Searchable builder parameters per model, with the (type, check) their values must pass.
MODEL_PARAMS: dict[str, dict[str, tuple[type, str]]] = {
    "cnn": {"width": (int, "positive"), "fc": (int, "positive"), "dropout": (float, "unit")},
    "ff": {"hidden": (list, "layers"), "dropout": (float, "unit"), "slope": (float, "nonneg"),
           "per_image": (bool, "any")},
    "resnet18": {"dropout": (float, "unit")},
}
# TrainConfig fields the CLI controls (or that are not hyper-parameters), so a space may not search them.
NOT_SEARCHABLE = {"model", "model_params", "limit", "augmented", "seed", "bf16", "channels_last"}

_COMMON = {
    "batch_size": {"type": "choice", "values": [32, 64, 128, 256], "start": 128},
    "optimizer": {"type": "choice", "values": ["adam", "adamw", "sgd"], "start": "adamw"},
    "weight_decay": {"type": "log", "low": 1e-6, "high": 1e-2, "step": 0.7, "start": 1e-4},
}
DEFAULT_SPACES: dict[str, dict[str, dict]] = {
    # ff trains ~1 s per epoch on 4,000 images, so its range stays short enough for minute-long trials.
    "ff": {
        "lr": {"type": "log", "low": 1e-4, "high": 3e-2, "step": 0.5, "start": 1e-3},
        "epochs": {"type": "int", "low": 4, "high": 30, "step": 4, "start": 12},
        **_COMMON,
        "dropout": {"type": "float", "low": 0.0, "high": 0.6, "step": 0.1, "start": 0.3},
    },
    "cnn": {
        "lr": {"type": "log", "low": 1e-4, "high": 1e-2, "step": 0.5, "start": 2e-3},
        "epochs": {"type": "int", "low": 6, "high": 40, "step": 5, "start": 20},
        **_COMMON,
        "dropout": {"type": "float", "low": 0.0, "high": 0.6, "step": 0.1, "start": 0.3},
    },
    # resnet18 is the slowest model by far; fewer epochs, and a gentler lr range (BatchNorm-heavy, 11M params).
    "resnet18": {
        "lr": {"type": "log", "low": 1e-4, "high": 1e-2, "step": 0.5, "start": 1e-3},
        "epochs": {"type": "int", "low": 4, "high": 30, "step": 4, "start": 12},
        **_COMMON,
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1, "start": 0.1},
    },
}


class SpaceError(ValueError):
    """An invalid search space; the message is one line naming the file and the parameter."""


@dataclass(frozen=True)
class Param:
    """One searched hyper-parameter; ``target`` says whether it is a TrainConfig field or a model parameter."""

    name: str
    type: str
    target: str  # "config" | "model"
    low: float | None = None
    high: float | None = None
    step: float = 1.0
    values: tuple = ()
    start: Any = None

    @property
    def ordered(self) -> bool:
        """Numeric choices have neighbours (64 is next to 128); strings and lists are categorical."""
        return self.type == "choice" and all(_is_number(v) for v in self.values)

    def spec(self) -> dict:
        """The JSON form, as a ``--space`` file would write it."""
        if self.type == "choice":
            return {"type": "choice", "values": list(self.values), "step": self.step, "start": self.start}
        return {"type": self.type, "low": self.low, "high": self.high, "step": self.step, "start": self.start}

    def perturb(self, value: Any, rng: np.random.Generator, scale: float) -> Any:
        """A new value near ``value``: a normal step of ``step * scale`` (in decades for ``log``), reflected
        at the bounds so the edges are not over-sampled, and never equal to ``value`` unless the range is a
        single point."""
        if self.type == "choice":
            if len(self.values) == 1:
                return value
            i = _index(self.values, value)
            if not self.ordered:
                others = [k for k in range(len(self.values)) if k != i]
                return self.values[others[int(rng.integers(len(others)))]]
            return self.values[_int_move(i, 0, len(self.values) - 1, self.step * scale, rng)]
        if self.type == "int":
            return _int_move(int(value), int(self.low), int(self.high), self.step * scale, rng)
        if self.low == self.high:
            return value
        log = self.type == "log"
        lo, hi = (math.log10(self.low), math.log10(self.high)) if log else (self.low, self.high)
        x = math.log10(value) if log else value
        for _ in range(20):  # a draw that rounds back onto the old value is redrawn (deterministically)
            y = _reflect(x + rng.normal() * self.step * scale, lo, hi)
            new = min(max(_round_sig(10**y if log else y), self.low), self.high)
            if new != value:
                return new
        return value

    def contains(self, value: Any) -> bool:
        if self.type == "choice":
            return any(_same(value, v) for v in self.values)
        return self.low <= value <= self.high


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a) == json.dumps(b)


def _index(values: tuple, value: Any) -> int:
    for i, v in enumerate(values):
        if _same(v, value):
            return i
    raise ValueError(f"{value!r} is not one of {list(values)}")


def _round_sig(x: float, digits: int = 3) -> float:
    """3 significant digits: tables stay readable and a value survives a JSON round trip unchanged."""
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits - 1}e}")


def _reflect(x: float, lo: float, hi: float) -> float:
    """Fold ``x`` back into ``[lo, hi]`` like a ball bouncing between the bounds."""
    width = hi - lo
    if width <= 0:
        return lo
    m = (x - lo) % (2 * width)
    return lo + (m if m <= width else 2 * width - m)


def _int_move(i: int, lo: int, hi: int, step: float, rng: np.random.Generator) -> int:
    if lo == hi:
        return lo
    d = int(round(rng.normal() * step))
    if d == 0:
        d = 1 if rng.random() < 0.5 else -1
    j = int(round(_reflect(i + d, lo, hi)))
    if j == i:  # reflected straight back (only possible in a range of width 1 or 2): step the other way
        j = i - d if lo <= i - d <= hi else i + (1 if i < hi else -1)
    return j


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of one model's search, in declaration order (the order moves and tables use)."""

    model: str
    params: tuple[Param, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def start_point(self) -> dict[str, Any]:
        return {p.name: copy.deepcopy(p.start) for p in self.params}

    def spec(self) -> dict[str, dict]:
        return {p.name: p.spec() for p in self.params}

    def contains(self, point: dict[str, Any]) -> bool:
        return set(point) == set(self.names) and all(p.contains(point[p.name]) for p in self.params)

    def apply(self, base: TrainConfig, point: dict[str, Any]) -> TrainConfig:
        """``base`` with the point's values: TrainConfig fields set directly, model parameters in model_params."""
        fields: dict[str, Any] = {}
        model_params = dict(base.model_params)
        for p in self.params:
            value = copy.deepcopy(point[p.name])
            if p.target == "model":
                model_params[p.name] = value
            else:
                fields[p.name] = value
        return dataclasses.replace(base, model_params=model_params, **fields)


def neighbour(space: SearchSpace, point: dict[str, Any], rng: np.random.Generator, scale: float) -> dict[str, Any]:
    """Move one or more parameters of ``point``; ``scale`` (1 when hot, smaller when cold) shrinks the steps and
    makes multi-parameter moves rarer, so a cooled search refines around its current point."""
    names = space.names
    n_moves = 1 + int(rng.binomial(len(names) - 1, 0.3 * min(max(scale, 0.0), 1.0))) if len(names) > 1 else 1
    chosen = sorted(rng.choice(len(names), size=n_moves, replace=False).tolist())
    new = dict(point)
    for i in chosen:
        p = space.params[i]
        new[p.name] = p.perturb(point[p.name], rng, scale)
    return new


# ----------------------------------------------------------------------------------- building + checks


def default_space(model: str, base: TrainConfig | None = None) -> SearchSpace:
    """The built-in space for ``model``."""
    return build_space(model, {}, base=base)


def load_space(path: str | Path | None, model: str, base: TrainConfig | None = None) -> SearchSpace:
    """The default space for ``model`` with a ``--space`` JSON file's overrides; raises :class:`SpaceError`.

    The file maps parameter names to (partial) specs, e.g. ``{"lr": {"high": 0.01}, "dropout": null}``, or
    holds one such mapping per model (``{"ff": {...}, "cnn": {...}}``).
    """
    if path is None:
        return build_space(model, {}, base=base)
    where = str(path)
    try:
        overrides = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise SpaceError(f"{where}: cannot read ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpaceError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(overrides, dict):
        raise SpaceError(f"{where}: expected a JSON object of parameter specs, got {type(overrides).__name__}")
    if overrides and set(overrides) <= set(MODEL_NAMES):
        overrides = overrides.get(model, {})
        if not isinstance(overrides, dict):
            raise SpaceError(f"{where}: the {model!r} section must be an object of parameter specs")
    return build_space(model, overrides, base=base, where=where)


def build_space(model: str, overrides: dict, base: TrainConfig | None = None, where: str = "space") -> SearchSpace:
    """Merge ``overrides`` into the model's defaults and validate every parameter against TrainConfig.

    Start values: a ``start`` in the overrides wins; else the ``base`` config's value when the user chose one
    (``--config``: the search starts from their known-good run) and it lies in the range; else the default
    space's start; else TrainConfig's default if it lies in the range; else the middle of the range.
    """
    if model not in DEFAULT_SPACES:
        raise SpaceError(f"{where}: unknown model {model!r}; choose from {', '.join(MODEL_NAMES)}")
    prefer_base = base is not None
    base = base or TrainConfig(model=model)
    specs: dict[str, dict] = copy.deepcopy(DEFAULT_SPACES[model])
    for name, over in overrides.items():
        if over is None:
            specs.pop(name, None)
            continue
        if not isinstance(over, dict):
            raise SpaceError(f"{where}: {name} must be an object like {{\"low\": ..., \"high\": ...}} or null, "
                             f"got {json.dumps(over)}")
        old = specs.get(name)
        if old is not None and over.get("type", old["type"]) == old["type"]:
            specs[name] = {**old, **over}
        else:
            specs[name] = dict(over)
    if not specs:
        raise SpaceError(f"{where}: the space has no parameters left to search")
    params = []
    for name, spec in specs.items():
        user_start = isinstance(overrides.get(name), dict) and "start" in overrides[name]
        params.append(_make_param(name, spec, model, base, where, user_start, prefer_base))
    return SearchSpace(model, tuple(params))


def _make_param(name: str, spec: dict, model: str, base: TrainConfig, where: str, user_start: bool,
                prefer_base: bool) -> Param:
    at = f"{where}: {name}"
    config_fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if name in MODEL_PARAMS[model]:
        target = "model"
    elif name in config_fields and name not in NOT_SEARCHABLE:
        target = "config"
    else:
        allowed = sorted(set(config_fields) - NOT_SEARCHABLE | set(MODEL_PARAMS[model]))
        raise SpaceError(f"{at}: not a searchable parameter of {model}; use one of {', '.join(allowed)}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise SpaceError(f"{at}.type must be one of {', '.join(TYPES)} (got {json.dumps(kind)})")
    unknown = sorted(set(spec) - SPEC_KEYS[kind])
    if unknown:
        raise SpaceError(f"{at}: unknown key(s) {', '.join(unknown)} for type {kind}; "
                         f"allowed: {', '.join(sorted(SPEC_KEYS[kind]))}")
    want = _value_type(name, target, model)
    step = spec.get("step", 1.0)
    if not _is_number(step) or not step > 0 or not math.isfinite(step):
        raise SpaceError(f"{at}.step must be a number > 0 (got {json.dumps(step)})")

    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise SpaceError(f"{at}.values must be a non-empty list (got {json.dumps(values)})")
        if len({json.dumps(v) for v in values}) != len(values):
            raise SpaceError(f"{at}.values has duplicates")
        for v in values:
            _check_value(at, name, target, model, want, v, base)
        b = _base_value(base, name, target)
        if user_start:
            start = spec["start"]
            if not any(_same(start, v) for v in values):
                raise SpaceError(f"{at}.start must be one of the values {json.dumps(values)} (got {json.dumps(start)})")
        elif prefer_base and any(_same(b, v) for v in values):
            start = b
        elif any(_same(spec.get("start"), v) for v in values):
            start = spec["start"]
        elif any(_same(b, v) for v in values):
            start = b
        else:
            start = values[0]
        param = Param(name, kind, target, step=float(step), values=tuple(values), start=copy.deepcopy(start))
    else:
        if want is str or want is list or want is bool:
            raise SpaceError(f"{at}: a {want.__name__} parameter can only be searched with type choice")
        if want is int and kind != "int":
            raise SpaceError(f"{at}: an integer parameter needs type int or choice (got {kind})")
        lo, hi = spec.get("low"), spec.get("high")
        for key, v in (("low", lo), ("high", hi)):
            if not _is_number(v) or not math.isfinite(v):
                raise SpaceError(f"{at}.{key} must be a finite number (got {json.dumps(v)})")
            if kind == "int" and int(v) != v:
                raise SpaceError(f"{at}.{key} must be a whole number for type int (got {v})")
        if lo > hi:
            raise SpaceError(f"{at}: low ({lo}) must not exceed high ({hi})")
        if kind == "log" and lo <= 0:
            raise SpaceError(f"{at}.low must be > 0 on a log scale (got {lo})")
        if kind == "int":
            lo, hi = int(lo), int(hi)
        for v in (lo, hi):
            _check_value(at, name, target, model, want, v, base)
        b = _base_value(base, name, target)
        fits = lambda v: _is_number(v) and lo <= v <= hi and (kind != "int" or int(v) == v)  # noqa: E731
        if user_start:
            start = spec["start"]
        elif prefer_base and fits(b):
            start = b
        elif fits(spec.get("start")):
            start = spec["start"]
        elif fits(b):
            start = b
        else:  # the middle of the range (geometric middle on a log scale)
            start = math.sqrt(lo * hi) if kind == "log" else (lo + hi) / 2
            start = int(round(start)) if kind == "int" else _round_sig(start)
        if not _is_number(start) or not lo <= start <= hi:
            raise SpaceError(f"{at}.start must be a number within [{lo}, {hi}] (got {json.dumps(start)})")
        if kind == "int":
            if int(start) != start:
                raise SpaceError(f"{at}.start must be a whole number (got {start})")
            start = int(start)
        param = Param(name, kind, target, low=lo, high=hi, step=float(step), start=start)
    return param


def _value_type(name: str, target: str, model: str) -> type:
    if target == "model":
        return MODEL_PARAMS[model][name][0]
    annotation = {f.name: f.type for f in dataclasses.fields(TrainConfig)}[name]
    return {"int": int, "float": float, "str": str, "bool": bool}.get(str(annotation), object)


def _base_value(base: TrainConfig, name: str, target: str) -> Any:
    if target == "model":
        return base.model_params.get(name)
    return getattr(base, name)


def _check_value(at: str, name: str, target: str, model: str, want: type, value: Any, base: TrainConfig) -> None:
    """Reject a value TrainConfig (or the model builder) would reject, before any training starts."""
    ok_type = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: _is_number(value),
        str: isinstance(value, str),
        bool: isinstance(value, bool),
        list: isinstance(value, list),
    }.get(want, True)
    if not ok_type:
        raise SpaceError(f"{at}: {json.dumps(value)} is not a valid {want.__name__} for {name}")
    if target == "model":
        check = MODEL_PARAMS[model][name][1]
        good = {
            "unit": lambda v: 0 <= v < 1,
            "positive": lambda v: v >= 1,
            "nonneg": lambda v: v >= 0,
            "layers": lambda v: bool(v) and all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in v),
            "any": lambda v: True,
        }[check](value)
        if not good:
            rule = {"unit": "in [0, 1)", "positive": ">= 1", "nonneg": ">= 0",
                    "layers": "a non-empty list of layer widths >= 1"}[check]
            raise SpaceError(f"{at}: {name} must be {rule} (got {json.dumps(value)})")
        return
    try:
        dataclasses.replace(base, **{name: value}).validate()
    except (ValueError, TypeError) as e:
        raise SpaceError(f"{at}: {json.dumps(value)} is rejected by TrainConfig ({e})") from None
