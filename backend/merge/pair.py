"""Pair merge: permute B into A's basin (weight matching), then interpolate the weights."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor

from backend.matching import MatchResult, weight_matching
from backend.merge.common import Params, check_compatible, check_lam, interpolate
from backend.permutation import apply_permutation, spec_for_params
from backend.progress import ProgressFn


@dataclass
class PairMerge:
    params: Params  # (1 - lam) * A + lam * perm(B)
    match: MatchResult  # perm that aligns B onto A, with its objective trace


def merge_pair(
    params_a: Mapping[str, Tensor],
    params_b: Mapping[str, Tensor],
    *,
    lam: float = 0.5,
    seed: int = 0,
    max_iter: int = 100,
    progress: ProgressFn | None = None,
) -> PairMerge:
    """θ = (1 − λ)·θ_A + λ·π(θ_B): λ = 0 gives A, λ = 1 gives B re-ordered into A's basis (same function as B)."""
    lam = check_lam(lam)
    check_compatible([params_a, params_b])
    spec = spec_for_params(params_a)
    match = weight_matching(spec, params_a, params_b, max_iter=max_iter, seed=seed, progress=progress)
    aligned_b = apply_permutation(spec, match.perm, params_b)
    return PairMerge(params=interpolate(params_a, aligned_b, lam), match=match)
