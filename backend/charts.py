"""Chart builders: pure functions from small, pre-aggregated frames to Vega-Lite specs (no Streamlit here).

Inputs are `backend.levels.level_summary` rows (group, method, level, metric, param, mean, std, n — one
per point drawn, aggregated in DuckDB) and, for scatter layers, `level_points` rows (one per model, trees
only: a few dozen). Vega never receives thousands of raw rows to aggregate.

Why plain Vega-Lite dicts and not Altair objects: building and validating an Altair layer chart costs
~100 ms on this 2-core machine (jsonschema validation of every channel), which put Compare over its 1 s
render budget; a dict costs microseconds and renders identically with `st.vega_lite_chart(spec)`.
Datasets ride along as DataFrames under "datasets" (Streamlit ships them as Arrow).

Conventions so every chart reads the same at a glance: x is the merge level ("0 = unmerged") or the
attack/noise parameter in pixel units; the legend names the group (method or reference zoo) and, for
curves, the merge level; reference zoos are dashed; bands are ±1 std over models, drawn under the lines
and left out of the legend so its swatches show the line colours at full strength.
"""

from __future__ import annotations

import pandas as pd

from backend import colors, metrics
from backend.levels import LEAVES, is_leaves_group

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
LEVEL_TITLE = "Merge level (0 = unmerged)"
HEIGHT = 280
PADDING = {"top": 14, "left": 6, "right": 6, "bottom": 6}  # room for the title: never clipped at the top
# Fill the column's width but keep HEIGHT for the plot itself: with Vega's default "fit" in a stretched
# Streamlit chart, title, axis and a bottom legend share HEIGHT and squash the plot (and clip the title).
AUTOSIZE = {"type": "fit-x", "contains": "padding"}

# Curve chart titles, written once so the x-axis name is not repeated ("… noise vs Gaussian noise σ").
CURVE_TITLES = {name: metrics.ROWS[name].curve_title for name in metrics.CURVE_ROWS}
PALETTE = colors.PALETTE  # one fixed colour per group, shared with the report (backend/colors.py)


def axis_title(metric: str) -> str:
    """Axis title with units, never the same words twice (the weight norm's title already holds its formula)."""
    title, unit = metrics.title(metric), metrics.unit(metric)
    return title if unit in title else f"{title} · {unit}"


def interactive(field: str, *, zoom: bool) -> list[dict]:
    """Click a legend entry to isolate its series (shift-click adds more; double-click resets); with `zoom`,
    drag to pan and scroll to zoom."""
    params = [{"name": "pick", "select": {"type": "point", "fields": [field]}, "bind": "legend"}]
    if zoom:
        params.append({"name": "zoom", "select": "interval", "bind": "scales"})
    return params


def dimmed(opacity: float = 1.0, faded: float = 0.08) -> dict:
    """An opacity channel: full `opacity` for the series picked in the legend (all when none), `faded` else."""
    return {"opacity": {"condition": {"param": "pick", "value": opacity, "empty": True}, "value": faded}}


def _chart(title: str, subtitle: str, layers: list[dict], datasets: dict[str, pd.DataFrame]) -> dict:
    return {"$schema": SCHEMA, "height": HEIGHT, "padding": PADDING, "autosize": AUTOSIZE, "datasets": datasets,
            "layer": layers,
            "title": {"text": title, "subtitle": subtitle, "anchor": "start", "fontSize": 14, "offset": 8,
                      "subtitleColor": "#666"}}


LABEL_PX = 6.2  # an upper estimate of one character of Vega's 10 px legend labels
ENTRY_PX = 30  # a legend entry's symbol, gap and column padding
HALF_ROW_PX = 240  # Compare draws a chart on its own row when one legend entry needs more than this


def legend(title: str | None, labels, symbol: str = "stroke") -> dict:
    """A legend under the plot that is never cut off: a bottom legend starts at the plot's left edge and
    whatever runs past the chart's frame is clipped, so it takes two columns only where both fit under the
    plot (`width` is the plot's width once Vega has fitted the chart to its column) and no label is wider
    than the plot."""
    entry = legend_entry_px(labels)
    return {"title": title, "orient": "bottom", "symbolOpacity": 1, "symbolStrokeWidth": 3, "symbolType": symbol,
            "columns": {"expr": f"width >= {2 * entry} ? 2 : 1"}, "columnPadding": 10,
            "labelLimit": {"expr": f"max(60, width - {ENTRY_PX})"},
            # on a plot narrower than its longest entry, a label breaks into lines at its " · " parts
            "labelExpr": f"width < {entry} ? split(datum.label, ' · ') : datum.label"}


