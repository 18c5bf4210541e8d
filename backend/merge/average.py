"""Naive weight averaging: the no-permutation baseline that shows why re-basin is needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

from backend.merge.common import Params, check_compatible, mean_params


def naive_average(models: Sequence[Mapping[str, Tensor]]) -> Params:
    """Elementwise mean of the models' weights, hidden units left where they are."""
    check_compatible(models)
    return mean_params(models)
