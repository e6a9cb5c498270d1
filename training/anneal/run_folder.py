"""A search's run folder: trials.json (the state a rerun resumes from), trials.csv, best.json, search.png and
tensorboard scalars. Everything here is written by the search's own process, whatever ran the trials."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.core import write_text
from training.anneal.trials import SUBSET_SHUFFLE_SEED, full_config, trial_config
from training.events import summary_writer
from training.search_space import SearchSpace
from training.train import TrainConfig

FORMAT = "emotionlens-anneal/1"


def read_state(run_dir: Path) -> dict:
    path = Path(run_dir) / "trials.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{run_dir}: no trials.json, not an annealing run folder") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable ({e})") from None
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: not an annealing state file ({FORMAT})")
    state["settings"].setdefault("workers", 1)  # searches from before --workers ran one trial at a time
    state.setdefault("pending", [])
    return state


def csv_text(trials: Sequence[dict], names: Sequence[str]) -> str:
    """trials.csv: one row per trial, parameters as columns, and the device that trained it."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["iteration", "status", "temperature", *names, "val_accuracy", "acceptance_probability", "accepted",
                "best_so_far", "seconds", "epochs_run", "reason", "device"])
    for t in trials:
        params = [json.dumps(t["params"][n]) if isinstance(t["params"][n], list) else t["params"][n] for n in names]
        acc = "" if t["val_accuracy"] is None else f"{t['val_accuracy']:.4f}"
        best = "" if t["best_so_far"] is None else f"{t['best_so_far']:.4f}"
        epochs = t["info"].get("epochs_run", "")
        reason = t["reason"] or (f"same as trial {t['info']['cached_from']}" if "cached_from" in t["info"] else "")
        w.writerow([t["iteration"], t["status"], f"{t['temperature']:.5f}", *params, acc,
                    f"{t['acceptance_probability']:.3f}", int(t["accepted"]), best, t["seconds"], epochs, reason,
                    t["info"].get("device", "")])
    return buf.getvalue()


