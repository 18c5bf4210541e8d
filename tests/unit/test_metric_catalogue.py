"""The metric catalogue is the one declaration: suite rows, titles, units, grids, CLI options and eval keys."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys

import pytest
import torch

from backend import metrics
from backend.evaluate.config import EvalConfig
from backend.evaluate.suite import evaluate_model

CONFIG = EvalConfig(subset=30, fgsm_eps=(0.0, 0.05), deepfool_linf_eps=(0.0, 0.05), deepfool_l2_eps=(0.0, 0.5),
                    noise_sigma=(0.0, 0.3), lipschitz_points=4, batch_size=16, deepfool_steps=5)


def test_every_metric_stores_exactly_its_catalogue_rows(make_tiny_params, tiny_config):
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(30, *tiny_config.in_shape, generator=g), torch.randint(0, 3, (30,), generator=g)
    for name, metric in metrics.METRICS.items():
        rows = evaluate_model(make_tiny_params(0), x, y, dataclasses.replace(CONFIG, metrics=(name,)))
        assert {r.metric for r in rows} == {r.name for r in metric.rows}, name
        for row in metric.rows:
            params = [r.param for r in rows if r.metric == row.name]
            if row.curve:
                assert params == list(getattr(CONFIG, row.grid)), row.name
            else:
                assert len(params) == 1, row.name


def test_catalogue_is_consistent():
    assert metrics.KNOWN_METRICS == tuple(metrics.METRICS)
    assert set(metrics.ALL_METRICS) < set(metrics.KNOWN_METRICS)
    evaluated = {r.name for m in metrics.METRICS.values() for r in m.rows}
    assert set(metrics.ROWS) == evaluated | {r.name for r in (*metrics.CONNECTIVITY_ROWS, *metrics.SANITY_ROWS)}
    assert set(metrics.ROW_METRIC) == evaluated
    fields = {f.name for f in dataclasses.fields(EvalConfig)}
    for metric in metrics.METRICS.values():
        assert metric.version >= 1 and metric.label
        assert callable(metric.function())
        assert metric.stacked is None or callable(metric.stacked_function())
        for row in metric.rows:
            assert row.title and row.unit and row.family in ("accuracy", "adversarial", "noise", "weights")
            assert row.source == "evaluation"
            if row.curve:
                assert row.grid in fields and row.param and row.symbol
    assert set(metrics.GRIDS) <= fields


def test_faces_read_the_catalogue():
    from backend import labels, report

    assert labels.CURVE_METRICS["fgsm_acc"] == metrics.axis("fgsm_acc") == "FGSM ε (L∞, pixel units)"
    assert report.CURVES["fgsm_acc"] == "FGSM ε (L∞)" and report.CURVES["noise_acc"] == "Gaussian noise σ"
    assert labels.METRIC_TITLES == {n: r.title for n, r in metrics.ROWS.items()}
    assert report.NORMS["lipschitz_local_mean"] == labels.METRIC_TITLES["lipschitz_local_mean"]
    assert "lipschitz_local_std" not in metrics.SCALAR_ROWS and "fgsm_acc" not in metrics.SCALAR_ROWS
    assert metrics.title("unknown_row") == "unknown_row" and metrics.unit("unknown_row") == "value"


def test_version_one_keeps_the_old_key_and_a_bump_renames_only_configs_with_the_metric(monkeypatch):
    both, plain = EvalConfig(metrics=("accuracy", "fgsm")), EvalConfig(metrics=("accuracy", "noise"))
    old = hashlib.sha256(json.dumps(both.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert both.key() == old[:16]  # keys stored before versions existed stay valid
    before = (both.key(), plain.key())
    bumped = dict(metrics.METRICS, fgsm=dataclasses.replace(metrics.METRICS["fgsm"], version=2))
    monkeypatch.setattr(metrics, "METRICS", bumped)
    assert both.key() != before[0] and plain.key() == before[1]
    assert metrics.versions(["accuracy", "fgsm"]) == {"fgsm": 2}


def test_catalogue_imports_without_torch():
    code = "import sys, backend.metrics; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("grid", metrics.GRIDS)
def test_cli_has_one_option_per_grid(grid):
    import argparse

    from backend.cli.common import add_eval_options, eval_config_from_args

    parser = argparse.ArgumentParser()
    add_eval_options(parser)
    args = parser.parse_args([f"--{grid.replace('_', '-')}", "0,0.01"])
    assert eval_config_from_args(args)[grid] == [0.0, 0.01]