def legend_entry_px(labels) -> int:
    """Estimated pixel width of the widest entry of a legend listing `labels`."""
    return int(max((len(str(label)) for label in labels), default=8) * LABEL_PX) + ENTRY_PX


def wants_full_row(spec: dict) -> bool:
    """Whether a chart's legend entries are too wide for half of Compare's page (see HALF_ROW_PX)."""
    return spec.get("usermeta", {}).get("legend_px", 0) > HALF_ROW_PX


def _with_legend_size(spec: dict, labels) -> dict:
    spec["usermeta"] = {"legend_px": legend_entry_px(labels)}
    return spec


def _scale(log: bool, zero: bool = False) -> dict:
    """y scale: fitted to the data (naive averaging at chance must not squash 0.80–0.88 into the top tenth);
    `zero` starts it at 0 instead (never on a log scale)."""
    return {"type": "log" if log else "linear", "zero": bool(zero) and not log}


def _colors(order: list[str]) -> dict:
    return colors.color_scale(order)


def _positive(df: pd.DataFrame, column: str, log: bool) -> pd.DataFrame:
    """Log scales cannot show values <= 0; drop them rather than draw a broken chart."""
    return df[df[column] > 0] if log else df


def _finite(df: pd.DataFrame, column: str) -> tuple[pd.DataFrame, int]:
    """Rows whose `column` is a finite number (or missing), and how many were ±∞. An attack's median size is
    +∞ for a model most of whose samples no attack fooled within the ε grid, and so is the mean of a group
    holding such a model: a chart cannot place ∞ (a file would drop it silently, the page would stretch the
    axis to infinity), so it is left out and the subtitle says how many."""
    values = pd.to_numeric(df[column], errors="coerce")
    infinite = values.abs() == float("inf")
    return df[~infinite], int(infinite.sum())


def _infinite_note(n_means: int, n_models: int) -> str:
    if not (n_means or n_models):
        return ""
    parts = [f"{n} {what}{'' if n == 1 else 's'}" for n, what in ((n_models, "model"), (n_means, "group mean")) if n]
    return f" · ∞ (not fooled within the ε grid), not drawn: {' and '.join(parts)}"


def _with_band(rows: pd.DataFrame, log: bool) -> pd.DataFrame:
    std = rows["std"].astype(float).fillna(0.0)
    out = rows.assign(lo=rows["mean"] - std, hi=rows["mean"] + std)
    return out.assign(lo=out["lo"].where(out["lo"] > 0, out["mean"])) if log else out


