"""Stand-ins for SIGKILL in training tests: a run stopped at the start of an epoch, leaving only what the
previous epoch wrote to disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import train


class Kill(BaseException):
    """Raised where the process would die: nothing after the raise runs, only files already on disk survive."""


def fit_killed_at_epoch(monkeypatch: pytest.MonkeyPatch, cfg, data, run_dir: Path, epoch: int = 2) -> None:  # noqa: ANN001
    """Run ``fit`` until epoch ``epoch`` starts, then die; ``train_epoch`` is restored afterwards."""
    real_epoch = train.train_epoch

    def dying_epoch(*args):
        if args[7] == epoch:
            raise Kill
        return real_epoch(*args)

    monkeypatch.setattr(train, "train_epoch", dying_epoch)
    try:
        with pytest.raises(Kill):
            train.fit(cfg, data, run_dir, progress=False, tensorboard=False)
    finally:
        monkeypatch.setattr(train, "train_epoch", real_epoch)
