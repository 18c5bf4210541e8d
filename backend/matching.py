"""Weight matching (Ainsworth et al. 2023, "Git Re-Basin", Alg. 1): permute B's hidden units onto A's.

Coordinate descent over the permutations: each step fixes all but one permutation P and picks the P
that maximises sum_k <W_A[k], P W_B[k] (other perms applied)> over every parameter P touches. That
is a linear assignment problem, solved exactly with scipy. A sweep visits every permutation once in
a seeded random order; we stop after a sweep that improves nothing.

Why it is fast: every term of a similarity matrix depends only on the *other* permutations touching
that parameter, so we cache each term and touch it only when one of those changed. The input layer
(the 3072-wide one) depends on no other permutation and is computed exactly once. When only k of a
layer's units moved since a term was cached (late sweeps move few), the term gets a rank-k update
instead of a full matmul. Everything runs in float64 on one device (the CPU unless `device` says
otherwise; the LAPs always run on the CPU with scipy), so a seed gives one answer per device.

Callers that match one model against many targets (MergeMany) may pass `terms`: similarity terms of
parameters that no other permutation touches (the input layer), computed once by them and reused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from backend.permutation import (
    Permutation,
    PermutationSpec,
    check_params,
    check_permutation,
    identity_permutation,
    permuted_param,
)
from backend.progress import ProgressFn, report

UPDATE_FRACTION = 0.25  # update a cached term in place when at most this share of its other perm moved
IMPROVEMENT_RTOL = 1e-12  # a step "improves" when it gains more than this fraction of the objective


@dataclass
class MatchResult:
    perm: Permutation  # apply_permutation(spec, perm, params_b) lands B on A
    objective_trace: list[float]  # sum_k <A_k, perm(B)_k> over permuted params, after each sweep
    sweeps: int
    seconds: float


def _check_pair(spec: PermutationSpec, params_a: Mapping[str, Tensor], params_b: Mapping[str, Tensor]) -> dict[str, int]:
    sizes = check_params(spec, params_a)
    check_params(spec, params_b)
    for key in spec.axes_to_perm:
        if params_a[key].shape != params_b[key].shape:
            raise ValueError(
                f"cannot match models of different shapes: '{key}' is {tuple(params_a[key].shape)} "
                f"in A and {tuple(params_b[key].shape)} in B"
            )
    return sizes


def _as_rows(w: Tensor, axis: int, n: int) -> Tensor:
    """Move `axis` first and flatten the rest: [n, -1]."""
    return torch.movedim(w, axis, 0).reshape(n, -1)


def matching_objective(spec: PermutationSpec, perm: Permutation, a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> float:
    """sum_k <A_k, perm(B)_k> over every parameter some permutation touches (float64)."""
    total = 0.0
    for key, axis_perms in spec.axes_to_perm.items():
        if any(p is not None for p in axis_perms):
            w_a = a[key].detach().to("cpu", torch.float64).reshape(-1)
            w_b = permuted_param(spec, perm, key, b).detach().to("cpu", torch.float64).reshape(-1)
            total += float(torch.vdot(w_a, w_b))
    return total


def weight_matching(
    spec: PermutationSpec,
    params_a: Mapping[str, Tensor],
    params_b: Mapping[str, Tensor],
    *,
    max_iter: int = 100,
    seed: int = 0,
    init_perm: Mapping[str, Tensor] | None = None,
    progress: ProgressFn | None = None,
    device: str | torch.device | None = None,
    terms: Mapping[tuple[str, int], Tensor] | None = None,
) -> MatchResult:
    """Find perm with apply_permutation(spec, perm, params_b) as close to params_a as a permutation gets.

    device: where the similarity matrices are computed (default: params_a's device). terms: optional
    precomputed {(key, axis): A_rows @ B_rows.T [n, n]} for parameters no other permutation touches.
    """
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    start = time.perf_counter()
    sizes = _check_pair(spec, params_a, params_b)
    perm = identity_permutation(spec, params_a) if init_perm is None else check_permutation(spec, init_perm, sizes)
    perm = {name: p.clone() for name, p in perm.items()}

    keys = [k for k, axis_perms in spec.axes_to_perm.items() if any(p is not None for p in axis_perms)]
    device = torch.device(device) if device is not None else params_a[keys[0]].device
    a = {k: params_a[k].detach().to(device, torch.float64) for k in keys}
    b = {k: params_b[k].detach().to(device, torch.float64) for k in keys}
    # A's side of each term never changes: [n, rest] per (key, axis)
    a_rows = {(k, ax): _as_rows(a[k], ax, sizes[name]) for name, axes in spec.perm_to_axes.items() for k, ax in axes}
    # B's side laid out [other axis, matched axis] for matrices with one other permutation: [m, n]
    b_cols = {
        (k, ax): torch.movedim(b[k], ax, 1).contiguous()
        for name, axes in spec.perm_to_axes.items()
        for k, ax in axes
        if b[k].dim() == 2 and spec.axes_to_perm[k][1 - ax] is not None
    }
    a_cols = {k_ax: a_rows[k_ax].T.contiguous() for k_ax in b_cols}  # [m, n]
    cache: dict[tuple[str, int], tuple[list[Tensor], Tensor]] = {}  # (key, axis) -> (others used, term)
    versions: dict[tuple[str, int], int] = {}  # bumped on every change of a cached term
    solved: dict[str, tuple[int, ...]] = {}  # perm name -> term versions its current value was solved from
    for (key, axis), sim in (terms or {}).items():
        name = spec.axes_to_perm[key][axis] if key in spec.axes_to_perm and axis < len(spec.axes_to_perm[key]) \
            else None
        if name is None or any(p is not None for ax, p in enumerate(spec.axes_to_perm[key]) if ax != axis):
            raise ValueError(f"a precomputed term must belong to a parameter only one permutation touches, "
                             f"got ({key!r}, {axis})")
        if tuple(sim.shape) != (sizes[name], sizes[name]):
            raise ValueError(f"the precomputed term of {key!r} must be [{sizes[name]}, {sizes[name]}], "
                             f"got {tuple(sim.shape)}")
        cache[(key, axis)] = ([], sim.detach().to(device, torch.float64))
        versions[(key, axis)] = 1

    def others_of(key: str, axis: int) -> list[Tensor]:
        return [perm[p] for ax, p in enumerate(spec.axes_to_perm[key]) if p is not None and ax != axis]

    def cached(key: str, axis: int) -> Tensor | None:
        hit = cache.get((key, axis))
        if hit is not None and all(torch.equal(x, y) for x, y in zip(hit[0], others_of(key, axis), strict=True)):
            return hit[1]
        return None

    def term(key: str, axis: int, n: int) -> Tensor:
        """A_rows @ B_rows.T for one parameter, with the other permutations applied to B: [n, n]."""
        sim = cached(key, axis)
        if sim is not None:
            return sim
        others = others_of(key, axis)
        if (key, axis) not in b_cols:  # general tensor: gather B and multiply
            w_b = _as_rows(permuted_param(spec, perm, key, b, except_axis=axis), axis, n)
            sim = a_rows[(key, axis)] @ w_b.T
        else:  # matrix with one other perm q: sim = sum_j A[:, j] (x) B^T[q[j], :]
            q, b_side, hit = others[0], b_cols[(key, axis)], cache.get((key, axis))
            moved = torch.nonzero(hit[0][0] != q).flatten() if hit is not None else None
            if moved is not None and len(moved) <= UPDATE_FRACTION * len(q):  # rank-k update, [n, k] @ [k, n]
                sim = hit[1]
                new_rows, old_rows = q[moved].to(device), hit[0][0][moved].to(device)
                sim.addmm_(a_cols[(key, axis)][moved.to(device)].T, b_side[new_rows] - b_side[old_rows])
            else:  # gather contiguous rows of B^T rather than columns of B
                sim = a_rows[(key, axis)] @ b_side[q.to(device)]
        cache[(key, axis)] = ([x.clone() for x in others], sim)
        versions[(key, axis)] = versions.get((key, axis), 0) + 1
        return sim

    def inner(key: str) -> float:
        """<A_k, perm(B)_k>, read off a current cached term when there is one (the input layer's always is)."""
        for axis, name in enumerate(spec.axes_to_perm[key]):
            sim = cached(key, axis) if name is not None else None
            if sim is not None:
                return float(sim[torch.arange(sizes[name], device=device), perm[name].to(device)].sum())
        return float(torch.vdot(a[key].reshape(-1), permuted_param(spec, perm, key, b).reshape(-1)))

    names = spec.perm_names
    rng = np.random.default_rng(seed)
    trace: list[float] = []
    sweeps = 0
    for sweep in range(max_iter):
        sweeps = sweep + 1
        improved = False
        for idx in rng.permutation(len(names)):
            name = names[idx]
            n = sizes[name]
            sim = sum(term(key, axis, n) for key, axis in spec.perm_to_axes[name])  # [n, n]
            seen = tuple(versions[(key, axis)] for key, axis in spec.perm_to_axes[name])
            if solved.get(name) == seen:  # same similarity as last time: the LAP would return perm[name]
                continue
            solved[name] = seen
            sim = sim.cpu()  # the LAP runs on the CPU (a no-op there)
            _, cols = linear_sum_assignment(sim.numpy(), maximize=True)
            new = torch.from_numpy(cols).long()
            rows = torch.arange(n)
            old_value = float(sim[rows, perm[name]].sum())
            new_value = float(sim[rows, new].sum())
            if new_value > old_value + IMPROVEMENT_RTOL * max(1.0, abs(old_value)):
                improved = True
            perm[name] = new
        trace.append(sum(inner(key) for key in keys))
        report(progress, "match", sweeps, max_iter, f"sweep {sweeps}", objective=trace[-1])
        if not improved:
            break
    return MatchResult(perm=perm, objective_trace=trace, sweeps=sweeps, seconds=time.perf_counter() - start)
