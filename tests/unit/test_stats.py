"""backend.stats against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backend import stats


def _rows(values, **cols):
    return pd.DataFrame({"metric": "accuracy", "param": None, "value": values, **cols})


def test_summarize_mean_std_by_level():
    df = _rows([0.8, 0.9, 1.0, 0.5], leaves=4, level=[0, 0, 0, 1])
    out = stats.level_summary(df, "accuracy").set_index("level")
    assert out.loc[0, "n"] == 3
    assert out.loc[0, "mean"] == pytest.approx(0.9)
    assert out.loc[0, "std"] == pytest.approx(0.1)  # sqrt(((-.1)^2 + 0 + .1^2) / 2)
    assert out.loc[1, "n"] == 1 and out.loc[1, "std"] == 0.0
    assert out.loc[1, "ci_lo"] == out.loc[1, "ci_hi"] == pytest.approx(0.5)


def test_bootstrap_ci_contains_mean_and_is_deterministic():
    vals = [0.1, 0.4, 0.35, 0.8, 0.6, 0.2, 0.55]
    lo, hi = stats.bootstrap_ci(vals, seed=3)
    assert lo < np.mean(vals) < hi
    assert (lo, hi) == stats.bootstrap_ci(vals, seed=3)
    assert (lo, hi) != stats.bootstrap_ci(vals, seed=4)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([]))


def test_paired_difference_known_t_statistic():
    # differences a − b = 1, 2, 3, 4: mean 2.5, sd sqrt(5/3), t = 2.5 / (sd / 2) = 3.8730
    a = [10.0, 12.0, 13.0, 15.0]
    b = [9.0, 10.0, 10.0, 11.0]
    df = pd.DataFrame({"pair": [0, 1, 2, 3] * 2, "method": ["hierarchical"] * 4 + ["merge_many"] * 4,
                       "value": a + b})
    res = stats.paired_difference(df)
    assert res["n"] == 4
    assert res["mean_diff"] == pytest.approx(2.5)
    assert res["std_diff"] == pytest.approx(math.sqrt(5 / 3))
    assert res["t"] == pytest.approx(2.5 / (math.sqrt(5 / 3) / 2))
    assert res["ci_lo"] <= 2.5 <= res["ci_hi"]
    assert math.isnan(res["wilcoxon"])  # n = 4 < 5: not reported


def test_paired_difference_wilcoxon_when_n_allows():
    diffs = [1.0, -0.5, 2.0, 3.0, 4.0, 2.5]
    df = pd.DataFrame({"pair": list(range(6)) * 2, "method": ["hierarchical"] * 6 + ["merge_many"] * 6,
                       "value": diffs + [0.0] * 6})
    res = stats.paired_difference(df)
    # ranks of |d|: .5->1, 1->2, 2->3, 2.5->4, 3->5, 4->6; negative ranks sum to 1 -> W = min(1, 20) = 1
    assert res["wilcoxon"] == pytest.approx(1.0)
    assert 0 < res["wilcoxon_p"] < 0.1


def test_paired_difference_rejects_duplicates():
    df = pd.DataFrame({"pair": [0, 0, 0], "method": ["hierarchical", "hierarchical", "merge_many"],
                       "value": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="exactly one"):
        stats.paired_difference(df)


def test_trend_slope_known_answer():
    # x = 0, 1, 2; y = 1, 2, 4: Sxy = 3, Sxx = 2 -> slope 1.5, intercept 7/3 - 1.5 = 5/6
    df = _rows([1.0, 2.0, 4.0], level=[0, 1, 2])
    res = stats.trend(df, "accuracy")
    assert res["slope"] == pytest.approx(1.5)
    assert res["intercept"] == pytest.approx(5 / 6)
    assert res["slope_lo"] < 1.5 < res["slope_hi"]
    exact = stats.trend(_rows([1.0, 3.0, 5.0, 7.0], level=[0, 1, 2, 3]), "accuracy")
    assert exact["slope"] == pytest.approx(2.0) and exact["slope_hi"] - exact["slope_lo"] == pytest.approx(0.0)
    assert math.isnan(stats.trend(_rows([1.0, 2.0], level=[0, 1]), "accuracy")["slope"])


def test_robust_curves_and_tables_group_by_param():
    df = pd.DataFrame({"metric": "fgsm_acc", "group": ["L1", "L1", "L2", "L2"], "param": [0.0, 0.01, 0.0, 0.01],
                       "value": [0.9, 0.5, 0.8, 0.4]})
    out = stats.robust_curves(df, "fgsm_acc")
    assert list(out["group"]) == ["L1", "L1", "L2", "L2"]
    assert list(out["mean"]) == pytest.approx([0.9, 0.5, 0.8, 0.4])
    assert len(stats.select(df, "fgsm_acc", 0.01)) == 2
    pairs = pd.DataFrame({"metric": "accuracy", "param": None, "leaves": [4] * 4 + [8] * 2,
                          "pair": [0, 1, 0, 1, 2, 2],
                          "method": ["hierarchical", "hierarchical", "merge_many", "merge_many",
                                     "hierarchical", "merge_many"],
                          "value": [0.7, 0.6, 0.5, 0.5, 0.4, 0.45]})
    table = stats.paired_table(pairs, [("accuracy", None)]).set_index("leaves")
    assert table.loc[4, "n"] == 2 and table.loc[4, "mean_diff"] == pytest.approx(0.15)
    assert table.loc[8, "n"] == 1 and table.loc[8, "mean_diff"] == pytest.approx(-0.05)


def _bootstrap_ci_reference(values, n_boot=stats.N_BOOT, level=stats.CI_LEVEL, seed=0):
    """The original one-group bootstrap: gather the resamples, mean each row."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (math.nan, math.nan)
    if x.size == 1:
        return (float(x[0]), float(x[0]))
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_boot, x.size))
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(x[idx].mean(axis=1), [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def test_vectorised_bootstrap_matches_one_group_at_a_time():
    rng = np.random.default_rng(7)
    groups = [rng.normal(size=n) for n in (5, 5, 12, 1, 0, 40, 12)] + [np.array([0.3, np.nan, 0.5, 0.9])]
    cis = stats.bootstrap_cis(groups, seed=2)
    for g, (lo, hi) in zip(groups, cis, strict=True):
        ref = _bootstrap_ci_reference(g, seed=2)
        if math.isnan(ref[0]):
            assert math.isnan(lo) and math.isnan(hi)
        else:
            assert lo == pytest.approx(ref[0], abs=1e-12) and hi == pytest.approx(ref[1], abs=1e-12)
    # a group's CI ignores the others (same resamples; only numpy's summation order may differ, by an ulp)
    assert stats.bootstrap_ci(groups[2], seed=2) == pytest.approx(tuple(cis[2]), abs=1e-15)


def test_summarize_matches_groupwise_reference():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"series": rng.choice(["a", "b", "c"], 300), "level": rng.integers(0, 3, 300),
                       "value": rng.normal(size=300)})
    df.loc[::17, "value"] = np.nan
    df.loc[df["series"] == "c", "level"] = 9  # a group of its own
    out = stats.summarize(df, ["series", "level"], seed=1)
    rows = list(df.groupby(["series", "level"], sort=True))
    assert len(out) == len(rows)
    for (key, part), got in zip(rows, out.itertuples(index=False), strict=True):
        vals = part["value"].dropna().to_numpy()
        assert (got.series, got.level) == key and got.n == vals.size
        assert got.mean == vals.mean() and got.std == (vals.std(ddof=1) if vals.size > 1 else 0.0)
        lo, hi = _bootstrap_ci_reference(vals, seed=1)
        assert got.ci_lo == pytest.approx(lo, abs=1e-12) and got.ci_hi == pytest.approx(hi, abs=1e-12)


