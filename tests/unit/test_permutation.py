"""Permutations of hidden units: function-preserving, invertible, composable, strictly validated."""

from __future__ import annotations

import pytest
import torch

from backend.models import mlp_from_state_dict
from backend.permutation import (
    apply_permutation,
    compose_permutations,
    identity_permutation,
    invert_permutation,
    mlp_permutation_spec,
    random_permutation,
    spec_for_params,
)


def _outputs(params, x):
    with torch.no_grad():
        return mlp_from_state_dict(params)(x)


def _same(p, q):
    return set(p) == set(q) and all(torch.equal(p[k], q[k]) for k in p)


def test_spec_couples_rows_with_next_columns():
    spec = mlp_permutation_spec(2)
    assert spec.perm_names == ["P_0", "P_1"]
    assert spec.perm_to_axes["P_0"] == [("layers.0.weight", 0), ("layers.0.bias", 0), ("layers.1.weight", 1)]
    assert spec.axes_to_perm["layers.2.weight"] == (None, "P_1")  # classifier rows stay put
    assert spec.axes_to_perm["layers.2.bias"] == (None,)
    assert spec.axes_to_perm["mean"] == (None,) and spec.axes_to_perm["std"] == (None,)
    with pytest.raises(ValueError, match="at least one hidden layer"):
        mlp_permutation_spec(0)


def test_permuting_hidden_units_keeps_outputs(make_tiny_params):
    params = make_tiny_params(0)
    spec = spec_for_params(params)
    perm = random_permutation(spec, params, seed=1)
    assert not all(torch.equal(p, torch.arange(len(p))) for p in perm.values())
    permuted = apply_permutation(spec, perm, params)
    x = torch.rand(32, 1, 4, 4)
    torch.testing.assert_close(_outputs(permuted, x), _outputs(params, x))
    assert not torch.equal(permuted["layers.0.weight"], params["layers.0.weight"])
    # buffers and the classifier's rows (its bias) never move
    for key in ("mean", "std", "layers.2.bias"):
        assert torch.equal(permuted[key], params[key])


def test_apply_does_not_mutate_input(make_tiny_params):
    params = make_tiny_params(0)
    before = {k: v.clone() for k, v in params.items()}
    spec = spec_for_params(params)
    out = apply_permutation(spec, random_permutation(spec, params, seed=3), params)
    assert _same(params, before)
    out["mean"].add_(1.0)  # the result holds its own tensors
    assert torch.equal(params["mean"], before["mean"])


def test_identity_and_random_are_seeded(make_tiny_params):
    params = make_tiny_params(0)
    spec = spec_for_params(params)
    assert _same(apply_permutation(spec, identity_permutation(spec, params), params), params)
    assert _same(random_permutation(spec, params, 5), random_permutation(spec, params, 5))
    assert not _same(random_permutation(spec, params, 5), random_permutation(spec, params, 6))
    assert {k: len(v) for k, v in identity_permutation(spec, params).items()} == {"P_0": 8, "P_1": 6}


def test_invert_and_compose_laws(make_tiny_params):
    params = make_tiny_params(0)
    spec = spec_for_params(params)
    p, q = random_permutation(spec, params, 1), random_permutation(spec, params, 2)
    identity = identity_permutation(spec, params)
    inv = invert_permutation(p)
    assert _same(compose_permutations(p, inv), identity)
    assert _same(compose_permutations(inv, p), identity)
    assert _same(invert_permutation(inv), p)
    # compose(p, q) means "q, then p"
    both = apply_permutation(spec, compose_permutations(p, q), params)
    assert _same(both, apply_permutation(spec, p, apply_permutation(spec, q, params)))
    assert _same(apply_permutation(spec, inv, apply_permutation(spec, p, params)), params)


def test_bad_permutations_are_rejected(make_tiny_params):
    params = make_tiny_params(0)
    spec = spec_for_params(params)
    good = identity_permutation(spec, params)
    with pytest.raises(ValueError, match="has length 7 but the layer has 8"):
        apply_permutation(spec, {**good, "P_0": torch.arange(7)}, params)
    with pytest.raises(ValueError, match="not a permutation"):
        apply_permutation(spec, {**good, "P_0": torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])}, params)
    with pytest.raises(ValueError, match="integer tensor"):
        apply_permutation(spec, {**good, "P_1": torch.arange(6.0)}, params)
    with pytest.raises(ValueError, match="do not match the spec"):
        apply_permutation(spec, {"P_0": good["P_0"]}, params)
    with pytest.raises(ValueError, match="not a permutation"):
        invert_permutation({"P_0": torch.tensor([1, 1])})
    with pytest.raises(ValueError, match="different layers"):
        compose_permutations({"P_0": torch.arange(3)}, {"P_1": torch.arange(3)})


def test_params_that_do_not_fit_the_spec_are_rejected(make_tiny_params):
    params = make_tiny_params(0)
    spec = spec_for_params(params)
    perm = identity_permutation(spec, params)
    with pytest.raises(ValueError, match="missing key"):
        apply_permutation(spec, perm, {k: v for k, v in params.items() if k != "layers.1.bias"})
    with pytest.raises(ValueError, match="unexpected key"):
        apply_permutation(spec, perm, {**params, "extra": torch.zeros(2)})
    with pytest.raises(ValueError, match="different sizes"):
        apply_permutation(spec, perm, {**params, "layers.0.bias": torch.zeros(5)})
    with pytest.raises(ValueError, match="at least two linear layers"):
        spec_for_params({"mean": params["mean"], "layers.0.weight": params["layers.0.weight"]})
