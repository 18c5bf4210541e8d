"""Merge methods by name, all with one signature, so jobs and the CLI pick a method from a string.

Every method maps leaves -> list[TreeNode] (leaves first, root last), so a job stores any method's
result the same way. "merge_many" and "average" give one root node whose parents are all leaves,
at level ceil(log2(n)) (where a hierarchical root sits, so levels line up across methods).
MergeMany's root carries its objective trace in `match` (perm empty: each model has its own;
`sweeps` counts rounds). Options a method does not use are ignored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

from torch import Tensor

from backend.matching import MatchResult
from backend.merge.average import naive_average
from backend.merge.common import MergeError, check_compatible, check_lam
from backend.merge.merge_many import merge_many
from backend.merge.tree import TreeNode, hierarchical_merge
from backend.progress import ProgressFn

MergeMethod = Callable[..., list[TreeNode]]


def _leaves(models: Sequence[Mapping[str, Tensor]]) -> list[TreeNode]:
    return [TreeNode(i, 0, (), dict(p), None, 0.0) for i, p in enumerate(models)]


def _root_level(n_leaves: int) -> int:
    return max(1, math.ceil(math.log2(n_leaves)))


def _hierarchical(models, *, lam=0.5, pairing="as_listed", seed=0, max_iter=100, progress: ProgressFn | None = None):
    return hierarchical_merge(models, lam=lam, pairing=pairing, seed=seed, max_iter=max_iter, progress=progress)


def _merge_many(models, *, lam=0.5, pairing="as_listed", seed=0, max_iter=100, progress: ProgressFn | None = None):
    check_lam(lam)
    result = merge_many(models, seed=seed, max_iter=max_iter, progress=progress)
    summary = MatchResult(perm={}, objective_trace=result.objective_trace, sweeps=result.rounds, seconds=result.seconds)
    nodes = _leaves(models)
    return [*nodes, TreeNode(len(nodes), _root_level(len(nodes)), tuple(range(len(nodes))), result.params, summary,
                             result.seconds)]


def _average(models, *, lam=0.5, pairing="as_listed", seed=0, max_iter=100, progress: ProgressFn | None = None):
    check_lam(lam)
    check_compatible(models)
    if len(models) < 2:
        raise MergeError(f"averaging needs at least 2 models, got {len(models)}")
    start = time.perf_counter()
    params = naive_average(models)
    nodes = _leaves(models)
    return [*nodes, TreeNode(len(nodes), _root_level(len(nodes)), tuple(range(len(nodes))), params, None,
                             time.perf_counter() - start)]


MERGE_METHODS: dict[str, MergeMethod] = {
    "hierarchical": _hierarchical,
    "merge_many": _merge_many,
    "average": _average,
}


def get_method(name: str) -> MergeMethod:
    if name not in MERGE_METHODS:
        raise MergeError(f"unknown merge method {name!r}; choose one of {sorted(MERGE_METHODS)}")
    return MERGE_METHODS[name]
