"""Naive weight averaging: the no-permutation baseline that shows why re-basin is needed."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from torch import Tensor

from backend.merge.common import MergeError, Params, check_compatible, mean_params
from backend.merge.tree import TreeNode, flat_nodes, stored_flat_root
from backend.progress import ProgressFn, report


def naive_average(models: Sequence[Mapping[str, Tensor]]) -> Params:
    """Elementwise mean of the models' weights, hidden units left where they are."""
    check_compatible(models)
    return mean_params(models)


def average_nodes(models: Sequence[Mapping[str, Tensor]], *, progress: ProgressFn | None = None,
                  stored=None, **_unused) -> list[TreeNode]:
    """The registry's face of averaging: the leaves, then one root (parents: every leaf); `stored` holding the
    root (an interrupted run's) returns it as it is."""
    if (done := stored_flat_root(models, stored)) is not None:
        return done
    check_compatible(models)
    if len(models) < 2:
        raise MergeError(f"averaging needs at least 2 models, got {len(models)}")
    start = time.perf_counter()
    params = naive_average(models)
    report(progress, "average", 1, 1)
    return flat_nodes(models, params, None, time.perf_counter() - start)
