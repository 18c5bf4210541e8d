"""Activation matching (Ainsworth et al. 2023, "Git Re-Basin", §3.1): permute B's hidden units onto A's.

Run both models on one batch of (training) images. For every hidden layer, the permutation of B's units
is the linear assignment that maximises the summed correlation between A's unit i and B's unit π(i)
(post-ReLU activations, as the paper's MLP code). For an MLP a permutation only reorders B's activations,
so each layer is one independent LAP (no sweeps). A unit that is dead on the whole batch correlates with
nothing; the pre-activation correlation, added with a tiny weight, breaks those ties so that a planted
permutation is recovered exactly.

Conventions as backend.matching: apply_permutation(spec, result.perm, params_b) lands B on A;
objective_trace holds one value, the mean matched correlation per unit summed over layers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from backend.matching import MatchResult, _check_pair
from backend.permutation import PermutationSpec
from backend.progress import ProgressFn, report
from backend.stacked import stack_params, stacked_preactivations

TIE_BREAK = 1e-4  # weight of the pre-activation correlation (matters only among near-equal assignments)
VERSION = 1


def correlation(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation between the columns of a [N, n] and of b [N, m] -> [n, m], float64; 0 for constants."""
    a, b = a.double(), b.double()
    a = a - a.mean(0)
    b = b - b.mean(0)
    std_a, std_b = a.pow(2).mean(0).sqrt(), b.pow(2).mean(0).sqrt()
    cov = a.T @ b / a.shape[0]
    denom = std_a[:, None] * std_b[None, :]
    return torch.where(denom > 0, cov / denom.clamp_min(1e-300), torch.zeros_like(cov))


@torch.no_grad()
def activation_matching(
    spec: PermutationSpec,
    params_a: Mapping[str, Tensor],
    params_b: Mapping[str, Tensor],
    x: Tensor,
    *,
    progress: ProgressFn | None = None,
) -> MatchResult:
    """The permutation of B's hidden units that best correlates B's activations with A's on images x."""
    start = time.perf_counter()
    sizes = _check_pair(spec, params_a, params_b)
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 2:
        raise ValueError("activation matching needs a batch of at least 2 images")
    names = spec.perm_names
    expected = [f"P_{i}" for i in range(len(names))]
    if sorted(names) != sorted(expected):
        raise ValueError("activation matching supports the MLP permutation spec (P_0 .. P_k) only")
    za = stacked_preactivations(stack_params([dict(params_a)]), x)
    zb = stacked_preactivations(stack_params([dict(params_b)]), x)
    perm: dict[str, Tensor] = {}
    total = 0.0
    for i, name in enumerate(expected):
        a, b = za[i][0], zb[i][0]  # [N, n]
        if a.shape[1] != sizes[name]:
            raise ValueError(f"layer {i} has {a.shape[1]} units but permutation {name} has {sizes[name]}")
        post = correlation(torch.relu(a), torch.relu(b)).cpu()
        sim = post + TIE_BREAK * correlation(a, b).cpu()
        rows, cols = linear_sum_assignment(sim.numpy(), maximize=True)
        perm[name] = torch.from_numpy(cols).long()
        total += float(post[rows, cols].mean())
        report(progress, "match", i + 1, len(expected), f"activation matching: layer {i}")
    return MatchResult(perm=perm, objective_trace=[total], sweeps=1, seconds=time.perf_counter() - start)
