"""Statistics for the study: pure functions on tidy DataFrames read back from DuckDB.

Input frames are long format, one row per (model, metric, param) — the shape of
`backend.levels.level_metrics` — with whatever grouping columns the caller adds (`leaves`, `group`,
`pair`). Nothing here touches the store or holds results in memory between calls: the report reads the
rows, calls these functions, and draws what they return.

Uncertainty: percentile bootstrap of the mean (seeded, so a report is reproducible), paired tests for
hierarchical vs MergeMany on the same leaves (a paired design removes the leaf-to-leaf variance), and OLS
slopes with t-based confidence intervals for trends over tree levels.

Speed: a report summarises hundreds of groups (every series × level × eps). The bootstrap is
`scipy.stats.bootstrap` (percentile method), called once per group size on all groups of that size stacked
[G, n] (vectorised along the last axis), with a fresh `default_rng(seed)` per call: scipy draws one index
matrix `integers(0, n, (n_boot, n))` per call and applies it to every row, so a group's CI is the one a lone
call would give (to the last ulp or two: numpy may sum a stack's rows in another order) and does not depend on
the others. 600 groups of 2–16 values take 0.026 s this way (0.21 s with one call per group). Stacks are cut into chunks so that one call never
resamples more than MAX_RESAMPLED values (memory). The tests are scipy.stats' own (ttest_rel, linregress with
its t-based slope interval, wilcoxon); scipy.stats is imported when first used (about 1 s, once per process).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

N_BOOT = 2000
CI_LEVEL = 0.95
MIN_WILCOXON_N = 5  # below this the exact test cannot reach p < 0.05 (two-sided): not reported


def select(df: pd.DataFrame, metric: str, param: float | None = None) -> pd.DataFrame:
    """Rows of one metric (and one param when given; params compared with a tolerance for floats)."""
    if "metric" not in df.columns:
        raise ValueError("the frame has no 'metric' column; pass rows shaped like levels.level_metrics")
    rows = df[df["metric"] == metric]
    if param is not None:
        rows = rows[np.isclose(rows["param"].astype(float), float(param), rtol=0.0, atol=1e-9)]
    return rows


MAX_RESAMPLED = 4_000_000  # values one scipy.stats.bootstrap call may hold resampled (groups × n_boot × n)


def bootstrap_cis(groups: Sequence[np.ndarray], *, n_boot: int = N_BOOT, level: float = CI_LEVEL,
                  seed: int = 0) -> np.ndarray:
    """Percentile bootstrap CIs of the mean for many groups at once: [G, 2] (lo, hi).

    NaNs are dropped per group; one value gives (v, v), none gives (nan, nan). Each group is resampled
    exactly as a lone `bootstrap_ci(values, seed=seed)` would, so a group's CI does not depend on the
    others (up to float rounding; see the module docstring).
    """
    from scipy.stats import bootstrap

    out = np.full((len(groups), 2), math.nan)
    cleaned = [np.asarray(g, dtype=float) for g in groups]
    cleaned = [g[~np.isnan(g)] for g in cleaned]
    by_size: dict[int, list[int]] = {}
    for i, g in enumerate(cleaned):
        if g.size == 1:
            out[i] = g[0]
        elif g.size > 1:
            by_size.setdefault(g.size, []).append(i)
    for n, members in by_size.items():
        per_call = max(1, MAX_RESAMPLED // (n_boot * n))
        for start in range(0, len(members), per_call):
            chunk = members[start:start + per_call]
            result = bootstrap((np.stack([cleaned[i] for i in chunk]),), np.mean, axis=-1, vectorized=True,
                               n_resamples=n_boot, confidence_level=level, method="percentile",
                               rng=np.random.default_rng(seed))
            out[chunk, 0], out[chunk, 1] = result.confidence_interval.low, result.confidence_interval.high
    return out


def bootstrap_ci(values: Sequence[float], *, n_boot: int = N_BOOT, level: float = CI_LEVEL,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean; (v, v) for one value, (nan, nan) for none."""
    lo, hi = bootstrap_cis([np.asarray(values, dtype=float)], n_boot=n_boot, level=level, seed=seed)[0]
    return (float(lo), float(hi))