def test_trend_and_t_test_agree_with_scipy():
    from scipy import stats as sps

    rng = np.random.default_rng(5)
    for n in (3, 4, 9, 30):
        x = np.arange(n) % 4.0
        y = rng.normal(size=n) + 0.3 * x
        res = stats.trend(pd.DataFrame({"metric": "m", "param": None, "level": x, "value": y}), "m")
        fit = sps.linregress(x, y)
        half = sps.t.ppf(0.975, n - 2) * fit.stderr
        assert res["slope"] == pytest.approx(fit.slope, abs=1e-12)
        assert res["intercept"] == pytest.approx(fit.intercept, abs=1e-12)
        assert res["r"] == pytest.approx(fit.rvalue, abs=1e-12) and res["p"] == pytest.approx(fit.pvalue, abs=1e-12)
        assert res["slope_hi"] == pytest.approx(fit.slope + half, abs=1e-12)
        a, b = rng.normal(size=n), rng.normal(size=n)
        pairs = pd.DataFrame({"pair": list(range(n)) * 2, "method": ["hierarchical"] * n + ["merge_many"] * n,
                              "value": [*a, *b]})
        paired, t = stats.paired_difference(pairs), sps.ttest_rel(a, b)
        assert paired["t"] == pytest.approx(t.statistic, abs=1e-12)
        assert paired["t_p"] == pytest.approx(t.pvalue, abs=1e-12)


