"""Stacked evaluation of K models == evaluating each model alone (within float tolerance)."""

from __future__ import annotations

import pytest
import torch

from backend.evaluate.config import EvalConfig
from backend.evaluate.stacked import (
    STACKED_METRICS,
    ModelStack,
    evaluate_stack,
    stacked_deepfool_curve,
)
from backend.evaluate.suite import evaluate_model
from backend.models import MLPConfig, mlp_from_state_dict

METRICS = ("accuracy", "fgsm", "deepfool_linf", "deepfool_l2", "noise", "weight_norm")


def _config(**kw) -> EvalConfig:
    base = dict(metrics=METRICS, fgsm_eps=(0.0, 0.05, 0.1, 0.3), deepfool_linf_eps=(0.0, 0.05, 0.1, 0.3),
                deepfool_l2_eps=(0.0, 0.2, 0.5, 1.0), noise_sigma=(0.0, 0.1, 0.3), noise_seed=3, batch_size=64)
    base.update(kw)
    return EvalConfig(**base)


def _data(n: int, shape=(1, 4, 4), classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


def assert_same_rows(stacked_rows, alone_rows, n_samples):
    assert [(r.metric, r.param) for r in stacked_rows] == [(r.metric, r.param) for r in alone_rows]
    for s, a in zip(stacked_rows, alone_rows, strict=True):
        if s.metric.endswith("_median"):
            assert s.value == pytest.approx(a.value, rel=1e-4, abs=1e-6), s
        elif s.metric in ("loss", "weight_norm"):
            assert s.value == pytest.approx(a.value, rel=1e-5), s
        else:  # accuracies: a sample on a decision boundary may flip under float rounding, no more
            assert abs(s.value - a.value) <= 1.0 / n_samples + 1e-12, s


@pytest.mark.parametrize("batch_size", [64, 7])
def test_stack_of_tiny_models_matches_each_model_alone(make_tiny_params, batch_size):
    models = [make_tiny_params(s) for s in range(5)]
    x, y = _data(60)
    config = _config(batch_size=batch_size)
    stacked = evaluate_stack(models, x, y, config)
    assert len(stacked) == 5
    for params, rows in zip(models, stacked, strict=True):
        assert_same_rows(rows, evaluate_model(params, x, y, config), 60)


def test_deepfool_perturbations_match_per_model(make_tiny_params):
    from backend.evaluate.deepfool import deepfool_with_success
    from backend.evaluate.stacked import _stacked_deepfool_batch

    models = [make_tiny_params(s) for s in range(3)]
    x, y = _data(40, seed=1)
    stack = ModelStack(models)
    for p in ("linf", "l2"):
        pert, fooled, _ = _stacked_deepfool_batch(stack, x.reshape(40, -1), y, p, 50, 10, 0.02)
        for k, params in enumerate(models):
            alone, alone_fooled = deepfool_with_success(mlp_from_state_dict(params), x, labels=y, p=p)
            torch.testing.assert_close(pert[k], alone.reshape(40, -1), atol=1e-5, rtol=1e-4)
            assert torch.equal(fooled[k], alone_fooled)


def test_small_wider_models_and_uint8_inputs():
    config = MLPConfig(in_shape=(3, 8, 8), widths=(32, 32, 16), num_classes=10, mean=(0.4, 0.5, 0.6),
                       std=(0.2, 0.25, 0.3))
    from backend.models import MLP, state_dict_of

    models = []
    for s in range(4):
        torch.manual_seed(100 + s)
        models.append(state_dict_of(MLP(config)))
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 256, (50, 3, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (50,), generator=g)
    cfg = _config(metrics=("accuracy", "fgsm", "deepfool_linf", "deepfool_l2", "noise"), batch_size=16)
    stacked = evaluate_stack([mlp_from_state_dict(m) for m in models], x, y, cfg)
    for params, rows in zip(models, stacked, strict=True):
        assert_same_rows(rows, evaluate_model(params, x, y, cfg), 50)


def test_stacked_metrics_cover_the_per_sample_attacks_and_fall_back_for_the_rest(make_tiny_params):
    assert set(STACKED_METRICS) == {"accuracy", "fgsm", "noise", "deepfool_linf", "deepfool_l2"}
    models = [make_tiny_params(s) for s in range(2)]
    x, y = _data(20)
    config = _config(metrics=("weight_norm", "lipschitz_global"))
    for params, rows in zip(models, evaluate_stack(models, x, y, config), strict=True):
        assert rows == evaluate_model(params, x, y, config)


def test_bad_stacks_are_clear_value_errors(make_tiny_params, tiny_config):
    a = make_tiny_params(0)
    other = MLPConfig(in_shape=(1, 4, 4), widths=(8, 5), num_classes=3, mean=(0.5,), std=(0.25,))
    from backend.models import MLP, state_dict_of

    with pytest.raises(ValueError, match="architecture"):
        ModelStack([a, state_dict_of(MLP(other))])
    b = dict(a, std=torch.tensor([0.3]))
    with pytest.raises(ValueError, match="normalises"):
        ModelStack([a, b])
    with pytest.raises(ValueError, match="at least one"):
        ModelStack([])
    x, y = _data(10)
    with pytest.raises(ValueError, match="p must be"):
        stacked_deepfool_curve(ModelStack([a]), x, y, [0.1], p="l3")
    with pytest.raises(ValueError, match="pixels in"):
        evaluate_stack([a], x * 3, y, _config())
