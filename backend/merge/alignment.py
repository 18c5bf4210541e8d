"""The matcher and REPAIR options every merge method shares: align with weight or activation matching.

`matcher` picks how B's hidden units are permuted onto A's: "weight" (Ainsworth et al.'s weight matching,
the default; needs no data) or "activation" (correlation of activations on a batch of images, one LAP per
layer). `repair` applies REPAIR (backend.merge.repair) after the interpolation. Activation matching and
REPAIR need `images`: a seeded batch of training images that the job loads once (the number, split and
seed are recorded options of the tree).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from backend.matching import MatchResult, weight_matching
from backend.merge.common import MergeError, Params
from backend.permutation import apply_permutation, identity_permutation, spec_for_params
from backend.progress import ProgressFn, report

MATCHERS = ("weight", "activation")


def check_alignment_options(matcher: str, repair: bool, images: Tensor | None) -> None:
    if matcher not in MATCHERS:
        raise MergeError(f"unknown matcher {matcher!r}; choose one of {', '.join(MATCHERS)}")
    if not isinstance(repair, bool):
        raise MergeError(f"repair must be true or false, got {repair!r}")
    if (matcher == "activation" or repair) and (not isinstance(images, Tensor) or images.shape[0] < 2):
        raise MergeError("activation matching and REPAIR need a batch of at least 2 images")


def align_onto(params_a: Mapping[str, Tensor], params_b: Mapping[str, Tensor], *, matcher: str = "weight",
               images: Tensor | None = None, seed: int = 0, max_iter: int = 100,
               progress: ProgressFn | None = None) -> tuple[Params, MatchResult]:
    """(π(B), the match): B permuted into A's basis by the chosen matcher."""
    from backend.activation_matching import activation_matching

    spec = spec_for_params(params_a)
    if matcher == "activation":
        match = activation_matching(spec, params_a, params_b, images, progress=progress)
    else:
        match = weight_matching(spec, params_a, params_b, max_iter=max_iter, seed=seed, progress=progress)
    return apply_permutation(spec, match.perm, params_b), match


def repaired(merged: Params, endpoints: Sequence[Mapping[str, Tensor]], weights: Sequence[float],
             images: Tensor) -> Params:
    from backend.merge.repair import repair

    return repair(merged, endpoints, weights, images)


@torch.no_grad()
def activation_merge_many(models: Sequence[Mapping[str, Tensor]], images: Tensor, *, seed: int = 0,
                          max_rounds: int = 100, progress: ProgressFn | None = None, start=None, on_round=None
                          ) -> tuple[list[Params], list[float], int]:
    """MergeMany with activation matching: each model in turn is permuted to maximise the summed correlation
    of its units with the matching units of every other (already aligned) model; rounds until a round changes
    no permutation or gains nothing.

    The similarity for model i is the mean over j ≠ i of corr(units of j, units of i), i.e. standardised
    activations of the others averaged, so each step is coordinate ascent on the objective
    Σ_layers Σ_{i≠j} mean_k corr(unit k of i, unit k of j) / n, which the trace records after each round.
    Permuting a model only reorders its activations, so they are computed once and re-indexed.
    start: a merge_many.RoundState to resume from; on_round(perms, trace, rounds, rng state) after each round
    that is followed by another.
    """
    from backend.activation_matching import (
        assignment,
        check_images,
        hidden_activations,
        mlp_perm_names,
        standardize,
    )

    check_images(images)
    spec = spec_for_params(models[0])
    names = mlp_perm_names(spec)
    aligned = [dict(m) for m in models]
    totals = [identity_permutation(spec, m) for m in models]  # aligned[i] = apply(totals[i], models[i])
    if start is not None:  # resume after the rounds an interrupted run finished
        totals = [{p: t.clone() for p, t in perm.items()} for perm in start.perms]
        aligned = [apply_permutation(spec, totals[i], m) for i, m in enumerate(models)]
    n, count = len(models), images.shape[0]
    pre = [[standardize(z) for z in hidden_activations(m, images)] for m in aligned]  # [model][layer] [N, n]
    post = [[standardize(torch.relu(z)) for z in hidden_activations(m, images)] for m in aligned]

    def objective() -> float:
        total = 0.0
        for layer in range(len(names)):
            s = sum(post[j][layer] for j in range(n))
            total += sum(float((post[i][layer] * (s - post[i][layer])).sum() / count / post[i][layer].shape[1])
                         for i in range(n))
        return total / n

    rng = np.random.default_rng(seed)
    trace: list[float] = []
    previous = objective()
    rounds = 0
    if start is not None:
        rng.bit_generator.state = start.rng
        trace, rounds = list(start.trace), start.rounds
        previous = trace[-1]
    for round_index in range(rounds, max_rounds):
        rounds = round_index + 1
        changed = False
        for step, i in enumerate(rng.permutation(n)):
            report(progress, "merge_many", step, n, f"round {rounds}: aligning model {i} (activations)", round=rounds)
            perm = {}
            for layer, name in enumerate(names):
                others_post = sum(post[j][layer] for j in range(n) if j != i) / (n - 1)
                others_pre = sum(pre[j][layer] for j in range(n) if j != i) / (n - 1)
                perm[name], _ = assignment(others_post.T @ post[i][layer] / count, others_pre.T @ pre[i][layer] / count)
            if any(not torch.equal(p, torch.arange(len(p))) for p in perm.values()):
                changed = True
                aligned[i] = apply_permutation(spec, perm, aligned[i])
                totals[i] = {p: totals[i][p][perm[p]] for p in totals[i]}
                for acts in (pre, post):
                    acts[i] = [z[:, perm[name].to(z.device)] for z, name in zip(acts[i], names, strict=True)]
        trace.append(objective())
        improved = trace[-1] > previous + 1e-12 * max(1.0, abs(previous))
        previous = trace[-1]
        if not changed or not improved:
            break
        if on_round is not None and rounds < max_rounds:
            on_round([dict(p) for p in totals], list(trace), rounds, rng.bit_generator.state)
    return aligned, trace, rounds
