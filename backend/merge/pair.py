"""Pair merge: permute B into A's basin (weight or activation matching), interpolate, optionally REPAIR."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor

from backend.matching import MatchResult
from backend.merge.alignment import align_onto, check_alignment_options, repaired
from backend.merge.common import Params, check_compatible, check_lam, interpolate
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
    matcher: str = "weight",
    repair: bool = False,
    images: Tensor | None = None,
) -> PairMerge:
    """θ = (1 − λ)·θ_A + λ·π(θ_B): λ = 0 gives A, λ = 1 gives B re-ordered into A's basis (same function as B).

    matcher: "weight" or "activation" (needs images); repair: REPAIR the result towards the interpolated
    statistics of A and π(B) on images (backend.merge.repair).
    """
    lam = check_lam(lam)
    check_compatible([params_a, params_b])
    check_alignment_options(matcher, repair, images)
    aligned_b, match = align_onto(params_a, params_b, matcher=matcher, images=images, seed=seed,
                                  max_iter=max_iter, progress=progress)
    params = interpolate(params_a, aligned_b, lam)
    if repair:
        params = repaired(params, [params_a, aligned_b], [1 - lam, lam], images)
    return PairMerge(params=params, match=match)
