"""MergeMany (Ainsworth et al. 2023, Alg. 3): align every model to the mean of the others, repeat.

Each step permutes one model to best match the mean of the other n−1 (already aligned) models. The
objective sum_i <θ_i, mean of the others> only grows step by step (it is a positive multiple of the
sum of pairwise inner products), so rounds stop when one changes no permutation or gains nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from backend.matching import IMPROVEMENT_RTOL, MatchResult, weight_matching
from backend.merge.alignment import activation_merge_many, check_alignment_options, repaired
from backend.merge.common import MergeError, Params, check_compatible, mean_params
from backend.merge.tree import TreeNode, flat_nodes
from backend.permutation import PermutationSpec, apply_permutation, is_identity, spec_for_params
from backend.progress import ProgressFn, report


@dataclass
class MergeManyResult:
    params: Params  # mean of the aligned models
    aligned: list[Params]  # every input model, permuted into the common basis
    objective_trace: list[float]  # sum_i <θ_i, mean of the others> (permuted params) after each round
    rounds: int
    seconds: float


def alignment_objective(spec: PermutationSpec, models: Sequence[Params]) -> float:
    """sum_i <θ_i, mean_{j≠i} θ_j> over every parameter a permutation touches, in float64."""
    keys = [k for k, axes in spec.axes_to_perm.items() if any(p is not None for p in axes)]
    n = len(models)
    total = 0.0
    for key in keys:
        flat = torch.stack([m[key].detach().to("cpu", torch.float64).reshape(-1) for m in models])  # [n, D]
        s = flat.sum(0)
        total += float((flat @ s).sum() - (flat * flat).sum()) / (n - 1)
    return total


def merge_many(
    models: Sequence[Mapping[str, Tensor]],
    *,
    seed: int = 0,
    max_rounds: int = 100,
    max_iter: int = 100,
    progress: ProgressFn | None = None,
    matcher: str = "weight",
    repair: bool = False,
    images: Tensor | None = None,
) -> MergeManyResult:
    """Align all models into one basis with MergeMany and return their mean (plus the aligned models).

    matcher "activation": align each model's activations to the mean activations of the others (needs
    images); repair: REPAIR the mean towards the mean statistics of the aligned models on images.
    """
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise MergeError(f"max_rounds must be a positive integer, got {max_rounds!r}")
    check_compatible(models)
    if len(models) < 2:
        raise MergeError(f"MergeMany needs at least 2 models, got {len(models)}")
    check_alignment_options(matcher, repair, images)
    start = time.perf_counter()
    if matcher == "activation":
        aligned, trace, rounds = activation_merge_many(models, images, seed=seed, max_rounds=max_rounds,
                                                       progress=progress)
    else:
        aligned, trace, rounds = _weight_rounds(models, seed, max_rounds, max_iter, progress)
    params = mean_params(aligned)
    if repair:
        params = repaired(params, aligned, [1 / len(aligned)] * len(aligned), images)
    n = len(aligned)
    report(progress, "merge_many", n, n, f"done after {rounds} round(s)", round=rounds)
    return MergeManyResult(params=params, aligned=aligned, objective_trace=trace, rounds=rounds,
                           seconds=time.perf_counter() - start)


def _weight_rounds(models, seed, max_rounds, max_iter, progress) -> tuple[list[Params], list[float], int]:
    """Ainsworth et al.'s rounds with weight matching: (aligned models, objective per round, rounds)."""
    spec = spec_for_params(models[0])
    aligned = [dict(m) for m in models]
    n = len(aligned)
    rng = np.random.default_rng(seed)
    trace: list[float] = []
    previous = alignment_objective(spec, aligned)
    rounds = 0
    for round_index in range(max_rounds):
        rounds = round_index + 1
        changed = False
        for step, i in enumerate(rng.permutation(n)):
            # rounds are open-ended: round r fills the next half of what is left, so the bar never restarts
            left = 0.5 ** (rounds - 1)
            report(progress, "merge_many", round((1 - left + left * 0.5 * step / n) * 1000), 1000,
                   f"round {rounds} · model {step + 1} of {n}", round=rounds)
            others = mean_params([aligned[j] for j in range(n) if j != i])
            match = weight_matching(spec, others, aligned[i], max_iter=max_iter, seed=int(rng.integers(2**31)))
            if not is_identity(match.perm):
                aligned[i] = apply_permutation(spec, match.perm, aligned[i])
                changed = True
        trace.append(alignment_objective(spec, aligned))
        improved = trace[-1] > previous + IMPROVEMENT_RTOL * max(1.0, abs(previous))
        previous = trace[-1]
        if not changed or not improved:
            break
    return aligned, trace, rounds


def merge_many_nodes(models: Sequence[Mapping[str, Tensor]], *, seed: int = 0, max_iter: int = 100,
                     progress: ProgressFn | None = None, **options) -> list[TreeNode]:
    """The registry's face of MergeMany: the leaves, then one root whose `match` holds the objective trace
    (perm empty, since every model has its own; `sweeps` counts rounds). `options`: merge_many's own."""
    result = merge_many(models, seed=seed, max_iter=max_iter, progress=progress, **options)
    summary = MatchResult(perm={}, objective_trace=result.objective_trace, sweeps=result.rounds,
                          seconds=result.seconds)
    return flat_nodes(models, result.params, summary, result.seconds)
