"""MergeMany (Ainsworth et al. 2023, Alg. 3): align every model to the mean of the others, repeat.

Each step permutes one model to best match the mean of the other n−1 (already aligned) models. The
objective sum_i <θ_i, mean of the others> only grows step by step (it is a positive multiple of the
sum of pairwise inner products), so rounds stop when one changes no permutation or gains nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from backend.matching import IMPROVEMENT_RTOL, MatchResult, weight_matching
from backend.merge.alignment import activation_merge_many, check_alignment_options, repaired
from backend.merge.common import MergeError, Params, check_compatible, mean_params
from backend.merge.tree import TreeNode, flat_nodes, stored_flat_root
from backend.permutation import (
    PermutationSpec,
    apply_permutation,
    identity_permutation,
    is_identity,
    spec_for_params,
)
from backend.progress import ProgressFn, report


@dataclass
class MergeManyResult:
    params: Params  # mean of the aligned models
    aligned: list[Params]  # every input model, permuted into the common basis
    objective_trace: list[float]  # sum_i <θ_i, mean of the others> (permuted params) after each round
    rounds: int
    seconds: float


@dataclass
class RoundState:
    """Where MergeMany stands after a finished round: enough to resume with the next round and end exactly
    where an uninterrupted run ends (the per-model permutations, the trace and the order generator's state).

    to_tensors()/from_tensors() turn it into int64 tensors plus JSON metadata, so a caller can keep it as a
    checkpoint file between rounds (backend.jobs.merge_step keeps one per tree in the store)."""

    perms: list[dict[str, Tensor]]  # per model: permutation from its input basis to the common one
    trace: list[float]  # objective after each finished round
    rounds: int  # rounds finished
    rng: dict = field(default_factory=dict)  # numpy bit generator state after the last finished round
    matcher: str = "weight"

    def to_tensors(self) -> tuple[dict[str, Tensor], dict]:
        tensors = {f"{i}.{name}": p.detach().to("cpu", torch.int64).contiguous()
                   for i, perm in enumerate(self.perms) for name, p in perm.items()}
        return tensors, {"n": len(self.perms), "trace": list(self.trace), "rounds": self.rounds,
                         "rng": self.rng, "matcher": self.matcher}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor], meta: Mapping) -> RoundState:
        perms: list[dict[str, Tensor]] = [{} for _ in range(int(meta["n"]))]
        for key, value in tensors.items():
            i, _, name = key.partition(".")
            perms[int(i)][name] = value.to(torch.int64)
        return cls(perms=perms, trace=[float(v) for v in meta["trace"]], rounds=int(meta["rounds"]),
                   rng=dict(meta["rng"]), matcher=str(meta.get("matcher", "weight")))

    def fits(self, spec: PermutationSpec, models: Sequence[Params], matcher: str) -> bool:
        """Whether this state belongs to these models (count, permutation names and sizes) and matcher."""
        if self.matcher != matcher or len(self.perms) != len(models) or self.rounds < 1 or not self.rng:
            return False
        sizes = identity_permutation(spec, models[0])
        return all(set(p) == set(sizes) and all(p[k].shape == sizes[k].shape for k in p) for p in self.perms)


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
    device: str | torch.device | None = None,
    checkpoint: RoundState | None = None,
    on_checkpoint: Callable[[RoundState], None] | None = None,
) -> MergeManyResult:
    """Align all models into one basis with MergeMany and return their mean (plus the aligned models).

    matcher "activation": align each model's activations to the mean activations of the others (needs
    images); repair: REPAIR the mean towards the mean statistics of the aligned models on images.
    device: where weight matching computes its similarity matrices (default CUDA when available).
    on_checkpoint(state) is called after every round that is followed by another; `checkpoint` (such a
    state, from an interrupted run over the same models) resumes with the next round and gives the result
    the uninterrupted run gives. A state that does not fit the models is ignored (the run starts over).
    """
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise MergeError(f"max_rounds must be a positive integer, got {max_rounds!r}")
    check_compatible(models)
    if len(models) < 2:
        raise MergeError(f"MergeMany needs at least 2 models, got {len(models)}")
    check_alignment_options(matcher, repair, images)
    start = time.perf_counter()
    if checkpoint is not None and not checkpoint.fits(spec_for_params(models[0]), models, matcher):
        checkpoint = None
    if matcher == "activation":
        def on_round(perms, trace, rounds, rng) -> None:
            on_checkpoint(RoundState(perms, trace, rounds, rng, "activation"))

        aligned, trace, rounds = activation_merge_many(models, images, seed=seed, max_rounds=max_rounds,
                                                       progress=progress, start=checkpoint,
                                                       on_round=on_round if on_checkpoint is not None else None)
    else:
        aligned, trace, rounds = _weight_rounds(models, seed, max_rounds, max_iter, progress, device,
                                                start=checkpoint, on_round=on_checkpoint)
    params = mean_params(aligned)
    if repair:
        params = repaired(params, aligned, [1 / len(aligned)] * len(aligned), images)
    n = len(aligned)
    report(progress, "merge_many", n, n, f"done after {rounds} round(s)", round=rounds)
    return MergeManyResult(params=params, aligned=aligned, objective_trace=trace, rounds=rounds,
                           seconds=time.perf_counter() - start)


GRAM_BUDGET_BYTES = 512 * 2**20  # pairwise input-layer Gram matrices kept for the whole run (float64)


class _FixedTerms:
    """Similarity terms of parameters only one permutation touches (the 3072-wide input layer), from Grams.

    For such a parameter W (rows = its permuted axis), model i's term against the mean of the others is
    (1/(n−1)) Σ_{j≠i} W_j[π_j] W_i[π_i]ᵀ = (1/(n−1)) Σ_j G_ji[π_j][:, π_i] with G_ji = W_j W_iᵀ in the
    models' original bases: the big matmuls happen once per pair, later steps only gather. Used when the
    parameter is wider than its permutation (else a direct term is as cheap) and the Grams fit the budget.
    """

    def __init__(self, spec: PermutationSpec, models: Sequence[Params], device: torch.device):
        self.n = len(models)
        self.keys: list[tuple[str, int, str]] = []
        self.rows: dict[tuple[str, int], list[Tensor]] = {}
        for key, names in spec.axes_to_perm.items():
            permuted = [(ax, p) for ax, p in enumerate(names) if p is not None]
            w = models[0][key]
            if len(permuted) != 1 or w.dim() < 2:
                continue
            ax, name = permuted[0]
            size = w.shape[ax]
            if w.numel() // size <= size:
                continue
            pairs = self.n * (self.n - 1) // 2
            if pairs * size * size * 8 > GRAM_BUDGET_BYTES:
                continue
            self.keys.append((key, ax, name))
            self.rows[(key, ax)] = [torch.movedim(m[key].detach().to(device, torch.float64), ax, 0)
                                    .reshape(size, -1) for m in models]
        self.grams: dict[tuple[str, int, int, int], Tensor] = {}  # (key, axis, j, i) with j < i

    def _gram(self, key: str, ax: int, j: int, i: int) -> Tensor:
        """W_j W_iᵀ (original bases), computed on first use."""
        lo, hi = min(i, j), max(i, j)
        g = self.grams.get((key, ax, lo, hi))
        if g is None:
            rows = self.rows[(key, ax)]
            g = self.grams[(key, ax, lo, hi)] = rows[lo] @ rows[hi].T
        return g if j < i else g.T

    def terms(self, i: int, total_perms: Sequence[dict[str, Tensor]]) -> dict[tuple[str, int], Tensor]:
        out = {}
        for key, ax, name in self.keys:
            cols = total_perms[i][name]
            sim = None
            for j in range(self.n):
                if j != i:
                    g = self._gram(key, ax, j, i)
                    part = g[total_perms[j][name].to(g.device)][:, cols.to(g.device)]
                    sim = part if sim is None else sim.add_(part)
            out[(key, ax)] = sim.div_(self.n - 1)
        return out


def _weight_rounds(models, seed, max_rounds, max_iter, progress, device=None, *, start: RoundState | None = None,
                   on_round: Callable[[RoundState], None] | None = None) -> tuple[list[Params], list[float], int]:
    """Ainsworth et al.'s rounds with weight matching: (aligned models, objective per round, rounds).

    Each step matches model i (in its current basis, so the matching starts from where the last round
    left it) against the mean of the others. The sum of all aligned models is kept (so each mean costs
    one subtraction), the objective follows from it ((‖Σθ‖² − Σ‖θ_i‖²)/(n−1); Σ‖θ_i‖² does not change
    under permutations), the input layer's terms come from pairwise Grams (_FixedTerms), and the
    similarity matrices are computed on `device` (default: CUDA when available) in float64.
    """
    spec = spec_for_params(models[0])
    n = len(models)
    device = torch.device(device) if device is not None else \
        torch.device("cuda" if torch.cuda.is_available() else "cpu")
    keys = [k for k, axes in spec.axes_to_perm.items() if any(p is not None for p in axes)]
    current = [{k: (m[k].detach().to(device, torch.float64) if k in keys else m[k]) for k in m} for m in models]
    total = {k: torch.stack([c[k] for c in current]).sum(0) for k in keys}
    sq_norms = sum(float(c[k].square().sum()) for c in current for k in keys)  # permutation-invariant

    def objective() -> float:
        return (sum(float(total[k].square().sum()) for k in keys) - sq_norms) / (n - 1)

    fixed = _FixedTerms(spec, models, device)
    total_perms = [identity_permutation(spec, m) for m in models]  # current[i] = apply(total_perms[i], models[i])
    rng = np.random.default_rng(seed)
    trace: list[float] = []
    previous = objective()
    rounds = 0
    if start is not None:  # resume after the rounds an interrupted run finished
        total_perms = [{p: t.clone() for p, t in perm.items()} for perm in start.perms]
        current = [apply_permutation(spec, total_perms[i], current[i]) for i in range(n)]
        total = {k: torch.stack([c[k] for c in current]).sum(0) for k in keys}
        rng.bit_generator.state = start.rng
        trace, rounds = list(start.trace), start.rounds
        previous = trace[-1]
    for round_index in range(rounds, max_rounds):
        rounds = round_index + 1
        changed = False
        for step, i in enumerate(rng.permutation(n)):
            # rounds are open-ended: round r fills the next half of what is left, so the bar never restarts
            left = 0.5 ** (rounds - 1)
            report(progress, "merge_many", round((1 - left + left * 0.5 * step / n) * 1000), 1000,
                   f"round {rounds} · model {step + 1} of {n}", round=rounds)
            others = {k: (total[k] - current[i][k]).div_(n - 1) if k in keys else v for k, v in current[i].items()}
            match = weight_matching(spec, others, current[i], max_iter=max_iter, seed=int(rng.integers(2**31)),
                                    device=device, terms=fixed.terms(int(i), total_perms))
            if not is_identity(match.perm):
                moved = apply_permutation(spec, match.perm, current[i])
                for k in keys:
                    total[k] += moved[k] - current[i][k]
                current[i] = moved
                total_perms[i] = {p: total_perms[i][p][match.perm[p]] for p in total_perms[i]}
                changed = True
        trace.append(objective())
        improved = trace[-1] > previous + IMPROVEMENT_RTOL * max(1.0, abs(previous))
        previous = trace[-1]
        if not changed or not improved:
            break
        if on_round is not None and rounds < max_rounds:
            on_round(RoundState([dict(p) for p in total_perms], list(trace), rounds, rng.bit_generator.state, "weight"))
    aligned = [apply_permutation(spec, total_perms[i], models[i]) for i in range(n)]  # exact gathers, input dtype
    return aligned, trace, rounds


def merge_many_nodes(models: Sequence[Mapping[str, Tensor]], *, seed: int = 0, max_iter: int = 100,
                     progress: ProgressFn | None = None, checkpoint: RoundState | None = None,
                     on_checkpoint: Callable[[RoundState], None] | None = None, stored=None,
                     **options) -> list[TreeNode]:
    """The registry's face of MergeMany: the leaves, then one root whose `match` holds the objective trace
    (perm empty, since every model has its own; `sweeps` counts rounds). `options`: merge_many's own
    (checkpoint / on_checkpoint included: a job keeps a checkpoint per round, so a killed merge resumes;
    `stored` holding the root, an interrupted run's, returns it as it is)."""
    if (done := stored_flat_root(models, stored)) is not None:
        return done
    result = merge_many(models, seed=seed, max_iter=max_iter, progress=progress, checkpoint=checkpoint,
                        on_checkpoint=on_checkpoint, **options)
    summary = MatchResult(perm={}, objective_trace=result.objective_trace, sweeps=result.rounds,
                          seconds=result.seconds)
    return flat_nodes(models, result.params, summary, result.seconds)

