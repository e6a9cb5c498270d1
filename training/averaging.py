"""Weight averaging: an exponential moving average (EMA) of the weights, validated and exported in their place.

An EMA of the weights over the last few thousand steps sits nearer the middle of the loss basin than the
last step's weights, which is why it usually validates better at no inference cost (as SWA does; Izmailov et
al. 2018). BatchNorm's running statistics are averaged the same way, so the averaged model needs no extra
pass over the data. The decay warms up as ``(1 + n) / (10 + n)`` so the random initial weights do not linger.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """An EMA copy of ``net``; :meth:`update` after each optimizer step.

    It follows the module it was made from, not whatever wrapper the loop steps (DDP, torch.compile), whose
    state-dict keys carry prefixes.
    """

    def __init__(self, net: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(net).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0
        self._source = net

    @torch.no_grad()
    def update(self, net: torch.nn.Module | None = None) -> None:
        """Move the average towards ``net`` (default: the module it was made from)."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        mine, theirs = self.model.state_dict(), (net or self._source).state_dict()
        floats = [k for k, v in mine.items() if v.dtype.is_floating_point]
        torch._foreach_lerp_([mine[k] for k in floats], [theirs[k].detach() for k in floats], 1 - d)
        for k, v in mine.items():
            if not v.dtype.is_floating_point:
                v.copy_(theirs[k])

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