def _study_frame_rowwise(df, result):
    """The original row-by-row tagging of backend.report.study_frame."""
    from backend.merge.registry import method_short
    from backend.report import ZOO_LABELS

    df = df.copy()
    tree_info = {int(t): (g["pair"], g["leaves"]) for g in result["groups"] for t in g["trees"].values()}
    df["pair"] = [tree_info.get(int(t), (pd.NA, pd.NA))[0] if pd.notna(t) else pd.NA for t in df["tree_id"]]
    df["leaves"] = [tree_info.get(int(t), (pd.NA, pd.NA))[1] if pd.notna(t) else pd.NA for t in df["tree_id"]]

    def label(method, level, zoo_kind):
        if method == "zoo":
            return ZOO_LABELS.get(zoo_kind, str(zoo_kind))
        if method == "hierarchical":
            return "unmerged (leaves)" if level == 0 else f"hierarchical level {level} ({2 ** level} models)"
        return method_short(method)

    df["series"] = [label(m, lv, z) for m, lv, z in zip(df["method"], df["level"], df["zoo_kind"], strict=True)]
    df["level"] = df["level"].astype(int)
    return df


def test_vectorised_study_tagging_equals_rowwise():
    from backend.report import tag_rows

    df = pd.DataFrame({
        "model_id": [1, 2, 3, 4, 5, 6, 7, 8],
        "tree_id": pd.array([10, 10, 10, 11, 12, 99, None, None], dtype="Int64"),
        "method": ["hierarchical", "hierarchical", "hierarchical", "merge_many", "average", "hierarchical",
                   "zoo", "zoo"],
        "level": [0, 1, 2, 2, 2, 1, 0, 0], "kind": ["trained", "hierarchical", "hierarchical", "merge_many",
                                                    "average", "hierarchical", "trained", "trained"],
        "zoo_kind": ["plain", "plain", "plain", None, "plain", "l1", "l2", None],
        "metric": "accuracy", "param": np.nan, "value": np.linspace(0.5, 0.9, 8)})
    result = {"groups": [{"pair": 0, "leaves": 4, "trees": {"hierarchical": 10, "merge_many": 11, "average": 12}}]}
    new, old = tag_rows(df, result), _study_frame_rowwise(df, result)
    assert list(new.columns) == list(old.columns)
    pd.testing.assert_frame_equal(new.astype(object).where(new.notna(), None),
                                  old.astype(object).where(old.notna(), None), check_dtype=False)
    assert list(new["series"])[:7] == ["unmerged (leaves)", "hierarchical level 1 (2 models)",
                                   "hierarchical level 2 (4 models)", "MergeMany", "naive average",
                                   "hierarchical level 1 (2 models)", "L2-regularised"]
    assert "pair" not in df.columns  # the input is not modified