def summarize(df: pd.DataFrame, by: Sequence[str], *, value: str = "value", seed: int = 0) -> pd.DataFrame:
    """Per group: n, mean, std (ddof=1; 0 for a single model), bootstrap 95 % CI of the mean."""
    by = list(by)
    missing = [c for c in [*by, value] if c not in df.columns]
    if missing:
        raise ValueError(f"cannot summarise: the frame lacks the column(s) {', '.join(missing)}")
    columns = [*by, "n", "mean", "std", "ci_lo", "ci_hi"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    grouped = df.groupby(by, sort=True, dropna=False)
    keys = grouped.size().index  # groups in sorted order, the order ngroup() numbers them
    codes = grouped.ngroup().to_numpy()  # [rows]
    order = np.argsort(codes, kind="stable")
    values = df[value].astype(float).to_numpy()[order]  # [rows], grouped, original order within a group
    groups = np.split(values, np.cumsum(np.bincount(codes, minlength=len(keys)))[:-1])
    groups = [g[~np.isnan(g)] for g in groups]
    cis = bootstrap_cis(groups, seed=seed)  # [G, 2]
    out = keys.to_frame(index=False) if isinstance(keys, pd.MultiIndex) else pd.DataFrame({by[0]: keys})
    out["n"] = [int(g.size) for g in groups]
    out["mean"] = [float(g.mean()) if g.size else math.nan for g in groups]
    out["std"] = [float(g.std(ddof=1)) if g.size > 1 else 0.0 for g in groups]
    out["ci_lo"], out["ci_hi"] = cis[:, 0], cis[:, 1]
    return out[columns]


def level_summary(df: pd.DataFrame, metric: str, param: float | None = None, *,
                  by: Sequence[str] = ("leaves", "level"), seed: int = 0) -> pd.DataFrame:
    """Mean, std and bootstrap CI of one metric at every tree level (per tree size by default)."""
    return summarize(select(df, metric, param), by, seed=seed)


def robust_curves(df: pd.DataFrame, metric: str, *, by: Sequence[str] = ("group",),
                  seed: int = 0) -> pd.DataFrame:
    """Robust accuracy vs eps (or sigma) per group: one summary row per group × param."""
    return summarize(select(df, metric), [*by, "param"], seed=seed)


def paired_difference(df: pd.DataFrame, *, a: str = "hierarchical", b: str = "merge_many",
                      pair_col: str = "pair", method_col: str = "method", seed: int = 0) -> dict:
    """Paired comparison a − b over pairs that share leaves (one value per pair and method).

    Returns n, the two means, the mean difference with its bootstrap CI, the paired t-test (n ≥ 2 and
    differences not all equal) and the Wilcoxon signed-rank test (n ≥ 5 and some non-zero difference);
    tests that n does not allow are NaN, never guessed.
    """
    for col in (pair_col, method_col, "value"):
        if col not in df.columns:
            raise ValueError(f"cannot pair rows: the frame lacks the column '{col}'")
    rows = df[df[method_col].isin([a, b])]
    if rows.duplicated([pair_col, method_col]).any():
        raise ValueError(f"each {pair_col} needs exactly one '{a}' and one '{b}' value; found duplicates")
    wide = rows.pivot(index=pair_col, columns=method_col, values="value").dropna()
    n = len(wide)
    out = {"n": n, "mean_a": math.nan, "mean_b": math.nan, "mean_diff": math.nan, "std_diff": math.nan,
           "ci_lo": math.nan, "ci_hi": math.nan, "t": math.nan, "t_p": math.nan,
           "wilcoxon": math.nan, "wilcoxon_p": math.nan}
    if n == 0 or a not in wide.columns or b not in wide.columns:
        out["n"] = 0
        return out
    xa = wide[a].astype(float).to_numpy()
    xb = wide[b].astype(float).to_numpy()
    diff = xa - xb  # [n]
    lo, hi = bootstrap_ci(diff, seed=seed)
    out.update(mean_a=float(xa.mean()), mean_b=float(xb.mean()), mean_diff=float(diff.mean()),
               std_diff=float(diff.std(ddof=1)) if n > 1 else 0.0, ci_lo=lo, ci_hi=hi)
    from scipy import stats as sps

    if n >= 2 and np.ptp(diff) > 0:
        test = sps.ttest_rel(xa, xb)  # two-sided
        out.update(t=float(test.statistic), t_p=float(test.pvalue))
    if n >= MIN_WILCOXON_N and np.any(diff != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns about ties/zeros; the result is still defined
            w = sps.wilcoxon(xa, xb)
        out.update(wilcoxon=float(w.statistic), wilcoxon_p=float(w.pvalue))
    return out


def paired_table(df: pd.DataFrame, metrics: Sequence[tuple[str, float | None]], *,
                 by: Sequence[str] = ("leaves",), a: str = "hierarchical", b: str = "merge_many",
                 seed: int = 0) -> pd.DataFrame:
    """`paired_difference` for each metric (and param) and each group of `by` (e.g. 4 and 8 leaves)."""
    return _per_metric_and_group(df, metrics, by, lambda part, metric, param: {
        "metric": metric, "param": param, **paired_difference(part, a=a, b=b, seed=seed)})


def trend(df: pd.DataFrame, metric: str, param: float | None = None, *, x: str = "level",
          level: float = CI_LEVEL) -> dict:
    """OLS slope of a metric against tree level over all models, with a t-based CI (linregress)."""
    rows = select(df, metric, param)[[x, "value"]].dropna()
    n = len(rows)
    out = {"metric": metric, "param": param, "n": n, "slope": math.nan, "intercept": math.nan,
           "slope_lo": math.nan, "slope_hi": math.nan, "r": math.nan, "p": math.nan}
    xs = rows[x].astype(float).to_numpy()
    if n < 3 or np.ptp(xs) == 0:
        return out  # a line through two points has no uncertainty estimate; say nothing rather than lie
    from scipy import stats as sps

    fit = sps.linregress(xs, rows["value"].astype(float).to_numpy())
    half = float(sps.t.ppf(0.5 + level / 2.0, n - 2) * fit.stderr)
    out.update(slope=float(fit.slope), intercept=float(fit.intercept), slope_lo=float(fit.slope) - half,
               slope_hi=float(fit.slope) + half, r=float(fit.rvalue), p=float(fit.pvalue))
    return out


def trend_table(df: pd.DataFrame, metrics: Sequence[tuple[str, float | None]], *,
                by: Sequence[str] = ("leaves",)) -> pd.DataFrame:
    """`trend` for each metric and each group of `by`."""
    return _per_metric_and_group(df, metrics, by, trend)


def _per_metric_and_group(df: pd.DataFrame, metrics: Sequence[tuple[str, float | None]],
                          by: Sequence[str], row) -> pd.DataFrame:
    """One row per (metric, param) × group of `by`: the group's keys, then `row(part, metric, param)`."""
    out = []
    for metric, param in metrics:
        rows = select(df, metric, param)
        groups = rows.groupby(list(by), sort=True) if by else [((), rows)]
        for key, part in groups:
            key = key if isinstance(key, tuple) else (key,)
            out.append({**dict(zip(by, key, strict=True)), **row(part, metric, param)})
    return pd.DataFrame(out)
