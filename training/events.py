"""TensorBoard event files for training runs and searches, written only when tensorboardX is installed.

tensorboardX is optional (the GPU machines we train on lack it): without it a run or a search goes on and
writes its JSON, CSV and PNG evidence as usual, after one note saying what is missing.
"""

from __future__ import annotations

from pathlib import Path


def summary_writer(run_dir: Path, note: bool, still_written: str):  # noqa: ANN201 - tensorboardX is optional
    """tensorboardX's ``SummaryWriter`` on ``run_dir``, or None with a note (when ``note``) that names the
    files the run writes anyway (``still_written``)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        if note:
            print("note: tensorboardX is not installed, so no TensorBoard events are written "
                  f"(pip install tensorboardX); {still_written} still are")
        return None
    return SummaryWriter(str(run_dir))
