"""Weight matching: recovers planted permutations, is seeded, and agrees with a plain re-implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from backend.matching import matching_objective, weight_matching
from backend.models import MLPConfig
from backend.permutation import (
    apply_permutation,
    identity_permutation,
    invert_permutation,
    random_permutation,
    spec_for_params,
)
from backend.progress import Cancelled

DEEPER = MLPConfig(in_shape=(1, 4, 4), widths=(16, 12, 10), num_classes=3, mean=(0.5,), std=(0.25,))


def _plain_reference(spec, a, b, seed, max_iter=100):
    """Ainsworth et al.'s loop written plainly: recompute every similarity from scratch, numpy float64."""
    a = {k: v.double().numpy() for k, v in a.items()}
    b = {k: v.double().numpy() for k, v in b.items()}
    sizes = {p: a[axes[0][0]].shape[axes[0][1]] for p, axes in spec.perm_to_axes.items()}
    perm = {p: np.arange(n) for p, n in sizes.items()}
    names = spec.perm_names
    rng = np.random.default_rng(seed)
    for _ in range(max_iter):
        improved = False
        for idx in rng.permutation(len(names)):
            p, n = names[idx], sizes[names[idx]]
            sim = np.zeros((n, n))
            for key, axis in spec.perm_to_axes[p]:
                w_b = b[key]
                for ax, q in enumerate(spec.axes_to_perm[key]):
                    if q is not None and ax != axis:
                        w_b = np.take(w_b, perm[q], axis=ax)
                sim += np.moveaxis(a[key], axis, 0).reshape(n, -1) @ np.moveaxis(w_b, axis, 0).reshape(n, -1).T
            _, cols = linear_sum_assignment(sim, maximize=True)
            old, new = sim[np.arange(n), perm[p]].sum(), sim[np.arange(n), cols].sum()
            improved = improved or new > old + 1e-12 * max(1.0, abs(old))
            perm[p] = cols
        if not improved:
            break
    return {p: torch.from_numpy(v) for p, v in perm.items()}


def _noisy(params, scale, seed):
    g = torch.Generator().manual_seed(seed)
    return {k: v + scale * torch.randn(v.shape, generator=g) for k, v in params.items()}


@pytest.mark.parametrize("config", [None, DEEPER], ids=["tiny", "deeper"])
def test_recovers_a_planted_permutation(make_tiny_params, config):
    a = make_tiny_params(0, config)
    spec = spec_for_params(a)
    planted = random_permutation(spec, a, seed=7)
    b = _noisy(apply_permutation(spec, planted, a), 1e-3, seed=1)  # B = planted(A) + noise
    result = weight_matching(spec, a, b, seed=0)
    expected = invert_permutation(planted)  # undoing the plant lands B back on A
    for name in spec.perm_names:
        assert torch.equal(result.perm[name], expected[name]), name
    aligned = apply_permutation(spec, result.perm, b)
    for key in a:
        torch.testing.assert_close(aligned[key], a[key], atol=1e-2, rtol=0)
    assert result.sweeps >= 1 and len(result.objective_trace) == result.sweeps
    assert result.objective_trace[-1] == pytest.approx(matching_objective(spec, result.perm, a, b), rel=1e-9)


def test_matches_a_plain_reference_and_is_seeded(make_tiny_params):
    a, b = make_tiny_params(0, DEEPER), make_tiny_params(1, DEEPER)
    spec = spec_for_params(a)
    for seed in (0, 1, 2):
        result = weight_matching(spec, a, b, seed=seed)
        reference = _plain_reference(spec, a, b, seed)
        assert all(torch.equal(result.perm[p], reference[p]) for p in spec.perm_names)
        again = weight_matching(spec, a, b, seed=seed)
        assert all(torch.equal(result.perm[p], again.perm[p]) for p in spec.perm_names)
        assert result.objective_trace == again.objective_trace
        # coordinate ascent: the objective never goes down and beats doing nothing
        trace = result.objective_trace
        assert all(y >= x - 1e-9 for x, y in zip(trace, trace[1:], strict=False))
        start = matching_objective(spec, identity_permutation(spec, a), a, b)
        assert trace[-1] > start


def test_init_perm_and_identical_models(make_tiny_params):
    a = make_tiny_params(0)
    spec = spec_for_params(a)
    same = weight_matching(spec, a, a)
    assert all(torch.equal(p, torch.arange(len(p))) for p in same.perm.values())
    assert same.sweeps == 1  # nothing to improve from the identity
    planted = random_permutation(spec, a, seed=3)
    b = apply_permutation(spec, planted, a)
    warm = weight_matching(spec, a, b, init_perm=invert_permutation(planted))
    assert warm.sweeps == 1
    assert all(torch.equal(warm.perm[p], invert_permutation(planted)[p]) for p in spec.perm_names)


def test_progress_and_cancellation(make_tiny_params):
    a, b = make_tiny_params(0, DEEPER), make_tiny_params(1, DEEPER)
    spec = spec_for_params(a)
    events = []
    result = weight_matching(spec, a, b, progress=events.append)
    assert [e.done for e in events] == list(range(1, result.sweeps + 1))
    assert all(e.stage == "match" and "objective" in e.metrics for e in events)

    def stop(_event):
        raise Cancelled()

    with pytest.raises(Cancelled):
        weight_matching(spec, a, b, progress=stop)


def test_bad_input(make_tiny_params):
    a = make_tiny_params(0)
    spec = spec_for_params(a)
    wider = make_tiny_params(1, MLPConfig(in_shape=(1, 4, 4), widths=(9, 6), num_classes=3, mean=(0.5,), std=(0.25,)))
    with pytest.raises(ValueError, match="different shapes"):
        weight_matching(spec, a, wider)
    with pytest.raises(ValueError, match="max_iter"):
        weight_matching(spec, a, a, max_iter=0)
    with pytest.raises(ValueError, match="has length"):
        weight_matching(spec, a, a, init_perm={"P_0": torch.arange(3), "P_1": torch.arange(6)})
