"""Altair chart builders: pure functions from a level_metrics frame to a chart (no Streamlit here).

Conventions so every chart reads the same at a glance: x is the merge level ("0 = unmerged") or the
attack/noise parameter in pixel units; colour encodes the merge level for curves and the group
(method or reference zoo) for per-level charts; reference zoos are dashed horizontal rules.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from backend.queries import CURVE_METRICS, METRIC_TITLES

LEVEL_TITLE = "Merge level (0 = unmerged)"
HEIGHT = 300


def _y(field: str, title: str, log: bool) -> alt.Y:
    return alt.Y(field, title=title, scale=alt.Scale(type="log" if log else "linear", zero=False))


def _positive(df: pd.DataFrame, log: bool) -> pd.DataFrame:
    """Log scales cannot show values <= 0; drop them rather than draw a broken chart."""
    return df[df["value"] > 0] if log else df


def _split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tree rows, reference-zoo rows)."""
    is_zoo = df["method"] == "zoo"
    return df[~is_zoo], df[is_zoo]


LEAVES = "unmerged leaves"


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Plain dtypes for Altair (nullable Int64 / NA confuse its encoder), and the leaves of every tree drawn
    once as one group: level 0 of a hierarchical tree and of a MergeMany over the same models is one set."""
    out = df.copy()
    leaves = (out["method"] != "zoo") & (out["level"].astype(int) == 0)
    out.loc[leaves, "group"] = LEAVES
    out = pd.concat([out[~leaves], out[leaves].drop_duplicates(["model_id", "metric", "param"])])
    out["level"] = out["level"].astype(int)
    out["param"] = out["param"].astype(float)
    out["tree_id"] = out["tree_id"].astype(object).where(out["tree_id"].notna(), None)
    return out


def empty_chart(message: str) -> alt.Chart:
    return alt.Chart(pd.DataFrame({"text": [message]})).mark_text(size=14, color="gray").encode(
        text="text:N").properties(height=60)


def level_chart(df: pd.DataFrame, metric: str, *, log: bool = False, y_title: str | None = None) -> alt.Chart:
    """One scalar metric per merge level: box + points per group, diamond = mean, dashed = reference zoos."""
    rows = _positive(_plain(df[df["metric"] == metric]), log)
    title = METRIC_TITLES.get(metric, metric)
    if rows.empty:
        return empty_chart(f"No {title.lower()} results for this selection")
    trees, zoos = _split(rows)
    y = _y("value:Q", y_title or title, log)
    color = alt.Color("group:N", title="Group", scale=alt.Scale(scheme="tableau10"))
    layers = []
    if not trees.empty:
        base = alt.Chart(trees).encode(x=alt.X("level:O", title=LEVEL_TITLE, axis=alt.Axis(labelAngle=0)),
                                       xOffset="group:N", color=color)
        layers += [
            base.mark_boxplot(size=14, opacity=0.5, extent="min-max").encode(y=y),
            base.mark_circle(size=28, opacity=0.8).encode(
                y=y, tooltip=["group:N", "level:O", "model_id:Q", alt.Tooltip("value:Q", format=".4g")]),
            base.mark_point(shape="diamond", size=90, filled=True, color="black").encode(
                y=alt.Y("mean(value):Q"), tooltip=["group:N", "level:O", alt.Tooltip("mean(value):Q", format=".4g")]),
        ]
    if not zoos.empty:
        layers.append(alt.Chart(zoos).mark_rule(strokeDash=[6, 4], size=2).encode(
            y=alt.Y("mean(value):Q", title=y_title or title), color=color,
            tooltip=["group:N", alt.Tooltip("mean(value):Q", format=".4g", title="mean")]))
    return alt.layer(*layers).properties(title=f"{title} per merge level", height=HEIGHT)


def curve_chart(df: pd.DataFrame, metric: str, *, log: bool = False) -> alt.Chart:
    """A robustness curve (value vs eps/sigma): one line per level and group, band = ±1 std over models."""
    rows = _positive(_plain(df[df["metric"] == metric]), log)
    title = METRIC_TITLES.get(metric, metric)
    if rows.empty:
        return empty_chart(f"No {title.lower()} results for this selection")
    rows["series"] = [g if m == "zoo" or g == LEAVES else f"{g} · L{lv}"
                      for m, lv, g in zip(rows["method"], rows["level"], rows["group"], strict=True)]
    rows["reference"] = rows["method"] == "zoo"
    x_title = CURVE_METRICS.get(metric, "parameter")
    x = alt.X("param:Q", title=x_title)
    y = _y("value:Q", f"{title} (share correct)", log)
    order = sorted(rows["series"].unique(), key=_series_order)
    color = alt.Color("series:N", title="Group · merge level", sort=order, scale=alt.Scale(scheme="tableau10"))
    dash = alt.StrokeDash("reference:N", legend=None, scale=alt.Scale(domain=[False, True],
                                                                     range=[[1, 0], [6, 4]]))
    base = alt.Chart(rows).encode(x=x, color=color)
    band = base.mark_errorband(extent="stdev", opacity=0.12).encode(y=y)
    line = base.mark_line(point=alt.OverlayMarkDef(size=25)).encode(
        y=alt.Y("mean(value):Q"), strokeDash=dash,
        tooltip=["series:N", "param:Q", alt.Tooltip("mean(value):Q", format=".4g", title="mean"),
                 alt.Tooltip("stdev(value):Q", format=".2g", title="std"), alt.Tooltip("count(value):Q", title="n")])
    return alt.layer(band, line).properties(title=f"{title} vs {x_title.split(' (')[0]}", height=HEIGHT)


def _series_order(label: str) -> tuple[int, str, int]:
    """Leaves first, then each method's levels in order, reference zoos last."""
    if label == LEAVES:
        return (0, "", 0)
    if " · L" in label:
        group, level = label.rsplit(" · L", 1)
        return (1, group, int(level))
    return (2, label, 0)


def method_chart(df: pd.DataFrame, metric: str, *, log: bool = False) -> alt.Chart:
    """Final models of each method for the same leaves (root of the tree, MergeMany, average) vs the leaves."""
    rows = _positive(_plain(df[df["metric"] == metric]), log)
    title = METRIC_TITLES.get(metric, metric)
    trees, _ = _split(rows)
    if trees.empty:
        return empty_chart(f"No merged {title.lower()} results for this selection")
    top = trees.groupby("tree_id")["level"].transform("max")
    finals = trees[(trees["level"] == top) & (trees["level"] > 0)].assign(what=lambda d: d["group"] + " (merged)")
    leaves = trees[trees["level"] == 0].drop_duplicates("model_id").assign(what="unmerged leaves")
    both = pd.concat([leaves, finals], ignore_index=True)
    y = _y("value:Q", title, log)
    base = alt.Chart(both).encode(x=alt.X("what:N", title=None, sort=None, axis=alt.Axis(labelAngle=0)),
                                  color=alt.Color("what:N", title="Model", legend=None))
    points = base.mark_circle(size=45, opacity=0.7).encode(
        y=y, tooltip=["what:N", "model_id:Q", alt.Tooltip("value:Q", format=".4g")])
    mean = base.mark_tick(thickness=3, size=30, color="black").encode(y=alt.Y("mean(value):Q"))
    return alt.layer(points, mean).properties(title=f"{title}: merge methods vs their leaves",
                                              height=HEIGHT)
