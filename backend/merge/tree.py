"""Hierarchical merge: pair models level by level (2^n → 2^(n−1) → … → 1), keeping every node.

Why a tree: two models can share a basin after one permutation, but n models rarely can at once.
Merging pairwise, level by level, keeps every merge between two models; each intermediate node is a
model of its own that is stored and evaluated, so metrics can be plotted against the level.

Node numbering: nodes[0:n] are the leaves in the order given (level 0, parents ()), then every
level-1 node, then level 2, …; the last node is the root.

A plan is a list of levels; level k is a list of tuples of node positions *within level k−1*:
a pair (i, j) merges node j into node i's basin (i is "A", j is "B"); a single (i,) carries node i
up unchanged. Odd counts: with the built-in pairings an odd level carries its last node up as a
node with one parent, so 5 leaves go 5 → 3 → 2 → 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from backend.matching import MatchResult
from backend.merge.common import MergeError, Params, check_compatible, check_lam
from backend.merge.pair import merge_pair
from backend.progress import ProgressFn, report

Level = list[tuple[int, ...]]
PAIRINGS = ("as_listed", "random")


@dataclass
class TreeNode:
    index: int  # position in the returned node list
    level: int  # 0 = leaf
    parents: tuple[int, ...]  # node indices; () for leaves, one index for a carried-up node
    params: Params  # None only for a node an earlier run stored that no node built here needed (resume)
    match: MatchResult | None  # weight matching of parents[1] onto parents[0]; None unless merged
    seconds: float  # time to build this node (0 for leaves and carried nodes)


def leaf_nodes(models: Sequence[Mapping[str, Tensor]]) -> list[TreeNode]:
    """The leaves as nodes 0..n-1 (level 0, no parents): the start of every method's node list."""
    return [TreeNode(i, 0, (), dict(p), None, 0.0) for i, p in enumerate(models)]


def root_level(n_leaves: int) -> int:
    """Where a one-step method's root sits: ceil(log2 n), the level of a hierarchical root over n leaves."""
    return max(1, math.ceil(math.log2(n_leaves)))


def flat_nodes(models: Sequence[Mapping[str, Tensor]], params: Params, match: MatchResult | None,
               seconds: float) -> list[TreeNode]:
    """Leaves plus one root whose parents are all leaves (MergeMany, averaging and other one-step methods)."""
    nodes = leaf_nodes(models)
    return [*nodes, TreeNode(len(nodes), root_level(len(nodes)), tuple(range(len(nodes))), params, match, seconds)]


def stored_flat_root(models: Sequence[Mapping[str, Tensor]], stored: Mapping[int, Params] | None) -> list[TreeNode] | None:
    """The one-step tree again when an interrupted run already stored its root (node index n), so a rerun that
    was killed after the root's rows but before the tree was marked complete builds nothing; else None."""
    if stored is None or len(models) not in stored:
        return None
    return flat_nodes(models, stored[len(models)], None, 0.0)


def _adjacent(m: int) -> Level:
    """(0, 1), (2, 3), …, and (m−1,) when m is odd."""
    return [tuple(range(i, min(i + 2, m))) for i in range(0, m, 2)]


def _check_plan(n_leaves: int, levels: Sequence[Sequence[Sequence[int]]]) -> list[Level]:
    if isinstance(levels, str | bytes) or not isinstance(levels, Sequence) or len(levels) == 0:
        raise MergeError("an explicit pairing must be a non-empty list of levels, each a list of index tuples")
    size, checked = n_leaves, []
    for k, level in enumerate(levels, start=1):
        if isinstance(level, str | bytes) or not isinstance(level, Sequence) or len(level) == 0:
            raise MergeError(f"pairing level {k} must be a non-empty list of index tuples")
        groups: Level = []
        for group in level:
            if isinstance(group, str | bytes) or not isinstance(group, Sequence) or len(group) not in (1, 2):
                raise MergeError(f"pairing level {k}: {group!r} must be a pair (i, j) or a single (i,)")
            if not all(isinstance(i, int | np.integer) and not isinstance(i, bool) for i in group):
                raise MergeError(f"pairing level {k}: {group!r} must hold integer node positions")
            groups.append(tuple(int(i) for i in group))
        used = sorted(i for g in groups for i in g)
        if used != list(range(size)):
            raise MergeError(
                f"pairing level {k} must use each of the {size} nodes of the level below (0..{size - 1}) "
                f"exactly once, got {[list(g) for g in groups]}"
            )
        if all(len(g) == 1 for g in groups):
            raise MergeError(f"pairing level {k} merges nothing: it needs at least one pair")
        checked.append(groups)
        size = len(groups)
    if size != 1:
        raise MergeError(f"the pairing ends with {size} nodes; its last level must merge into a single root")
    return checked


