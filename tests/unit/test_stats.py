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