def markdown_table(trials: Sequence[dict], names: Sequence[str]) -> str:
    head = ["trial", "T", *names, "val acc", "p(accept)", "accepted", "best so far", "s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in trials:
        acc = t["status"] if t["val_accuracy"] is None else f"{t['val_accuracy']:.4f}"
        if t["status"] == "cached":
            acc += f" (= trial {t['info']['cached_from']})"
        best = "" if t["best_so_far"] is None else f"{t['best_so_far']:.4f}"
        row = [t["iteration"], f"{t['temperature']:.4f}", *(_fmt(t["params"][n]) for n in names), acc,
               f"{t['acceptance_probability']:.2f}", "yes" if t["accepted"] else "no", best, f"{t['seconds']:.0f}"]
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return json.dumps(v) if isinstance(v, list) else str(v)


class RunFolder:
    """Everything the CLI writes: state (trials.json), trials.csv, best.json, search.png, tensorboard.

    ``device`` says where the search ran (``cpu``, ``cuda:0,cuda:1``, ``dask tcp://...``) for best.json;
    ``pending`` are trials that finished but wait for an earlier trial of their step (kept for a resume)."""

    def __init__(self, run_dir: Path, settings: dict, space: SearchSpace, base: TrainConfig,
                 tensorboard: bool = True, device: str = "cpu", logged: int = 0):
        self.dir, self.settings, self.space, self.base = Path(run_dir), settings, space, base
        self.device = device
        self.pending: list[dict] = []
        self.writer = None
        if tensorboard:
            self.writer = summary_writer(self.dir, True, "trials.csv, best.json and search.png")
        self._logged = logged

    def save_state(self, trials: list[dict], complete: bool = False, stopped: str = "running") -> None:
        """trials.json alone: enough for a resume (called too when a trial finished ahead of its turn)."""
        done = trials[-1]["iteration"] if trials else 0
        self.pending = [r for r in self.pending if r["iteration"] > done]
        state = {"format": FORMAT, "settings": self.settings, "complete": complete, "stopped": stopped,
                 "best": _best(trials), "trials": trials, "pending": self.pending}
        write_text(self.dir / "trials.json", json.dumps(state, indent=1) + "\n")

    def save(self, trials: list[dict], complete: bool = False, stopped: str = "running") -> None:
        """Every file, after a trial is settled."""
        self.save_state(trials, complete, stopped)
        best = _best(trials)
        write_text(self.dir / "trials.csv", csv_text(trials, self.space.names))
        if best is not None:
            write_text(self.dir / "best.json", json.dumps(self.best_json(best, len(trials)), indent=2) + "\n")
        from training.plots import plot_search

        s = self.settings
        plot_search(trials, self.dir / "search.png",
                    title=f"annealing {s['model']} (seed {s['seed']}, {len(trials)}/{s['iterations']} trials"
                    f"{', subset ' + str(s['subset']) if s['subset'] else ''})")

    def best_json(self, best: dict, done: int) -> dict:
        """{"config": TrainConfig fields for a full-data run, "search": what the search measured}."""
        s = self.settings
        trial_cfg = trial_config(self.space, self.base, best["params"], s["subset"], s["epochs_scale"],
                                 s["max_epochs"])
        return {
            "config": dataclasses.asdict(full_config(self.space, self.base, best["params"])),
            "search": {
                "note": "training.train reads only 'config' (full data, searched epochs); val_accuracy was "
                        "measured by the search's trials, with trial_limit images and trial_epochs epochs",
                "run": self.dir.name, "iteration": best["iteration"], "val_accuracy": best["val_accuracy"],
                "metric": "PublicTest (validation) accuracy", "params": best["params"],
                "trial_limit": trial_cfg.limit, "trial_epochs": trial_cfg.epochs,
                "subset_sampling": (f"first {s['subset']} training images after a fixed shuffle "
                                    f"(numpy default_rng({SUBSET_SHUFFLE_SEED}))") if s["subset"] else None,
                "epochs_scale": s["epochs_scale"], "max_epochs": s["max_epochs"], "seed": s["seed"],
                "trials_done": done, "iterations": s["iterations"], "workers": s["workers"],
                "device": best["info"].get("device"), "device_name": best["info"].get("device_name"),
                "search_device": self.device,
            },
        }

    def log_trial(self, trials: list[dict]) -> None:
        """Tensorboard scalars (accuracy, temperature, acceptance) and one hparams run per new trial."""
        if self.writer is None:
            return
        for t in trials[self._logged:]:
            i = t["iteration"]
            acc = t["val_accuracy"] if t["val_accuracy"] is not None else 0.0
            accepted_so_far = sum(x["accepted"] for x in trials[:i])
            w = self.writer
            w.add_scalar("search/val_accuracy", acc, i)
            w.add_scalar("search/best_so_far", t["best_so_far"] or 0.0, i)
            w.add_scalar("search/temperature", t["temperature"], i)
            w.add_scalar("search/accepted", float(t["accepted"]), i)
            w.add_scalar("search/acceptance_probability", t["acceptance_probability"], i)
            w.add_scalar("search/acceptance_rate", accepted_so_far / i, i)
            hp = {k: (v if isinstance(v, int | float | str | bool) else json.dumps(v)) for k, v in t["params"].items()}
            hp["status"] = t["status"]
            # the hparams run lives in the trial's own folder, next to its history.json and curves.png
            w.add_hparams(hp, {"hparam/val_accuracy": acc}, name=f"trials/trial-{i:03d}", global_step=i)
            w.flush()
        self._logged = len(trials)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _best(trials: Sequence[dict]) -> dict | None:
    ok = [t for t in trials if t["val_accuracy"] is not None]
    return max(ok, key=lambda t: (t["val_accuracy"], -t["iteration"])) if ok else None
