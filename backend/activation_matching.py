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


def standardize(a: Tensor) -> Tensor:
    """Columns of a [N, n] centred and scaled to unit (population) std, float64; constant columns become 0."""
    a = a.double()
    a = a - a.mean(0)
    std = a.pow(2).mean(0).sqrt()
    return torch.where(std > 0, a / std.clamp_min(1e-300), torch.zeros_like(a))


def correlation(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation between the columns of a [N, n] and of b [N, m] -> [n, m], float64; 0 for constants."""
    return standardize(a).T @ standardize(b) / a.shape[0]


def assignment(post: Tensor, pre: Tensor | None = None) -> tuple[Tensor, float]:
    """The LAP on a correlation matrix [n, n] (rows: target units, columns: B's units), ties broken by pre."""
    post = post.cpu()
    sim = post if pre is None else post + TIE_BREAK * pre.cpu()
    rows, cols = linear_sum_assignment(sim.numpy(), maximize=True)
    return torch.from_numpy(cols).long(), float(post[rows, cols].mean())


def hidden_activations(params: Mapping[str, Tensor], x: Tensor) -> list[Tensor]:
    """Pre-activations [N, n] of every hidden layer of one MLP on images x."""
    return [z[0] for z in stacked_preactivations(stack_params([dict(params)]), x)[:-1]]


def layer_assignment(pre_a: Tensor, pre_b: Tensor) -> tuple[Tensor, float]:
    """perm [n] with B's unit perm[i] matched to A's unit i, and the mean matched post-ReLU correlation."""
    return assignment(correlation(torch.relu(pre_a), torch.relu(pre_b)), correlation(pre_a, pre_b))


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
    check_images(x)
    expected = mlp_perm_names(spec)
    za, zb = hidden_activations(params_a, x), hidden_activations(params_b, x)
    perm: dict[str, Tensor] = {}
    total = 0.0
    for i, name in enumerate(expected):
        if za[i].shape[1] != sizes[name]:
            raise ValueError(f"layer {i} has {za[i].shape[1]} units but permutation {name} has {sizes[name]}")
        perm[name], value = layer_assignment(za[i], zb[i])
        total += value
        report(progress, "match", i + 1, len(expected), f"activation matching: layer {i}")
    return MatchResult(perm=perm, objective_trace=[total], sweeps=1, seconds=time.perf_counter() - start)


def check_images(x) -> None:
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 2:
        raise ValueError("activation matching needs a batch of at least 2 images")


def mlp_perm_names(spec: PermutationSpec) -> list[str]:
    expected = [f"P_{i}" for i in range(len(spec.perm_names))]
    if sorted(spec.perm_names) != sorted(expected):
        raise ValueError("activation matching supports the MLP permutation spec (P_0 .. P_k) only")
    return expected
