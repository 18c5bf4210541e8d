"""The strong-attack and certification metrics in the evaluation config and suite, and the sanity rows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pytest

from backend.evaluate.config import STRONG_METRICS, EvalConfig
from backend.evaluate.suite import EvalRow, evaluate_model, sanity_rows, sanity_tolerance
from tests.unit.test_attacks import trained  # noqa: F401  (module-scoped tiny trained model)

NEW_FIELDS = ("pgd_steps", "apgd_steps", "attack_restarts", "attack_seed", "certify_method")


def old_key(config: EvalConfig) -> str:
    """The key as computed before the strong metrics existed: every field of the first protocol."""
    d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items() if k not in NEW_FIELDS}
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def test_configs_without_strong_metrics_keep_their_keys():
    for config in (EvalConfig(), EvalConfig(subset=300, metrics=("accuracy", "fgsm"))):
        assert config.key() == old_key(config)
    strong = EvalConfig(metrics=("accuracy", "apgd_linf"))
    assert strong.to_dict()["strong_version"] == 1 and EvalConfig.from_dict(strong.to_dict()) == strong
    assert EvalConfig(metrics=("apgd_linf",), apgd_steps=50).key() != EvalConfig(metrics=("apgd_linf",)).key()
    for bad in ({"apgd_steps": 0}, {"certify_method": "lp"}, {"metrics": ("apgd_l1",)}):
        with pytest.raises(ValueError):
            EvalConfig(**bad)


def test_suite_runs_every_strong_metric_and_the_bracket_holds(trained):  # noqa: F811
    model, x, y, acc = trained
    config = EvalConfig(metrics=("accuracy", "fgsm", "deepfool_linf", "deepfool_l2", *STRONG_METRICS),
                        fgsm_eps=(0.0, 0.05, 0.1), deepfool_linf_eps=(0.0, 0.05, 0.1),
                        deepfool_l2_eps=(0.0, 0.2, 0.4), pgd_steps=10, apgd_steps=20, batch_size=100)
    rows = evaluate_model(model, x, y, config)
    got: dict[str, dict] = {}
    for r in rows:
        got.setdefault(r.metric, {})[r.param] = r.value
    for m in STRONG_METRICS:
        assert set(got[f"{m}_acc"]) == set(config.deepfool_linf_eps if m.endswith("linf") else config.deepfool_l2_eps)
        assert got[f"{m}_acc"][0.0] == pytest.approx(acc)
    for p, grid in (("linf", config.deepfool_linf_eps), ("l2", config.deepfool_l2_eps)):
        for e in grid:
            assert got[f"certified_{p}_acc"][e] <= got[f"apgd_{p}_acc"][e] <= got[f"deepfool_{p}_acc"][e] + 0.02
    assert not [r for r in rows if r.metric.startswith("sanity_certified")]


def test_sanity_rows_flag_a_broken_bracket():
    rows = [EvalRow("fgsm_acc", 0.01, 0.60), EvalRow("deepfool_linf_acc", 0.01, 0.55),
            EvalRow("apgd_linf_acc", 0.01, 0.62), EvalRow("apgd_linf_acc", 0.0, 0.9),
            EvalRow("fgsm_acc", 0.0, 0.9), EvalRow("certified_linf_acc", 0.01, 0.58),
            EvalRow("pgd_l2_acc", 0.1, 0.5), EvalRow("deepfool_l2_acc", 0.1, 0.505)]
    out = {(r.metric, r.param): r.value for r in sanity_rows(rows, 1000)}
    assert out == {("sanity_strong_above_weak_linf", 0.01): pytest.approx(0.07),
                   ("sanity_certified_above_attacked_linf", 0.01): pytest.approx(0.03)}
    assert sanity_tolerance(1000) == 0.01 and sanity_tolerance(100) == 0.03
    assert sanity_rows(rows[:2], 1000) == []