def _data(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Only the columns a chart uses, with plain dtypes (nullable Int64 / NA confuse the encoder)."""
    out = df[columns].copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.Int64Dtype):
            out[col] = out[col].astype("float64")
    return out.reset_index(drop=True)


def group_order(groups) -> list[str]:
    """Leaves first, then merge methods, then reference zoos (so colours stay put across charts)."""
    def rank(g: str) -> tuple[int, str]:
        return (0, g) if is_leaves_group(g) else ((2, g) if g.split(" · ")[0].endswith("zoo") else (1, g))

    return sorted(set(groups), key=rank)


def series_order(labels) -> list[str]:
    """Leaves first, then each method's levels in order, reference zoos last."""
    def rank(label: str) -> tuple[int, str, int]:
        if is_leaves_group(label):
            return (0, label, 0)
        if " · level " in label and label.rsplit(" · level ", 1)[1].isdigit():
            group, level = label.rsplit(" · level ", 1)
            return (1, group, int(level))
        return (2, label, 0)

    return sorted(set(labels), key=rank)


def empty_chart(message: str) -> dict:
    return {"$schema": SCHEMA, "height": 60, "autosize": AUTOSIZE, "data": {"values": [{"text": message}]},
            "mark": {"type": "text", "size": 14, "color": "gray"}, "encoding": {"text": {"field": "text"}}}


def level_chart(summary: pd.DataFrame, points: pd.DataFrame, metric: str, *, log: bool = False, zero: bool = False) -> dict:
    """One scalar metric per merge level: a dot per model, mean ± 1 std per group, dashed = reference zoos."""
    title = metrics.title(metric)
    rows, infinite_means = _finite(summary[summary["metric"] == metric], "mean")
    rows = _positive(rows, "mean", log)
    pts, infinite_models = _finite(points[(points["metric"] == metric) & (points["method"] != "zoo")], "value")
    pts = _positive(pts, "value", log)
    note = _infinite_note(infinite_means, infinite_models)
    if rows.empty:
        return empty_chart(f"No {title.lower()} results for this selection" + note.replace(" · ", ": ", 1))
    rows = _with_band(rows, log)
    merged, zoos = rows[rows["method"] != "zoo"], rows[rows["method"] == "zoo"]
    order = group_order(rows["group"])
    color = {"field": "group", "type": "nominal", "scale": _colors(order), "legend": legend("Group", order, "circle")}
    merged_order = [g for g in order if g in set(merged["group"])]
    y_title = axis_title(metric)
    x = {"field": "level", "type": "ordinal", "title": LEVEL_TITLE, "axis": {"labelAngle": 0}}
    offset = {"field": "group", "type": "nominal", "sort": merged_order, "scale": {"paddingOuter": 0.2}}
    stats_tip = [{"field": "group"}, {"field": "level", "title": "level"},
                 {"field": "mean", "format": ".4g"}, {"field": "std", "format": ".2g"}, {"field": "n"}]
    layers, datasets = [], {}
    if not merged.empty:
        datasets["merged"] = _data(merged, ["group", "level", "mean", "std", "n", "lo", "hi"])
        if not pts.empty:
            datasets["points"] = _data(pts, ["group", "level", "model_id", "value"])
            layers.append({"data": {"name": "points"}, "mark": {"type": "circle", "size": 22},
                           "encoding": {"x": x, "xOffset": offset, "color": color, **dimmed(0.45),
                                        "y": {"field": "value", "type": "quantitative", "scale": _scale(log, zero),
                                              "title": y_title},
                                        "tooltip": [{"field": "group"}, {"field": "level"}, {"field": "model_id"},
                                                    {"field": "value", "format": ".4g"}]}})
        layers += [
            {"data": {"name": "merged"}, "mark": {"type": "rule", "strokeWidth": 2},
             "encoding": {"x": x, "xOffset": offset, "color": color, **dimmed(),
                          "y": {"field": "lo", "type": "quantitative", "scale": _scale(log, zero), "title": y_title},
                          "y2": {"field": "hi"}}},
            {"data": {"name": "merged"}, "mark": {"type": "point", "shape": "diamond", "size": 80, "filled": True},
             "params": interactive("group", zoom=False),
             "encoding": {"x": x, "xOffset": offset, "color": color, "tooltip": stats_tip, **dimmed(),
                          "y": {"field": "mean", "type": "quantitative", "scale": _scale(log, zero), "title": y_title}}},
        ]
    if not zoos.empty:
        datasets["zoos"] = _data(zoos, ["group", "level", "mean", "std", "n"])
        zoo_layer = {"data": {"name": "zoos"}, "mark": {"type": "rule", "strokeDash": [6, 4], "strokeWidth": 2},
                     "encoding": {"color": color, "tooltip": stats_tip,
                                  "y": {"field": "mean", "type": "quantitative", "scale": _scale(log, zero),
                                        "title": y_title}}}
        if merged.empty:
            zoo_layer["params"] = interactive("group", zoom=False)
        zoo_layer["encoding"].update(dimmed())
        layers.append(zoo_layer)
    return _with_legend_size(_chart(f"{title} per merge level",
                                    "dots: models · diamond and bar: mean ± 1 std · dashed: zoo mean" + note, layers,
                                    datasets),
                             order)


def _series(rows: pd.DataFrame) -> list[str]:
    return [g if m in ("zoo", "leaves") or is_leaves_group(g) else f"{g} · level {lv}"
            for m, lv, g in zip(rows["method"], rows["level"], rows["group"], strict=True)]


def curve_chart(summary: pd.DataFrame, metric: str, *, log: bool = False, zero: bool = False,
                models: pd.DataFrame | None = None) -> dict:
    """A robustness curve (accuracy vs ε or σ): one line per group and merge level, band = ±1 std; with
    `models` (level_points rows), every tree model's own curve as a thin line in its series' colour."""
    title = metrics.title(metric)
    rows = _positive(summary[summary["metric"] == metric], "mean", log)
    if rows.empty:
        return empty_chart(f"No {title.lower()} results for this selection")
    rows = _with_band(rows, log).assign(series=lambda d: _series(d), reference=lambda d: d["method"] == "zoo")
    x_title = metrics.axis(metric)
    order = series_order(rows["series"])
    x = {"field": "param", "type": "quantitative", "title": x_title}
    y_title = f"{title} · {metrics.unit(metric)}"
    band = {"mark": {"type": "area"},
            "encoding": {"x": x, **dimmed(0.12, 0.0), "y": {"field": "lo", "type": "quantitative", "scale": _scale(log, zero), "title": y_title},
                         "y2": {"field": "hi"},
                         "fill": {"field": "band", "type": "nominal", "scale": _colors(order), "legend": None}}}
    line = {"mark": {"type": "line", "strokeWidth": 2, "point": {"size": 28, "filled": True}},
            "params": interactive("series", zoom=True),
            "encoding": {"x": x, **dimmed(), "y": {"field": "mean", "type": "quantitative", "scale": _scale(log, zero),
                                       "title": y_title},
                         "color": {"field": "series", "type": "nominal", "scale": _colors(order),
                                   "legend": legend("Group · merge level", order)},
                         "strokeDash": {"field": "reference", "type": "nominal", "legend": None,
                                        "scale": {"domain": [False, True], "range": [[1, 0], [6, 4]]}},
                         "tooltip": [{"field": "series"}, {"field": "param", "title": x_title.split(" (")[0]},
                                     {"field": "mean", "format": ".4g"}, {"field": "std", "format": ".2g"},
                                     {"field": "n"}]}}
    # the band colours by a copy of the series column: Vega-Lite merges same-field color/fill legends, and
    # the band's (hidden, translucent) legend would hide or fade the lines' swatches
    data = _data(rows.assign(band=rows["series"]), ["series", "band", "reference", "param", "mean", "std", "n",
                                                     "lo", "hi"])
    layers, datasets, subtitle = [band, line], {"curve": data}, "line: mean over models · band: ±1 std"
    own = _model_curves(models, metric, log, set(order))
    if not own.empty:
        datasets["models"] = own
        layers.insert(1, {"data": {"name": "models"}, "mark": {"type": "line", "strokeWidth": 0.8},
                          "encoding": {"x": x, **dimmed(0.35, 0.03), "detail": {"field": "model_id", "type": "nominal"},
                                       "y": {"field": "value", "type": "quantitative", "scale": _scale(log, zero),
                                             "title": y_title},
                                       "color": {"field": "series", "type": "nominal", "scale": _colors(order),
                                                 "legend": None},
                                       "tooltip": [{"field": "series"}, {"field": "model_id"},
                                                   {"field": "param", "title": x_title.split(" (")[0]},
                                                   {"field": "value", "format": ".4g"}]}})
        subtitle += " · thin lines: individual models"
    spec = _chart(CURVE_TITLES.get(metric, f"{title} vs {x_title.split(' (')[0]}"),
                  subtitle + " · dashed: reference zoos", layers, {})
    spec["data"] = {"name": "curve"}
    spec["datasets"] = datasets
    spec["resolve"] = {"legend": {"fill": "independent", "color": "independent"}}  # band's null can't hide it
    return _with_legend_size(spec, order)


def _model_curves(models: pd.DataFrame | None, metric: str, log: bool, series: set[str]) -> pd.DataFrame:
    """One row per (tree model, parameter) of `metric`, labelled with the series its mean line belongs to."""
    if models is None or models.empty:
        return pd.DataFrame()
    rows = _positive(models[(models["metric"] == metric) & (models["method"] != "zoo")], "value", log)
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(series=_series(rows))
    rows = rows[rows["series"].isin(series)]
    return _data(rows.sort_values(["model_id", "param"]), ["series", "model_id", "param", "value"])


def metric_chart(summary: pd.DataFrame, points: pd.DataFrame | None, metric: str, *, log: bool = False,
                 zero: bool = False, models: bool = False) -> dict:
    """The chart Compare draws for one stored row: per level for a scalar, a curve over its grid otherwise
    (with `models`, each tree model's own curve from `points`)."""
    if metric in metrics.SCALAR_ROWS:
        return level_chart(summary, points, metric, log=log, zero=zero)
    return curve_chart(summary, metric, log=log, zero=zero, models=points if models else None)


def compare_figures(summary: pd.DataFrame, points: pd.DataFrame, *, log: bool = False, zero: bool = False,
                    models: bool = False) -> dict[str, dict]:
    """Every chart Compare can draw for a selection, by file stem: one per stored row (catalogue order), the
    robustness brackets where certified accuracy was measured, and the merge-method chart per scalar."""
    present = set(summary["metric"])
    out = {name: metric_chart(summary, points, name, log=log, zero=zero, models=models)
           for name in (*metrics.SCALAR_ROWS, *metrics.CURVE_ROWS) if name in present}
    for norm in BRACKET_NORMS:
        if bracket_rows(norm)[1] in present:
            out[f"bracket-{norm}"] = bracket_chart(summary, norm)
    merged = points[points["method"] != "zoo"] if not points.empty else points
    for name in metrics.SCALAR_ROWS:
        if not merged.empty and name in set(merged["metric"]) and (merged["level"] > 0).any():
            out[f"methods-{name}"] = method_chart(points, name, log=log, zero=zero)
    return out


BRACKET_NORMS = {"linf": "L∞", "l2": "L2"}  # a bracket per norm; its rows come from the metric catalogue


def bracket_rows(norm: str) -> tuple[list[str], str]:
    """(attack rows: upper bounds, certified row: the lower bound) of one norm, from the catalogue's `bound`."""
    label = BRACKET_NORMS[norm]
    rows = [(name, row) for name, row in metrics.ROWS.items() if row.bound and row.norm == label]
    return [n for n, r in rows if r.bound == "upper"], next(n for n, r in rows if r.bound == "lower")


def bracket_frame(summary: pd.DataFrame, norm: str) -> pd.DataFrame:
    """Per series and ε: certified (lower) and attacked (upper: the lowest mean robust accuracy of any attack
    measured, each being an upper bound) accuracy, FGSM/DeepFool for reference, and the robust/clean ratio."""
    upper, cert = bracket_rows(norm)
    attacks = [m for m in upper if m in set(summary["metric"])]
    rows = summary[summary["metric"].isin([*attacks, cert])]
    if rows.empty or cert not in set(rows["metric"]) or not attacks:
        return pd.DataFrame(columns=["series", "param", "certified", "attacked", "ratio"])
    rows = rows.assign(series=_series(rows))
    wide = rows.pivot_table(index=["series", "param"], columns="metric", values="mean", aggfunc="mean")
    out = pd.DataFrame({"certified": wide[cert], "attacked": wide[attacks].min(axis=1)}).reset_index()
    for ref in ("fgsm_acc", f"deepfool_{norm}_acc"):
        if ref in wide:
            out[ref] = wide[ref].to_numpy()
    clean = out[out["param"] == 0].set_index("series")["attacked"]
    out["ratio"] = out["attacked"] / out["series"].map(clean)
    return out.dropna(subset=["certified", "attacked"])


def bracket_chart(summary: pd.DataFrame, norm: str = "linf") -> dict:
    """Robust accuracy as a band per series: certified (lower bound) to the strongest attack (upper bound)."""
    data = bracket_frame(summary, norm)
    label, cert = BRACKET_NORMS[norm], metrics.ROWS[bracket_rows(norm)[1]]
    if data.empty:
        return empty_chart(f"No certified and attacked {label} results for this selection")
    order = series_order(data["series"])
    x = {"field": "param", "type": "quantitative", "title": f"ε ({label}, {cert.param_unit})"}
    y_title = f"robust accuracy · {cert.unit}"
    color = {"field": "series", "type": "nominal", "scale": _colors(order),
             "legend": legend("Group · merge level", order)}
    tip = [{"field": "series"}, {"field": "param", "title": "ε"}, {"field": "certified", "format": ".3f"},
           {"field": "attacked", "format": ".3f"}, {"field": "ratio", "title": "attacked / clean", "format": ".3f"}]
    band = {"mark": {"type": "area"},
            "encoding": {"x": x, "y": {"field": "certified", "type": "quantitative", "title": y_title},
                         "y2": {"field": "attacked"}, "fill": {**color, "legend": None}, "tooltip": tip,
                         **dimmed(0.18, 0.02)}}
    upper = {"mark": {"type": "line", "strokeWidth": 2, "point": {"size": 24, "filled": True}},
             "params": interactive("series", zoom=True),
             "encoding": {"x": x, "y": {"field": "attacked", "type": "quantitative", "title": y_title},
                          "color": color, "tooltip": tip, **dimmed()}}
    lower = {"mark": {"type": "line", "strokeWidth": 1.5, "strokeDash": [4, 3]},
             "encoding": {"x": x, "y": {"field": "certified", "type": "quantitative"},
                          "color": {**color, "legend": None}, **dimmed()}}
    spec = _chart(f"Robustness bracket ({label}) per merge level",
                  "band: true robust accuracy lies between certified (dashed, lower) and the strongest attack "
                  "(solid, upper)", [band, upper, lower], {})
    spec["data"] = {"name": "bracket"}
    spec["datasets"] = {"bracket": _data(data, ["series", "param", "certified", "attacked", "ratio"])}
    return _with_legend_size(spec, order)


def method_chart(points: pd.DataFrame, metric: str, *, log: bool = False, zero: bool = False) -> dict:
    """Final models of each method over the same leaves (tree root, MergeMany, average) vs the leaves."""
    title = metrics.title(metric)
    rows = _positive(points[(points["metric"] == metric) & (points["method"] != "zoo")], "value", log)
    if rows.empty:
        return empty_chart(f"No merged {title.lower()} results for this selection")
    merged = rows[rows["level"] > 0]
    top = merged.groupby("tree_id")["level"].transform("max")
    finals = merged[merged["level"] == top].assign(what=lambda d: d["group"] + " (merged)")
    leaves = rows[rows["level"] == 0].drop_duplicates("model_id").assign(what=LEAVES)
    everything = pd.concat([leaves, finals], ignore_index=True)
    order = list(dict.fromkeys(everything["what"]))
    # means over every model, computed here (a model at ∞ makes its group's mean ∞): Vega's own mean would
    # quietly average only the dots it can draw
    means, infinite_means = _finite(everything.groupby("what", sort=False, as_index=False)["value"].mean(), "value")
    both, infinite_models = _finite(everything, "value")
    note = _infinite_note(infinite_means, infinite_models)
    x = {"field": "what", "type": "nominal", "title": None, "sort": order,
         "axis": {"labelAngle": 0, "labelOverlap": False, "labelLimit": 200}}
    y_title = axis_title(metric)
    layers = [
        {"mark": {"type": "circle", "size": 45, "opacity": 0.7},
         "encoding": {"x": x, "y": {"field": "value", "type": "quantitative", "scale": _scale(log, zero), "title": y_title},
                      "color": {"field": "what", "type": "nominal", "scale": _colors(order), "legend": None},
                      "tooltip": [{"field": "what", "title": "model"}, {"field": "model_id"},
                                  {"field": "value", "format": ".4g"}]}},
        {"data": {"name": "means"}, "mark": {"type": "tick", "thickness": 3, "size": 30, "color": "black"},
         "encoding": {"x": x, "y": {"field": "value", "type": "quantitative"},
                      "tooltip": [{"field": "what", "title": "models"},
                                  {"field": "value", "title": "mean", "format": ".4g"}]}},
    ]
    spec = _chart(f"{title}: merge methods vs their leaves", "dots: models · black tick: mean" + note, layers, {})
    spec["data"] = {"name": "finals"}
    spec["datasets"] = {"finals": _data(both, ["what", "model_id", "value"]), "means": _data(means, ["what", "value"])}
    return spec


def interpolation_chart(rows: pd.DataFrame, metric: str) -> dict:
    """Accuracy or loss of θ(λ) = (1−λ)·A + λ·π(B): one line per alignment (± REPAIR), dashed = REPAIR.

    rows: store.curves rows of one pair, one config and one split (lam not null)."""
    from backend.curve_queries import variant_label

    title = {"accuracy": "Accuracy along the path", "loss": "Loss along the path"}.get(metric, metric)
    part = rows[(rows["metric"] == metric) & rows["lam"].notna()]
    if part.empty:
        return empty_chart(f"No {metric} curve for this selection")
    part = part.assign(variant=[variant_label(a, bool(r)) for a, r in zip(part["align"], part["repair"], strict=True)],
                       repaired=part["repair"].astype(bool))
    order = [variant_label(a, r) for a in ("none", "weight", "activation") for r in (False, True)]
    order = [v for v in order if v in set(part["variant"])]
    y_title = metrics.unit(metric) if metric in metrics.ROWS else metric
    line = {"mark": {"type": "line", "strokeWidth": 2, "point": {"size": 28, "filled": True}},
            "encoding": {"x": {"field": "lam", "type": "quantitative", "title": "λ (0 = model A, 1 = aligned model B)"},
                         "y": {"field": "value", "type": "quantitative", "scale": {"zero": False}, "title": y_title},
                         "color": {"field": "variant", "type": "nominal", "scale": _colors(order),
                                   "legend": legend("Alignment", order)},
                         "strokeDash": {"field": "repaired", "type": "nominal", "legend": None,
                                        "scale": {"domain": [False, True], "range": [[1, 0], [6, 4]]}},
                         "tooltip": [{"field": "variant"}, {"field": "lam", "title": "λ"},
                                     {"field": "value", "format": ".4g"}]}}
    spec = _chart(title, "solid: plain interpolation · dashed: with REPAIR", [line], {})
    spec["data"] = {"name": "curve"}
    spec["datasets"] = {"curve": _data(part, ["variant", "repaired", "lam", "value"])}
    return spec


TRAINING_TITLES = {"loss": "Training loss", "acc": "Training accuracy"}


def training_chart(points: pd.DataFrame, metric: str, *, band: bool = True) -> dict:
    """Training curves (Zoo, Runs): lines per model (thin) coloured by group; with `band`, each group's min..max
    area and mean line over the epoch means; without (a running job), each model's finest points (every N
    steps when recorded). `points`: store.train_curves rows."""
    from backend.curves import curve_bands, curve_groups, epoch_points, live_points

    chosen = epoch_points(points) if band else live_points(points)
    stepped = "step" in chosen.columns and chosen["step"].notna().any()
    pts = curve_groups(chosen)
    lines = pts[["group", "model", "epoch", metric]].rename(columns={metric: "value"})
    y_title = TRAINING_TITLES[metric]
    order = sorted(set(lines["group"]))
    color = {"field": "group", "type": "nominal", "title": None, "scale": _colors(order),
             "legend": legend(None, order)}
    x = {"field": "epoch", "type": "quantitative", "title": "epoch", "axis": {"tickMinStep": 1, "format": "d"}}
    layers = [{"data": {"name": "lines"}, "mark": {"type": "line", "point": not stepped, "strokeWidth": 1},
               "params": interactive("group", zoom=True),
               "encoding": {"x": x, "y": {"field": "value", "type": "quantitative", "title": y_title,
                                          "scale": {"zero": False}, "axis": {"format": ".3~f"}},
                            "color": color, "detail": {"field": "model"}, **dimmed(0.6, 0.05),
                            "tooltip": [{"field": "group"}, {"field": "model"},
                                        {"field": "epoch", "format": ".2f" if stepped else "d"},
                                        {"field": "value", "format": ".4f", "title": metric}]}}]
    datasets = {"lines": _data(lines, ["group", "model", "epoch", "value"])}
    if band:
        bands = curve_bands(pts)
        bands = bands[(bands["metric"] == metric) & (bands["n"] > 1)]
        if not bands.empty:
            datasets["bands"] = bands.reset_index(drop=True)
            layers = [{"data": {"name": "bands"}, "mark": {"type": "area"},
                       "encoding": {"x": x, "y": {"field": "low", "type": "quantitative"},
                                    "y2": {"field": "high"}, "color": color, **dimmed(0.18, 0.02)}},
                      {"data": {"name": "bands"}, "mark": {"type": "line", "strokeWidth": 2.5},
                       "encoding": {"x": x, "y": {"field": "mean", "type": "quantitative"}, "color": color,
                                    **dimmed(),
                                    "tooltip": [{"field": "group"}, {"field": "epoch"},
                                                {"field": "mean", "format": ".4f"}, {"field": "n"}]}},
                      *layers]
    subtitle = ("per epoch; band: min..max of each group, thick line: mean" if band else
                ("every few training steps" if stepped else "per epoch") + ", one line per model")
    return _with_legend_size(_chart(y_title, subtitle, layers, datasets), order)
