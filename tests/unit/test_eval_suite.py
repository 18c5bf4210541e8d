"""evaluate_model: the long-format rows the store saves, subset and progress."""

from __future__ import annotations

import pytest
import torch

from backend.evaluate.accuracy import accuracy_and_loss
from backend.evaluate.config import ALL_METRICS, EvalConfig
from backend.evaluate.suite import EvalRow, evaluate_model
from backend.models import MLP, mlp_from_state_dict

CONFIG = EvalConfig(subset=40, fgsm_eps=(0.0, 0.05, 0.1), deepfool_linf_eps=(0.0, 0.05),
                    deepfool_l2_eps=(0.0, 0.5), noise_sigma=(0.0, 0.3), lipschitz_points=5,
                    lipschitz_radius=0.1, batch_size=16)


@pytest.fixture
def data(tiny_config):
    g = torch.Generator().manual_seed(5)
    return torch.rand(60, *tiny_config.in_shape, generator=g), torch.randint(0, 3, (60,), generator=g)


def by_name(rows):
    out: dict[str, dict] = {}
    for row in rows:
        out.setdefault(row.metric, {})[row.param] = row.value
    return out


def test_evaluate_model_reports_every_metric(make_tiny_params, data):
    x, y = data
    events = []
    rows = evaluate_model(make_tiny_params(0), x, y, CONFIG, progress=events.append)
    assert all(isinstance(r, EvalRow) for r in rows)
    got = by_name(rows)
    assert set(got) == {"accuracy", "loss", "fgsm_acc", "deepfool_linf_acc", "deepfool_linf_median",
                        "deepfool_l2_acc", "deepfool_l2_median", "noise_acc", "weight_norm",
                        "lipschitz_global", "lipschitz_local_mean", "lipschitz_local_std"}
    assert set(got["fgsm_acc"]) == {0.0, 0.05, 0.1}
    assert set(got["deepfool_l2_acc"]) == {0.0, 0.5}
    assert set(got["lipschitz_local_mean"]) == {0.1}
    model = mlp_from_state_dict(make_tiny_params(0))
    acc, loss = accuracy_and_loss(model, x[:40], y[:40])  # the subset: the first 40 samples
    assert got["accuracy"][None] == pytest.approx(acc) and got["loss"][None] == pytest.approx(loss)
    for name in ("fgsm_acc", "deepfool_linf_acc", "deepfool_l2_acc", "noise_acc"):
        assert got[name][0.0] == pytest.approx(acc)
    assert got["lipschitz_local_mean"][0.1] <= got["lipschitz_global"][None] * (1 + 1e-5)
    assert [e.done for e in events] == list(range(len(ALL_METRICS) + 1))
    assert events[-1].fraction == 1.0


def test_subset_none_uses_everything_and_metrics_are_selectable(make_tiny_params, data):
    x, y = data
    config = EvalConfig(metrics=("noise", "accuracy"), noise_sigma=(0.0, 0.1))
    rows = evaluate_model(mlp_from_state_dict(make_tiny_params(1)), x, y, config)
    assert [r.metric for r in rows] == ["noise_acc", "noise_acc", "accuracy", "loss"]
    acc, _ = accuracy_and_loss(mlp_from_state_dict(make_tiny_params(1)), x, y)
    assert rows[2].value == pytest.approx(acc)


def test_suite_bad_input(make_tiny_params, data, tiny_config):
    x, y = data
    with pytest.raises(ValueError):
        evaluate_model(make_tiny_params(0), x, y, {"subset": 10})
    with pytest.raises(ValueError):
        evaluate_model(MLP(tiny_config), torch.rand(5, 1, 3, 3), y[:5], CONFIG)
