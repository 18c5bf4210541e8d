"""Presets, plan overrides, the estimate's cost model and the CLI's one-line errors (no training)."""

from __future__ import annotations

import argparse

import pytest

from backend import estimate
from backend.estimate import machine
from backend.experiment import PRESETS, ExperimentPlan, plan_for

FIXED_RATES = {"train_step_s": 0.01, "forward_sample_s": 1e-6, "lap_s": 0.001, "lap_width": 128}


def test_presets_and_overrides():
    assert PRESETS["paper"].dataset == "cifar10" and PRESETS["paper"].n_trained == 1600
    for name in ("quick", "standard"):
        assert {n for _, n in PRESETS[name].trees} >= {4, 8}
    plan = plan_for("demo", "mnist", {"epochs": 3, "eval": {"subset": 50}})
    assert plan.dataset == "mnist" and plan.epochs == 3
    assert plan.eval["subset"] == 50
    assert plan.eval["lipschitz_points"] == PRESETS["demo"].eval["lipschitz_points"]  # merged, not replaced
    assert ExperimentPlan(preset="x", trees=((2, 4), (1, 8))).leaf_groups() == [(0, 4), (4, 4), (8, 8)]
    with pytest.raises(ValueError, match="unknown experiment option"):
        plan_for("demo", None, {"epochz": 1})
    with pytest.raises(ValueError, match="unknown preset"):
        plan_for("huge")
    with pytest.raises(ValueError, match="trees"):
        ExperimentPlan(preset="x", trees=((1, 1),))


