"""A whole experiment on real Fashion-MNIST at tiny scale: every table, then a rerun that computes nothing."""

from __future__ import annotations

import pytest

TINY = {
    "widths": [16, 8], "epochs": 1, "train_subset": 2000, "trees": [[1, 4]], "reg_models": 1,
    "eval": {"subset": 200, "deepfool_steps": 10, "lipschitz_points": 8, "fgsm_eps": [0.0, 0.01, 0.02],
             "deepfool_linf_eps": [0.0, 0.01, 0.02], "deepfool_l2_eps": [0.0, 0.25, 0.5],
             "noise_sigma": [0.0, 0.1]},
}


@pytest.mark.realdata
@pytest.mark.timeout(300)
def test_tiny_experiment_end_to_end_and_resume(tmp_path):
    from backend.jobs.context import JobContext
    from backend.jobs.experiment import run_experiment
    from backend.jobs.spec import ExperimentSpec
    from backend.report import build_report
    from backend.report_files import write_report
    from store import experiments as store_exps
    from store import status

    spec = ExperimentSpec(preset="quick", dataset="fashion_mnist", overrides=TINY)
    spec.validate()
    result = run_experiment(spec, JobContext.null())

    exp = store_exps.get_experiment(result["experiment_id"])
    assert exp["status"] == "done" and exp["report_path"]
    assert set(exp["result"]["zoos"]) == {"plain", "l1", "l2"}
    (group,) = exp["result"]["groups"]
    assert set(group["trees"]) == {"hierarchical", "merge_many", "average"} and group["leaves"] == 4

    report = build_report(result["experiment_id"])
    tables = {name: t for s in report.sections for name, t in s.tables.items()}
    for name in ("accuracy_per_level", "paired_differences", "root_vs_merge_many", "fgsm_acc_curves",
                 "deepfool_linf_acc_curves", "deepfool_l2_acc_curves", "noise_acc_curves",
                 "weight_norm_per_level", "lipschitz_global_per_level", "lipschitz_local_mean_per_level",
                 "trends"):
        assert name in tables and not tables[name].empty, name
    acc = tables["accuracy_per_level"]
    assert set(acc.loc[acc["series"] == "hierarchical · 4 leaves", "level"]) == {0, 1, 2}
    assert acc["mean"].between(0.0, 1.0).all()
    series = set(tables["fgsm_acc_curves"]["series"])
    assert {"unmerged", "L1-regularised", "L2-regularised", "MergeMany", "naive average",
            "hierarchical level 1 (2 models)", "hierarchical level 2 (4 models)"} <= series
    paired = tables["paired_differences"]
    assert (paired["n"] == 1).all()  # one tree: the difference is reported, the tests are not

    html_path = write_report(result["experiment_id"], tmp_path / "r.html")
    text = html_path.read_text()
    assert "data:image/png;base64," in text and "Hierarchical vs MergeMany" in text
    md = open(exp["report_path"]).read()
    assert md.startswith("# Hierarchical Re-Basin study") and md.count("![") >= 6 and "data:image" not in md
    assert "<strong>fashion_mnist</strong>" in text and "**fashion_mnist**" not in text  # Markdown rendered

    before = status.counts()
    again = run_experiment(spec, JobContext.null())
    after = status.counts()
    assert again["experiment_id"] == result["experiment_id"]
    assert again["tree_ids"] == result["tree_ids"] and again["zoos"] == result["zoos"]
    for what in ("zoos", "models", "trees", "evaluations"):
        assert after[what] == before[what], what


@pytest.mark.realdata
@pytest.mark.timeout(300)
def test_explain_preset_variants_barriers_and_report():
    """Variant trees (REPAIR, activation matching) over the same leaves and barrier per level, in the report."""
    from backend.experiment import PRESETS
    from backend.jobs.context import JobContext
    from backend.jobs.experiment import run_experiment
    from backend.jobs.spec import ExperimentSpec
    from backend.report import build_report
    from store import trees as store_trees

    assert PRESETS["explain"].variants and PRESETS["explain"].connectivity
    overrides = {**TINY, "trees": [[2, 4]], "eval": {**TINY["eval"], "metrics": ["accuracy", "weight_norm",
                                                                                  "lipschitz_global"]},
                 "variants": [{"repair": True}, {"matcher": "activation", "n_images": 512}],
                 "connectivity": {"lam_grid": [0, 0.5, 1], "aligns": ["none", "weight"], "repair": True,
                                  "images": 512, "test_subset": 200}}
    spec = ExperimentSpec(preset="explain", dataset="fashion_mnist", overrides=overrides)
    spec.validate()
    result = run_experiment(spec, JobContext.null())
    report = build_report(result["experiment_id"])
    titles = [s.title for s in report.sections]
    assert "Barrier per level" in titles and "REPAIR and matcher effect per level" in titles
    tables = {name: t for s in report.sections for name, t in s.tables.items()}
    barriers = tables["barriers_per_node"]
    # 2 groups x 3 hierarchical trees (plain, REPAIR, activation) x 3 merged nodes x 4 alignment variants
    assert len(barriers) == 2 * 3 * 3 * 4 and (barriers["loss_barrier"] >= 0).all()
    assert set(barriers["level"]) == {1, 2}
    effects = tables["variant_effects"]
    assert set(effects["variant"]) == {"hierarchical + REPAIR", "hierarchical · activation matching"}
    acc = effects[effects["metric"] == "accuracy"]
    assert set(acc["level"]) == {1, 2} and (acc["n"] == acc["level"].map({1: 4, 2: 2})).all()
    for group in report.experiment["result"]["groups"] if isinstance(report.experiment["result"], dict) else []:
        for variant in group["variants"]:
            assert store_trees.get_tree(variant["tree_id"])["leaves"] == group["leaf_ids"]
