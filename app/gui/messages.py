"""What the window says, in the words of someone who has never opened a terminal, and where output goes.

Every message is a pair: the sentence shown (what happened, what to do, with menu names the user can see) and
the technical detail (paths, the loader's own error) kept one click away behind "Details". The folder rules
here decide where folder labelling writes: a new folder next to the photos, never a folder that already
holds files unless the user says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.core import IMAGE_SUFFIXES

OUTPUT_SUFFIX = " labels"  # "Holiday" -> "Holiday labels", next to it


@dataclass(frozen=True)
class Message:
    """``text`` for the window; ``detail`` for the Details button (may be empty)."""

    text: str
    detail: str = ""


def models_problem(error: str, zoo_dir: str | os.PathLike | None) -> Message:
    """The models could not be loaded: say whether they are missing or damaged and what the user can do."""
    folder = f"\n\n{zoo_dir}" if zoo_dir is not None else ""
    missing = any(w in error for w in ("not found", "missing", "No such file"))
    if missing:
        text = (
            "EmotionLens cannot find its emotion models, so it can show faces but not their expressions."
            f"\n\nReinstall EmotionLens, or copy the model folder you were given into this folder:{folder}"
            "\n\nThen choose File > Reload models."
        )
    else:
        text = (
            "A file of EmotionLens's emotion models is damaged or incomplete, so expressions cannot be shown."
            f"\n\nReinstall EmotionLens, or copy the model folder you were given again into:{folder}"
            "\n\nThen choose File > Reload models."
        )
    return Message(text, error)


def unreadable_photo(name: str, reason: str, detail: str) -> Message:
    """A file that is not a photo the app can read: say which, why in short, and what it can open."""
    kinds = ", ".join(sorted({s.lstrip(".").upper() for s in IMAGE_SUFFIXES} - {"JPEG", "TIF"}))
    return Message(f"Cannot open {name}.\n\n{reason}\n\nChoose another photo ({kinds}).", detail)


def unreadable_video(name: str, reason: str, detail: str) -> Message:
    """A video the app cannot play: which, why in short (app.video's reason), and what it can open."""
    from app.video import VIDEO_SUFFIXES

    kinds = ", ".join(sorted({s.lstrip(".").upper() for s in VIDEO_SUFFIXES} - {"M4V"}))
    return Message(f"Cannot play {name}.\n\n{reason[0].upper() + reason[1:] if reason else ''}\n\n"
                   f"Choose another video ({kinds}), or a photo.", detail)


def models_status(error: str) -> str:
    """One status-bar line for a models problem (the detail is behind the Details button)."""
    what = "the model files are missing" if any(w in error for w in ("not found", "missing")) else (
        "a model file is damaged")
    return f"Models not loaded: {what}. See Details, or File > Reload models after fixing."


def default_output_folder(src: str | os.PathLike) -> Path:
    """A new folder beside ``src`` for folder labelling: ``<src> labels``, or ``<src> labels 2``… if taken.

    Never the input's parent or any folder that already holds files: one OK in the dialog must not scatter
    labels.csv and annotated/ into a data folder the user did not choose.
    """
    src = Path(src).resolve()
    base = src.with_name(src.name + OUTPUT_SUFFIX)
    candidate, n = base, 2
    while candidate.exists() and not _is_empty_dir(candidate):
        candidate = base.with_name(f"{base.name} {n}")
        n += 1
    return candidate


def _is_empty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and not any(path.iterdir())
    except OSError:
        return False


def output_folder_question(out: str | os.PathLike) -> str | None:
    """The question to ask before writing into ``out``, or None when it is new or empty (nothing to confirm)."""
    out = Path(out)
    if not out.exists():
        return None
    if not out.is_dir():
        return f"{out} is a file, not a folder. Choose another place for the results."
    if _is_empty_dir(out):
        return None
    return (
        f"The folder {out.name!r} already contains files.\n\nEmotionLens will add labels.csv, summary.json and "
        "an 'annotated' folder there, replacing earlier results with these names. Your photos are never changed."
        "\n\nWrite the results there anyway?"
    )
