"""Logit ensemble: the upper-bound baseline a merged single model tries to reach."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from backend.merge.common import MergeError, check_compatible
from backend.models import mlp_from_state_dict


class EnsembleModel(nn.Module):
    """Mean of the member models' logits (not probabilities), so it plugs into any logit-based metric."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if len(members) == 0:
            raise MergeError("an ensemble needs at least one member model")
        self.members = nn.ModuleList(members)
        self.config = getattr(members[0], "config", None)  # so code that reads model.config (input shape) works

    @classmethod
    def from_state_dicts(cls, models: Sequence[Mapping[str, Tensor]], in_shape=None) -> EnsembleModel:
        check_compatible(models)
        return cls([mlp_from_state_dict(dict(p), in_shape) for p in models]).eval()

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([member(x) for member in self.members]).mean(0)  # [B, num_classes]
