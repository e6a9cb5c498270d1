"""PNG figures for training runs and evaluations; matplotlib's Agg backend, so no display is needed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curves(history: Sequence[dict], path: str | Path, title: str = "") -> None:
    """Train/validation accuracy and loss per epoch, from ``history.json`` rows."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for key, style in (("train", "-o"), ("val", "-s")):
        ax_acc.plot(epochs, [h[f"{key}_acc"] for h in history], style, ms=3, label=key)
        ax_loss.plot(epochs, [h[f"{key}_loss"] for h in history], style, ms=3, label=key)
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: str | Path, title: str = "") -> None:
    """Counts and row-normalised (recall) confusion matrices side by side."""
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, mat, fmt, name in ((axes[0], cm, "d", "counts"), (axes[1], norm, ".2f", "row-normalised")):
        ax.imshow(mat, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set(xlabel="predicted", ylabel="true", title=name)
        top = mat.max() if mat.size else 1
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                color = "white" if mat[i, j] > top / 2 else "black"
                ax.text(j, i, format(mat[i, j], fmt), ha="center", va="center", color=color, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: str | Path, title: str = "") -> None:
    """One-vs-rest ROC curve per class; ``curves`` maps class -> (fpr, tpr, auc)."""
    fig, ax = plt.subplots(figsize=(6, 5.5))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title or "ROC (one-vs-rest)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_search(trials: Sequence[dict], path: str | Path, title: str = "") -> None:
    """Annealing trials: validation accuracy (accepted vs rejected), best-so-far, and temperature."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    it = np.array([t["iteration"] for t in trials])
    acc = np.array([np.nan if t.get("val_accuracy") is None else t["val_accuracy"] for t in trials], float)
    accepted = np.array([bool(t.get("accepted")) for t in trials])
    failed = np.isnan(acc)
    ax.scatter(it[accepted], acc[accepted], c="tab:green", label="accepted", zorder=3)
    ax.scatter(it[~accepted & ~failed], acc[~accepted & ~failed], c="tab:red", marker="x", label="rejected", zorder=3)
    ax.plot(it, [t.get("best_so_far") or np.nan for t in trials], "k-", lw=1.5, label="best so far")
    if failed.any():  # failed trials have no accuracy: mark them on the bottom edge so they are not invisible
        ax.scatter(it[failed], np.full(failed.sum(), 0.02), transform=ax.get_xaxis_transform(), c="tab:gray",
                   marker="v", label="failed", zorder=3)
    ax.set(xlabel="trial", ylabel="validation accuracy (PublicTest)")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(it, [t["temperature"] for t in trials], "--", color="tab:orange", label="temperature")
    ax2.set_ylabel("temperature")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    # below the axes: inside, the legend hid trials at the bottom right (late, rejected ones)
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper center", bbox_to_anchor=(0.5, -0.14),
              ncol=len(lines[1]) + len(lines2[1]), fontsize=8, frameon=False)
    ax.set_title(title or "simulated annealing")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
