"""Activation matching, REPAIR, stacked forwards, interpolation curves and barriers on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from backend.activation_matching import activation_matching, correlation
from backend.connectivity import (
    ConnectivityConfig,
    accuracy_barrier,
    align,
    check_grid,
    curves_for_pair,
    lerp_stack,
    loss_barrier,
    parse_grid,
)
from backend.evaluate.accuracy import accuracy_and_loss
from backend.merge.common import interpolate
from backend.merge.repair import hidden_stats, repair
from backend.models import MLPConfig, mlp_from_state_dict
from backend.permutation import apply_permutation, invert_permutation, random_permutation, spec_for_params
from backend.stacked import stack_params, stacked_accuracy_and_loss, stacked_logits, stacked_preactivations

WIDE = MLPConfig(in_shape=(1, 4, 4), widths=(16, 12, 10), num_classes=3, mean=(0.5,), std=(0.25,))


def _images(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def _hidden_preacts(params, x):
    """Plain nn.Module forward with hooks: pre-activations of every hidden layer (independent of backend.stacked)."""
    model = mlp_from_state_dict(params)
    h = model.normalize(x)
    out = []
    for layer in model.layers[:-1]:
        z = layer(h)
        out.append(z)
        h = torch.relu(z)
    return out


def test_stacked_forward_matches_the_module(make_tiny_params):
    models = [make_tiny_params(s, WIDE) for s in range(3)]
    x, y = _images(100)
    stack = stack_params(models)
    logits = stacked_logits(stack, x)
    acc, loss = stacked_accuracy_and_loss(stack, x, y, batch_size=37)
    for g, params in enumerate(models):
        module = mlp_from_state_dict(params)
        torch.testing.assert_close(logits[g], module(x), atol=1e-5, rtol=1e-5)
        ref_acc, ref_loss = accuracy_and_loss(module, x, y)
        assert acc[g].item() == pytest.approx(ref_acc, abs=1e-12)
        assert loss[g].item() == pytest.approx(ref_loss, rel=1e-5)
        for z, ref in zip(stacked_preactivations(stack, x)[:-1], _hidden_preacts(params, x), strict=True):
            torch.testing.assert_close(z[g], ref, atol=1e-5, rtol=1e-5)


def test_correlation_matches_numpy():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 4, generator=g), torch.randn(50, 3, generator=g)
    b[:, 2] = 0.0  # a constant column correlates with nothing
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.corrcoef(a.numpy().T, b.numpy().T)[:4, 4:]
    ref[:, 2] = 0.0
    np.testing.assert_allclose(correlation(a, b).numpy(), np.nan_to_num(ref), atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_activation_matching_recovers_a_planted_permutation(make_tiny_params, seed):
    a = make_tiny_params(seed, WIDE)
    spec = spec_for_params(a)
    planted = random_permutation(spec, a, seed=10 + seed)
    b = apply_permutation(spec, planted, a)
    x, _ = _images(256, seed)
    torch.testing.assert_close(mlp_from_state_dict(b)(x), mlp_from_state_dict(a)(x), atol=1e-5, rtol=1e-5)
    result = activation_matching(spec, a, b, x)
    expected = invert_permutation(planted)
    for name in spec.perm_names:
        assert torch.equal(result.perm[name], expected[name]), name
    aligned = apply_permutation(spec, result.perm, b)
    for key in a:
        torch.testing.assert_close(aligned[key], a[key])
    # correlation 1 for every unit alive on the batch, 0 for dead ones (the tie-break still placed them)
    live = sum(float((torch.relu(z).std(0) > 0).double().mean()) for z in _hidden_preacts(a, x))
    assert result.objective_trace[0] == pytest.approx(live, abs=1e-6)


def test_activation_matching_is_the_lap_on_correlations(make_tiny_params):
    """Independent models: each layer's permutation is the LAP of numpy's correlation of ReLU outputs."""
    a, b = make_tiny_params(0, WIDE), make_tiny_params(1, WIDE)
    spec = spec_for_params(a)
    x, _ = _images(400)
    result = activation_matching(spec, a, b, x)
    for i, (za, zb) in enumerate(zip(_hidden_preacts(a, x), _hidden_preacts(b, x), strict=True)):
        pa, pb = torch.relu(za).detach().double().numpy(), torch.relu(zb).detach().double().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num(np.corrcoef(pa.T, pb.T)[: pa.shape[1], pa.shape[1]:])
        _, cols = linear_sum_assignment(corr, maximize=True)
        best = corr[np.arange(len(cols)), cols].sum()
        got = corr[np.arange(len(cols)), result.perm[f"P_{i}"].numpy()].sum()
        assert got == pytest.approx(best, abs=1e-3)  # optimal up to the tie-break term


def test_activation_matching_bad_input(make_tiny_params):
    a = make_tiny_params(0, WIDE)
    spec = spec_for_params(a)
    with pytest.raises(ValueError, match="batch"):
        activation_matching(spec, a, a, torch.rand(1, 1, 4, 4))


def test_repair_statistics_match_their_targets(make_tiny_params):
    a, b = make_tiny_params(0, WIDE), make_tiny_params(1, WIDE)
    x, _ = _images(300)
    for lam in (0.3, 0.5):
        merged = interpolate(a, b, lam)
        fixed = repair(merged, [a, b], [1 - lam, lam], x)
        assert set(fixed) == set(merged) and torch.equal(fixed["mean"], merged["mean"])
        got = _hidden_preacts(fixed, x)  # independent forward through an nn.Module
        for i, (za, zb) in enumerate(zip(_hidden_preacts(a, x), _hidden_preacts(b, x), strict=True)):
            za, zb, z = za.double(), zb.double(), got[i].double()
            goal_mean = (1 - lam) * za.mean(0) + lam * zb.mean(0)
            goal_std = (1 - lam) * za.std(0, correction=0) + lam * zb.std(0, correction=0)
            torch.testing.assert_close(z.mean(0), goal_mean, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(z.std(0, correction=0), goal_std, atol=1e-4, rtol=1e-4)
        # the classifier is untouched; the output layer's input statistics changed
        assert torch.equal(fixed[f"layers.{len(WIDE.widths)}.weight"], merged[f"layers.{len(WIDE.widths)}.weight"])


def test_repair_merge_many_targets_are_the_mean(make_tiny_params):
    models = [make_tiny_params(s, WIDE) for s in range(3)]
    x, _ = _images(300)
    merged = {k: torch.stack([m[k] for m in models]).mean(0) for k in models[0]}
    fixed = repair(merged, models, [1 / 3] * 3, x)
    stats = hidden_stats(stack_params([fixed]), x)
    ends = hidden_stats(stack_params(models), x)
    for (m, s), (em, es) in zip(stats, ends, strict=True):
        torch.testing.assert_close(m[0], em.mean(0), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(s[0], es.mean(0), atol=1e-4, rtol=1e-4)


def test_repair_of_an_endpoint_changes_nothing(make_tiny_params):
    a = make_tiny_params(0, WIDE)
    x, _ = _images(200)
    fixed = repair(a, [a, make_tiny_params(1, WIDE)], [1.0, 0.0], x)
    for key in a:
        torch.testing.assert_close(fixed[key], a[key], atol=1e-5, rtol=1e-5)


def test_barrier_definitions_by_hand():
    lams = [0.0, 0.25, 0.5, 0.75, 1.0]
    assert loss_barrier(lams, [1.0, 2.0, 3.0, 2.0, 2.0]) == pytest.approx(3.0 - 1.5)
    assert accuracy_barrier(lams, [0.9, 0.5, 0.4, 0.6, 0.7]) == pytest.approx(0.8 - 0.4)
    assert loss_barrier(lams, [1.0, 1.25, 1.5, 1.75, 2.0]) == pytest.approx(0.0)  # on the chord
    assert loss_barrier([0.0, 0.5, 1.0], [1.0, 0.5, 1.0]) == pytest.approx(0.0)  # below the chord: endpoints give 0


def test_grid_parsing_and_config_validation():
    assert parse_grid("3") == (0.0, 0.5, 1.0)
    assert parse_grid("0, 0.2,1") == (0.0, 0.2, 1.0)
    assert len(parse_grid("21")) == 21
    for bad in ("1", "0,0.5", "0.5,1", "x", "0,0.7,0.3,1"):
        with pytest.raises(ValueError):
            parse_grid(bad)
    with pytest.raises(ValueError):
        check_grid([0, 2])
    with pytest.raises(ValueError, match="alignments"):
        ConnectivityConfig(aligns=("weight", "magic"))
    config = ConnectivityConfig(aligns="weight", repair=True, lam_grid=(0, 1))
    assert ConnectivityConfig.from_dict(config.to_dict()) == config
    assert config.key() != ConnectivityConfig(aligns="weight", repair=False, lam_grid=(0, 1)).key()
    assert config.variants() == [("weight", False), ("weight", True)]
    with pytest.raises(ValueError, match="unknown"):
        ConnectivityConfig.from_dict({"nope": 1})


@pytest.mark.parametrize("method", ["weight", "activation"])
def test_barrier_to_a_permuted_copy_is_zero(make_tiny_params, method):
    a = make_tiny_params(0, WIDE)
    spec = spec_for_params(a)
    planted = random_permutation(spec, a, seed=5)
    b = apply_permutation(spec, planted, a)
    x, y = _images(400)
    aligned, match = align(a, b, method, images=x)
    assert all(torch.equal(match.perm[p], invert_permutation(planted)[p]) for p in spec.perm_names)
    config = ConnectivityConfig(lam_grid=parse_grid("11"), aligns=(method,), repair=True, images=400)
    for curve in curves_for_pair(a, b, config, test=(x, y), images=x):
        assert curve.loss_barrier == pytest.approx(0.0, abs=1e-5)
        assert curve.accuracy_barrier == pytest.approx(0.0, abs=1e-9)


def test_curve_endpoints_equal_the_models_evaluation_and_chunks_agree(make_tiny_params):
    a, b = make_tiny_params(0, WIDE), make_tiny_params(1, WIDE)
    x, y = _images(300)
    xt, yt = _images(200, seed=9)
    config = ConnectivityConfig(lam_grid=parse_grid("6"), repair=True, images=300)
    curves = curves_for_pair(a, b, config, test=(x, y), train=(xt, yt), images=xt)
    assert {(c.align, c.repair, c.split) for c in curves} == {
        (m, r, s) for m in ("none", "weight", "activation") for r in (False, True) for s in ("test", "train")}
    for curve in curves:
        data = (x, y) if curve.split == "test" else (xt, yt)
        acc_a, loss_a = accuracy_and_loss(mlp_from_state_dict(a), *data)
        acc_b, loss_b = accuracy_and_loss(mlp_from_state_dict(b), *data)  # π(B) computes what B computes
        assert curve.accuracy[0] == pytest.approx(acc_a, abs=1e-9) and curve.loss[0] == pytest.approx(loss_a, rel=1e-4)
        assert curve.accuracy[-1] == pytest.approx(acc_b, abs=1e-9) and curve.loss[-1] == pytest.approx(loss_b, rel=1e-4)
        assert curve.loss_barrier >= 0 and curve.accuracy_barrier >= 0
    # one model at a time (max_stack=1) gives the same numbers as the stacked pass
    single = curves_for_pair(a, b, config, test=(x, y), images=xt, max_stack=1)
    stacked = [c for c in curves if c.split == "test"]
    for c1, c2 in zip(single, stacked, strict=True):
        np.testing.assert_allclose(c1.loss, c2.loss, rtol=1e-5)
        np.testing.assert_allclose(c1.accuracy, c2.accuracy, atol=1e-12)
    # and the naive midpoint is the plain interpolated model
    mid = mlp_from_state_dict(interpolate(a, b, 0.6))
    naive = next(c for c in curves if c.align == "none" and not c.repair and c.split == "test")
    assert naive.loss[3] == pytest.approx(accuracy_and_loss(mid, x, y)[1], rel=1e-4)


def test_lerp_stack_matches_interpolate(make_tiny_params):
    a, b = make_tiny_params(0), make_tiny_params(1)
    stack = lerp_stack(a, b, [0.0, 0.3, 1.0])
    for g, lam in enumerate([0.0, 0.3, 1.0]):
        ref = interpolate(a, b, lam)
        for key in ref:
            if key not in ("mean", "std"):
                torch.testing.assert_close(stack[key][g], ref[key])


def test_curves_need_images_for_activation_matching(make_tiny_params):
    a, b = make_tiny_params(0), make_tiny_params(1)
    x, y = _images(50)
    with pytest.raises(ValueError, match="images"):
        curves_for_pair(a, b, ConnectivityConfig(aligns=("activation",)), test=(x, y))


def test_factored_first_layer_matches_the_materialised_stack(make_tiny_params):
    from backend.merge.repair import repair_stack, target_stats
    from backend.stacked import FirstLayer

    a, b = make_tiny_params(0, WIDE), make_tiny_params(1, WIDE)
    x, _ = _images(120)
    lams = [0.0, 0.3, 0.8]
    stack = lerp_stack(a, b, lams)
    coef = torch.tensor([[1 - v, v] for v in lams], dtype=torch.float64)
    first = FirstLayer(torch.stack([a["layers.0.weight"], b["layers.0.weight"]]), coef)
    torch.testing.assert_close(stacked_logits(stack, x, first), stacked_logits(stack, x), atol=1e-5, rtol=1e-5)
    ends = hidden_stats(stack_params([a, b]), x)
    targets = target_stats([[(m[k], s[k]) for m, s in ends] for k in range(2)], coef)
    plain = repair_stack(stack, targets, x)
    fixed, first = repair_stack(stack, targets, x, first)
    for key in plain:
        torch.testing.assert_close(fixed[key], plain[key], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stacked_logits(fixed, x, first), stacked_logits(plain, x), atol=1e-4, rtol=1e-4)
