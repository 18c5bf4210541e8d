"""The comparison tables for screen and paper: mean ± std per group × level × metric from level rows, the
level × metric view Compare shows, and the wide table with unit headers that papers and exports use."""

from __future__ import annotations

import pandas as pd

from backend.labels import METRIC_TITLES, metric_label
from backend.levels import TABLE_COLUMNS, fold_leaves
from backend.metrics import ROWS


def comparison_table(df: pd.DataFrame, metrics=None) -> pd.DataFrame:
    """Mean, sample std and n per (group, level, metric, param): the numbers every chart draws.

    Tree leaves form one LEAVES group and each model counts once per group (n = distinct models), as in
    `level_summary(stat_members(...))`. Long format (one row per metric × param) so curve metrics need no wide columns and the table exports
    cleanly; `comparison_display` pivots it for reading. Refuses frames that mix evaluation configs.
    """
    if df.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    if "eval_key" in df.columns and df["eval_key"].nunique() > 1:
        raise ValueError("these rows mix several evaluation configs; filter them to one eval_key first")
    if metrics is not None:
        df = df[df["metric"].isin(list(metrics))]
    # the leaves of every tree are one group, and a model counts once per group (shared leaves)
    df = fold_leaves(df).drop_duplicates(["model_id", "group", "level", "metric", "param"])
    keys = ["group", "method", "zoo_kind", "level", "metric", "param"]
    grouped = df.assign(zoo_kind=df["zoo_kind"].fillna(""), param=df["param"].astype(float)).groupby(
        keys, dropna=False)["value"]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    out["zoo_kind"] = out["zoo_kind"].replace("", None)
    out["n"] = out["n"].astype(int)
    return out.sort_values(["group", "level", "metric", "param"]).reset_index(drop=True)[TABLE_COLUMNS]



def _mean_std(mean, std) -> str:
    """'0.8123 ± 0.012'; '∞' for a mean that is infinite (an attack's median size when a model's samples mostly
    survive the largest ε: its std is undefined)."""
    if mean == float("inf"):
        return "∞"
    return f"{mean:.4g}" if pd.isna(std) else f"{mean:.4g} ± {std:.2g}"


def comparison_display(table: pd.DataFrame) -> pd.DataFrame:
    """Level × metric view of a comparison table: cells read 'mean ± std', one column per metric@param."""
    if table.empty:
        return pd.DataFrame(columns=["group", "level", "n"])
    t = table.copy()
    t["column"] = [metric_label(m, p) for m, p in zip(t["metric"], t["param"], strict=True)]
    t["cell"] = [_mean_std(m, s) for m, s in zip(t["mean"], t["std"], strict=True)]
    order = list(dict.fromkeys(t.sort_values(["metric", "param"])["column"]))
    wide = t.pivot_table(index=["group", "level"], columns="column", values="cell", aggfunc="first")
    n = t.groupby(["group", "level"])["n"].max()
    wide = wide.reindex(columns=order)
    wide.insert(0, "n", n)
    return wide.reset_index()


# Table headers: units and parameter symbols from the metric catalogue (accuracies are shares in [0, 1]).
METRIC_UNITS = {name: row.header_unit for name, row in ROWS.items() if row.source == "evaluation"}
PARAM_NAMES = {name: row.header_param for name, row in ROWS.items() if row.curve or row.param_symbol}


def paper_header(metric: str, param) -> str:
    """'FGSM robust accuracy, ε = 0.01 [share]': a table column a reader needs no legend for."""
    title = METRIC_TITLES.get(metric, metric)
    if param is not None and not pd.isna(param):
        title += f", {PARAM_NAMES.get(metric, 'param')} = {float(param):g}"
    unit = METRIC_UNITS.get(metric)
    return f"{title} [{unit}]" if unit and unit not in title else title


def paper_table(table: pd.DataFrame) -> pd.DataFrame:
    """The wide table for a paper: one row per group × level, one column per metric (and parameter) with
    its unit in the header, cells 'mean ± std (n)' — what Compare's Table tab shows and downloads."""
    if table.empty:
        return pd.DataFrame(columns=["group", "level"])
    t = table.copy()
    t["column"] = [paper_header(m, p) for m, p in zip(t["metric"], t["param"], strict=True)]
    t["cell"] = [f"{_mean_std(m, s)} ({n})" for m, s, n in zip(t["mean"], t["std"], t["n"], strict=True)]
    order = list(dict.fromkeys(t.sort_values(["metric", "param"])["column"]))
    wide = t.pivot_table(index=["group", "level"], columns="column", values="cell", aggfunc="first")
    wide = wide.reindex(columns=order).reset_index()
    wide.columns.name = None
    return wide