def plan_tree(n_leaves: int, pairing: str | Sequence = "as_listed", seed: int = 0) -> list[Level]:
    """The tree's levels as index tuples, without touching weights (so the UI can draw it first).

    "as_listed" pairs leaves (0, 1), (2, 3), …; "random" pairs a seeded shuffle of the leaves, then
    adjacent nodes; a list of levels is validated and returned as tuples.
    """
    if isinstance(n_leaves, bool) or not isinstance(n_leaves, int) or n_leaves < 2:
        raise MergeError(f"a merge tree needs at least 2 leaf models, got {n_leaves!r}")
    if not isinstance(pairing, str):
        return _check_plan(n_leaves, pairing)
    if pairing not in PAIRINGS:
        raise MergeError(f"unknown pairing {pairing!r}; use one of {list(PAIRINGS)} or an explicit list of levels")
    order = list(range(n_leaves))
    if pairing == "random":
        order = [int(i) for i in np.random.default_rng(seed).permutation(n_leaves)]
    levels = [[tuple(order[i] for i in g) for g in _adjacent(n_leaves)]]
    while len(levels[-1]) > 1:
        levels.append(_adjacent(len(levels[-1])))
    return levels


def hierarchical_merge(
    leaves: Sequence[Mapping[str, Tensor]],
    *,
    lam: float = 0.5,
    pairing: str | Sequence = "as_listed",
    seed: int = 0,
    max_iter: int = 100,
    progress: ProgressFn | None = None,
    matcher: str = "weight",
    repair: bool = False,
    images: Tensor | None = None,
    stored: Mapping[int, Params] | None = None,
    on_node: Callable[[TreeNode], None] | None = None,
) -> list[TreeNode]:
    """Merge `leaves` along plan_tree(len(leaves), pairing, seed); every merge is merge_pair(A, B, lam)
    with the given matcher (and REPAIR, towards the two parents' interpolated statistics).

    Resuming: `stored` maps node indices already built (by an earlier, interrupted run) to their params;
    those nodes are not recomputed (their `match` is None) and their params are read only when a node still
    to build needs them as a parent, so `stored` may load lazily. `on_node(node)` is called with every node
    built here, as soon as it exists (before the next merge starts), so a caller can store it at once.
    """
    lam = check_lam(lam)
    check_compatible(leaves)
    levels = plan_tree(len(leaves), pairing, seed)
    stored = stored or {}
    nodes = leaf_nodes(leaves)
    below = list(range(len(leaves)))  # node indices of the level below
    total = sum(len(g) == 2 for level in levels for g in level)
    done = 0

    def params_of(index: int) -> Params:
        node = nodes[index]
        if node.params is None:  # a stored node, needed now as a parent
            node.params = dict(stored[index])
        return node.params

    for k, level in enumerate(levels, start=1):
        current = []
        for group in level:
            parents = tuple(below[i] for i in group)
            index = len(nodes)
            if index in stored:  # built by an earlier run: read lazily, never recomputed
                node = TreeNode(index, k, parents, None, None, 0.0)  # type: ignore[arg-type]
                done += len(parents) == 2
                nodes.append(node)
                current.append(index)
                continue
            if len(parents) == 1:
                node = TreeNode(index, k, parents, dict(params_of(parents[0])), None, 0.0)
            else:
                report(progress, "merge", done, total, f"level {k} · merge {done + 1} of {total}")
                start = time.perf_counter()
                a, b = params_of(parents[0]), params_of(parents[1])
                pair = merge_pair(a, b, lam=lam, seed=seed, max_iter=max_iter, matcher=matcher, repair=repair,
                                  images=images)
                node = TreeNode(index, k, parents, pair.params, pair.match, time.perf_counter() - start)
                done += 1
            nodes.append(node)
            current.append(index)
            if on_node is not None:
                on_node(node)
        below = current
    params_of(nodes[-1].index)  # the root's params are always there for the caller
    report(progress, "merge", done, total, f"tree done: root is node {nodes[-1].index}")
    return nodes


def parse_pairing(text: str) -> list[list[list[int]]]:
    """Custom pairs typed one level per line, e.g. '0-2, 1-3' then '0-1' (or ';' between levels) -> [[[0, 2], [1, 3]], [[0, 1]]].

    Indices refer to the previous level's nodes in order (level 1 pairs leaves); a lone index carries a
    node up unchanged.
    """
    levels = []
    for number, line in enumerate((ln.strip() for ln in text.strip().replace(";", "\n").splitlines()), start=1):
        if not line:
            continue
        level = []
        for token in (t.strip() for t in line.split(",")):
            if not token:
                continue
            try:
                level.append([int(p) for p in token.split("-")])
            except ValueError:
                raise ValueError(f"line {number}: {token!r} is not a pair like '0-1' or a single index") from None
            if len(level[-1]) > 2:
                raise ValueError(f"line {number}: {token!r} joins more than two nodes")
        levels.append(level)
    if not levels:
        raise ValueError("type at least one level of pairs, e.g. '0-1, 2-3'")
    return levels
