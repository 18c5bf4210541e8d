"""The report's robustness bracket: per model the attacked bound is the smallest attack, summaries are plain
means, violations are counted, and the paired statistics against the leaves agree with scipy's paired t-test
on per-tree means computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.report import Study, _reference_rows, tag_rows
from backend.report_bracket import available, bracket_rows, bracket_section, bracket_summary, paired_vs_leaves

EPS = [0.0, 0.01, 0.02, 0.03]  # 0.03 is beyond the paper's L∞ range: left out
METRICS = ("certified_linf_acc", "apgd_linf_acc", "pgd_linf_acc", "fgsm_acc", "deepfool_linf_acc")


def _frame(seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Two trees of 4 leaves (hierarchical, MergeMany on the same leaves) and an L2 zoo of 3, every metric at
    every ε with certified ≤ each attack, except one planted violation."""
    rng = np.random.default_rng(seed)
    models = []  # (model_id, tree_id, method, level, kind, zoo_kind)
    mid = 0
    result = {"groups": []}
    for pair in range(2):
        hier, mm = 10 + 2 * pair, 11 + 2 * pair
        result["groups"].append({"pair": pair, "leaves": 4, "trees": {"hierarchical": hier, "merge_many": mm}})
        leaf_ids = []
        for _ in range(4):
            mid += 1
            leaf_ids.append(mid)
            models.append((mid, hier, "hierarchical", 0, "trained", "plain"))
            models.append((mid, mm, "merge_many", 0, "trained", "plain"))  # the same leaf under MergeMany's tree
        for level, count in ((1, 2), (2, 1)):
            for _ in range(count):
                mid += 1
                models.append((mid, hier, "hierarchical", level, "hierarchical", None))
        mid += 1
        models.append((mid, mm, "merge_many", 2, "merge_many", None))
    for _ in range(3):
        mid += 1
        models.append((mid, None, "zoo", 0, "trained", "l2"))
    values: dict[tuple[int, float], dict[str, float]] = {}
    rows = []
    for model_id, tree_id, method, level, kind, zoo_kind in models:
        for eps in EPS:
            if (model_id, eps) not in values:
                base = 0.9 - 10 * eps * rng.uniform(1, 3)
                certified = base - rng.uniform(0.05, 0.3)
                values[model_id, eps] = {"certified_linf_acc": certified,
                                         **{m: base + rng.uniform(0, 0.1) for m in METRICS[1:]}}
            for metric in METRICS:
                rows.append({"model_id": model_id, "tree_id": tree_id, "method": method, "level": level,
                             "kind": kind, "zoo_kind": zoo_kind, "metric": metric, "param": eps,
                             "value": values[model_id, eps][metric]})
    df = pd.DataFrame(rows)
    df["tree_id"] = df["tree_id"].astype("Int64")
    bad = (df["model_id"] == 5) & (df["metric"] == "certified_linf_acc") & (df["param"] == 0.01)
    df.loc[bad, "value"] = 0.99  # a planted broken bracket (model 5 = a level-1 node of tree 10)
    return tag_rows(df, result), result


def test_rows_summary_and_violations_match_a_direct_computation():
    frame, _ = _frame()
    rows = bracket_rows(frame, "linf")
    assert sorted(rows["param"].unique()) == [0.0, 0.01, 0.02]
    for _, r in rows.sample(20, random_state=0).iterrows():
        assert r["attacked"] == min(r[m] for m in METRICS[1:])
        assert r["strong"] == min(r["apgd_linf_acc"], r["pgd_linf_acc"])
    refs = bracket_rows(_reference_rows(frame), "linf")
    summary = bracket_summary(refs)
    level1 = refs[(refs["series"] == "hierarchical level 1 (2 models)") & (refs["param"] == 0.02)]
    row = summary[(summary["series"] == "hierarchical level 1 (2 models)") & (summary["param"] == 0.02)].iloc[0]
    assert row["n"] == 4 and row["attacked"] == pytest.approx(level1["attacked"].mean())
    assert row["gap"] == pytest.approx(level1["attacked"].mean() - level1["certified"].mean())
    assert summary["violations"].sum() == 1
    assert summary.loc[(summary["series"] == "hierarchical level 1 (2 models)") & (summary["param"] == 0.01),
                       "violations"].item() == 1
    assert set(summary["series"]) == {"hierarchical level 1 (2 models)", "hierarchical level 2 (4 models)",
                                      "MergeMany", "L2-regularised"}


def test_paired_against_own_leaves_agrees_with_scipy():
    from scipy import stats as sps

    frame, _ = _frame(seed=3)
    rows = bracket_rows(frame, "linf")
    paired = paired_vs_leaves(rows, [0.01, 0.02])
    for series, level, method in (("hierarchical level 1 (2 models)", 1, "hierarchical"),
                                  ("MergeMany", 2, "merge_many")):
        for bound in ("certified", "attacked"):
            got = paired[(paired["series"] == series) & (paired["param"] == 0.02) & (paired["bound"] == bound)]
            assert len(got) == 1
            got = got.iloc[0]
            merged, leaves = [], []
            for pair, tree in ((0, 10), (1, 12)):
                at = rows[(rows["param"] == 0.02) & (rows["pair"] == pair)]
                leaves.append(at[(at["tree_id"] == tree) & (at["level"] == 0)][bound].mean())
                merged.append(at[(at["method"] == method) & (at["level"] == level)
                                 & (at["kind"] != "trained")][bound].mean())
            diff = np.array(merged) - np.array(leaves)
            assert got["n"] == 2 and got["mean_diff"] == pytest.approx(diff.mean(), abs=1e-12)
            assert got["t"] == pytest.approx(sps.ttest_rel(merged, leaves).statistic, abs=1e-9)
            assert got["t_p"] == pytest.approx(sps.ttest_rel(merged, leaves).pvalue, abs=1e-9)


def test_section_has_chart_tables_and_data_driven_text():
    frame, result = _frame()
    study = Study({"id": 1, "name": "x", "dataset": "fashion_mnist", "preset": "robust"}, result, frame)
    assert available(study.metrics, "linf") and not available(study.metrics, "l2")
    section = bracket_section(study, "linf")
    assert section.title == "Robustness bracket (L∞)" and section.chart["layer"][0]["mark"]["type"] == "area"
    assert set(section.tables) == {"bracket_linf", "bracket_linf_by_eps", "bracket_linf_vs_leaves"}
    assert "**1** (model, ε) pairs have certified above attacked" in section.text
    assert "vs its own leaves: attacked" in section.text and "2 tree(s)" in section.text
    from backend.report import section_titles

    assert "Robustness bracket (L∞)" in section_titles(study)