def test_estimate_grows_with_the_preset(monkeypatch):
    monkeypatch.setattr(machine, "rates", lambda device, sizes, batch: FIXED_RATES)  # where fallback_rates looks
    totals = [estimate.estimate_breakdown(PRESETS[p], "cpu")["total"] for p in ("demo", "quick", "standard")]
    assert totals == sorted(totals) and totals[0] > 5
    est = estimate.estimate_breakdown(PRESETS["demo"], "cpu")
    demo = PRESETS["demo"]
    steps = demo.epochs * -(-60000 // demo.batch_size)  # whole Fashion-MNIST train split
    assert est["train"] == pytest.approx(
        demo.n_trained * ((steps * 0.01 + (60000 + 10000) * 1e-6) * estimate.TRAIN_OVERHEAD
                          + estimate.TRAIN_MODEL_SECONDS))
    assert estimate.describe(30) == "about 30 s" and estimate.describe(7200) == "about 2.0 h"


def test_a_range_is_rounded_outward_so_it_still_holds_what_it_held():
    def shown(total, low, high):
        return estimate.describe_range({"total": total, "low": low, "high": high})

    assert shown(6, 3.7, 8.2) == "about 6 s (3–9 s)"
    assert shown(100, 89, 150) == "about 2 min (1–3 min)"
    assert shown(100, 40, 150) == "about 2 min (<1–3 min)"
    assert shown(7200, 5500, 9100) == "about 2.0 h (1.5–2.6 h)"


def test_measured_rates_are_cached_on_disk():
    r = estimate.rates("cpu", (16, 8, 3), 64)
    assert r["train_step_s"] > 0 and r["forward_sample_s"] > 0
    assert estimate.rates("cpu", (16, 8, 3), 64) is r


@pytest.mark.parametrize("overrides,out,needle", [("{bad", None, "not valid JSON"),
                                                   ('{"epochz": 1}', None, "unknown experiment option"),
                                                   (None, "report.pdf", "must end in .md or .html")])
def test_cli_errors_are_one_line(capsys, overrides, out, needle):
    from backend.cli.experiment import run

    args = argparse.Namespace(preset="demo", dataset="fashion_mnist", out=out, overrides=overrides,
                              background=False, estimate=True)
    assert run(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_bracket_preset_adds_a_strong_attack_and_a_certificate_and_costs_what_was_measured():
    from backend.experiment import BRACKET_METRICS
    from backend.metrics import ALL_METRICS

    bracket, demo = plan_for("bracket", "fashion_mnist"), plan_for("demo", "fashion_mnist")
    ev = bracket.eval_config()
    assert ev.metrics == (*ALL_METRICS, *BRACKET_METRICS) and demo.eval_config().metrics == ALL_METRICS
    assert (bracket.widths, bracket.epochs, ev.subset) == (demo.widths, demo.epochs, demo.eval_config().subset)
    # the cost model reproduces the measured ratios (README preset table): APGD L∞ ≈ 15x, CROWN ≈ 1.3x the default
    sizes = estimate.layer_sizes("fashion_mnist", bracket.widths)
    base = estimate.eval_units(sizes, demo.eval_config(), 1, 10000)
    for metric, measured in (("apgd_linf", 914.2 / 60.3), ("certified_linf", 76.1 / 60.3)):
        alone = ExperimentPlan.from_dict({**bracket.to_dict(), "eval": {**bracket.eval, "metrics": [metric]}})
        ratio = estimate.eval_units(sizes, alone.eval_config(), 1, 10000) / base
        assert ratio == pytest.approx(measured, rel=0.15), metric
    low, high = (estimate.estimate_breakdown(p, "cpu", measure=False)["evaluate"] for p in (demo, bracket))
    assert high > 10 * low


# Stored results hold plan.to_dict() (experiments.result["plan"]), estimates and the report read it: declaring the
# plan (backend/options.py) must not change it. Pinned from the hand-written dataclass before the declaration: the
# canonical key of every preset's dict, its field order and plain-JSON values. A deliberate preset change updates it.
PRESET_DICT_KEYS = {"demo": "25e95aa15c4cc46a", "quick": "e1f7da191cee52e6", "standard": "0de2e773b583b0e3",
                    "explain": "60e5c1a777669642", "bracket": "f047c3780614dc5d", "paper": "f66689058410eff2"}
PLAN_FIELDS = ["preset", "dataset", "widths", "epochs", "batch_size", "lr", "train_subset", "augment", "trees",
               "reg_models", "l1_strength", "l2_strength", "lam", "seed", "eval", "variants", "connectivity", "note"]


def test_every_presets_dict_is_what_it_was():
    import json

    from backend.options import canonical_key

    assert set(PRESETS) == set(PRESET_DICT_KEYS)
    for name, plan in PRESETS.items():
        d = plan.to_dict()
        assert list(d) == PLAN_FIELDS and json.loads(json.dumps(d)) == d, name  # lists, not tuples
        assert canonical_key(d) == PRESET_DICT_KEYS[name], name
        assert ExperimentPlan.from_dict(d) == plan and plan_for(name).to_dict() == d
    assert PRESETS["demo"].to_dict() == {
        "preset": "demo", "dataset": "fashion_mnist", "widths": [256, 128], "epochs": 2, "batch_size": 512,
        "lr": 0.001, "train_subset": None, "augment": None, "trees": [[1, 4], [1, 8]], "reg_models": 2,
        "l1_strength": 1e-05, "l2_strength": 0.0001, "lam": 0.5, "seed": 0,
        "eval": {"subset": 300, "lipschitz_points": 20}, "variants": [], "connectivity": None,
        "note": "a first look: 1 tree of 4 and 1 of 8 leaves, 2 epochs"}
    explain = plan_for("explain", "mnist", {"epochs": 3, "trees": [[1, 4]], "variants": [{"repair": True}]})
    assert canonical_key(explain.to_dict()) == "dbc25a42c3d1466f"
    assert explain.trees == ((1, 4),) and explain.variants == ({"repair": True},)  # JSON lists -> tuples


def _experiment_args(*argv):
    from backend.cli import build_parser

    parser, _ = build_parser()
    return parser.parse_args(["experiment", "--dataset", "fashion_mnist", *argv])


def test_plan_flags_reach_the_plan_and_are_the_same_job_as_overrides():
    from backend.cli.experiment import plan_overrides
    from backend.jobs.spec import ExperimentSpec

    args = _experiment_args("--epochs", "3", "--trees", "[[1,4]]", "--widths", "16,8", "--no-augment",
                            "--eval", '{"subset": 50}', "--overrides", '{"reg_models": 1}')
    overrides = plan_overrides(args)
    assert overrides == {"reg_models": 1, "epochs": 3, "trees": [[1, 4]], "widths": [16, 8], "augment": False,
                         "eval": {"subset": 50}}  # plain JSON: what the spec stores
    plan = plan_for("demo", "fashion_mnist", overrides)
    assert (plan.epochs, plan.trees, plan.widths, plan.augment, plan.reg_models) == (3, ((1, 4),), (16, 8), False, 1)
    assert plan.eval == {**PRESETS["demo"].eval, "subset": 50}  # merged into the preset's
    flags = ExperimentSpec(preset="demo", dataset="fashion_mnist", overrides=plan_overrides(_experiment_args(
        "--epochs", "3")))
    assert flags.key() == ExperimentSpec(preset="demo", dataset="fashion_mnist", overrides={"epochs": 3}).key()
    assert plan_overrides(_experiment_args()) == {}  # no flag: the preset as it is


@pytest.mark.parametrize("argv, words", [
    (["--epochs", "0"], "error: epochs must be a positive integer, got 0"),
    (["--epochs", "abc"], "error: argument --epochs: must be a positive integer, got 'abc'"),
    (["--trees", "[[1, 1]]"], "error: trees must be a list of [number of trees >= 1, leaves per tree >= 2] pairs"),
    (["--trees", "[[1"], "error: argument --trees: must be JSON"),
    (["--variants", '[{"matcher": "magic"}]'], "matcher"),
    (["--epochs", "3", "--overrides", '{"epochs": 2}'], "error: epochs is set both by --epochs and in --overrides"),
])
def test_a_bad_plan_flag_is_one_error_line(argv, words, capsys):
    from backend.cli import main

    assert main(["experiment", "--dataset", "fashion_mnist", "--estimate", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], lines
