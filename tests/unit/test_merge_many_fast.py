"""MergeMany's fast weight rounds (running sum, Gram input terms, device) against the plain loop."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from backend.matching import IMPROVEMENT_RTOL, weight_matching
from backend.merge.common import mean_params
from backend.merge.merge_many import _FixedTerms, alignment_objective, merge_many
from backend.models import MLP, MLPConfig, state_dict_of
from backend.permutation import apply_permutation, identity_permutation, is_identity, spec_for_params


def plain_merge_many(models, seed=0, max_rounds=100, max_iter=100):
    """The textbook loop: every step averages the others afresh and matches from scratch."""
    spec = spec_for_params(models[0])
    aligned = [dict(m) for m in models]
    n = len(aligned)
    rng = np.random.default_rng(seed)
    trace, previous, rounds = [], alignment_objective(spec, aligned), 0
    for round_index in range(max_rounds):
        rounds = round_index + 1
        changed = False
        for i in rng.permutation(n):
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


def _models(n, widths=(12, 10, 8), seed0=0):
    config = MLPConfig(in_shape=(1, 6, 6), widths=widths, num_classes=4, mean=(0.5,), std=(0.25,))
    out = []
    for s in range(n):
        torch.manual_seed(seed0 + s)
        out.append(state_dict_of(MLP(config)))
    return out


@pytest.mark.parametrize(("n", "seed"), [(3, 0), (5, 1), (6, 7)])
def test_fast_rounds_follow_the_plain_loop(n, seed):
    models = _models(n, seed0=10 * seed)
    aligned, trace, rounds = plain_merge_many(models, seed=seed)
    fast = merge_many(models, seed=seed, device="cpu")
    assert fast.rounds == rounds
    np.testing.assert_allclose(fast.objective_trace, trace, rtol=1e-10)
    for a, b in zip(fast.aligned, aligned, strict=True):
        for k in a:
            assert torch.equal(a[k], b[k]), k
    # the objective the fast loop reports is the textbook one, on its own aligned models
    spec = spec_for_params(models[0])
    assert fast.objective_trace[-1] == pytest.approx(alignment_objective(spec, fast.aligned), rel=1e-12)


def test_gram_terms_equal_direct_terms():
    models = _models(4)
    spec = spec_for_params(models[0])
    fixed = _FixedTerms(spec, models, torch.device("cpu"))
    assert [k for k, _, _ in fixed.keys] == ["layers.0.weight"]  # 36 inputs > 12 units; the others are narrow
    perms = [identity_permutation(spec, m) for m in models]
    gen = torch.Generator().manual_seed(3)
    perms = [{p: torch.randperm(v.numel(), generator=gen) for p, v in q.items()} for q in perms]
    current = [apply_permutation(spec, p, m) for p, m in zip(perms, models, strict=True)]
    for i in range(4):
        others = sum(current[j]["layers.0.weight"].double() for j in range(4) if j != i) / 3
        direct = others @ current[i]["layers.0.weight"].double().T
        torch.testing.assert_close(fixed.terms(i, perms)[("layers.0.weight", 0)], direct, rtol=1e-12, atol=1e-12)


def test_weight_matching_with_precomputed_terms_and_device():
    a, b = _models(2, seed0=3)
    spec = spec_for_params(a)
    plain = weight_matching(spec, a, b, seed=2)
    term = a["layers.0.weight"].double() @ b["layers.0.weight"].double().T
    given = weight_matching(spec, a, b, seed=2, device="cpu", terms={("layers.0.weight", 0): term})
    assert all(torch.equal(plain.perm[p], given.perm[p]) for p in plain.perm)
    np.testing.assert_allclose(given.objective_trace, plain.objective_trace, rtol=1e-12)
    with pytest.raises(ValueError, match="only one permutation"):
        weight_matching(spec, a, b, terms={("layers.1.weight", 0): torch.zeros(10, 10)})
    with pytest.raises(ValueError, match="must be"):
        weight_matching(spec, a, b, terms={("layers.0.weight", 0): torch.zeros(3, 3)})


def test_gram_budget_falls_back_to_direct_terms(monkeypatch):
    mm = importlib.import_module("backend.merge.merge_many")

    models = _models(4)
    monkeypatch.setattr(mm, "GRAM_BUDGET_BYTES", 0)
    assert mm._FixedTerms(spec_for_params(models[0]), models, torch.device("cpu")).keys == []
    _, trace, rounds = plain_merge_many(models, seed=4)
    fast = merge_many(models, seed=4, device="cpu")
    assert fast.rounds == rounds
    np.testing.assert_allclose(fast.objective_trace, trace, rtol=1e-10)
