"""The results report of one experiment: the study's figures (Vega-Lite) and tables, read back from DuckDB.

`build_report(experiment_id)` returns sections (title, text, chart, tables) that the Report page draws and
backend/report_files.py writes as files that work offline (Markdown with figure files, .zip, .html).

Charts are plain Vega-Lite dicts with their (small, aggregated) data inline: Altair validates every
encoding against the schema (~100 ms a chart), and a dict draws with st.vega_lite_chart and converts
with vl-convert all the same. The page builds one section at a time (`load_study`, `section_titles`,
`build_section`), so it never waits for figures nobody opened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backend import stats
from backend.charts import SCHEMA, axis_title
from backend.merge.registry import method_short
from backend.metrics import CURVE_ROWS, ROWS, SCALAR_ROWS, family_rows

ZOO_LABELS = {"plain": "unmerged", "l1": "L1-regularised", "l2": "L2-regularised"}
# From the metric catalogue (backend/metrics.py): curve rows by their budget's name, per-level scalars,
# and the weight-space rows that get a section each.
CURVES = {name: ROWS[name].budget for name in CURVE_ROWS}
SCALARS = list(SCALAR_ROWS)
NORMS = {name: ROWS[name].title for name in family_rows("weights")}


@dataclass
class Section:
    title: str
    text: str
    chart: dict | None = None  # a Vega-Lite spec with its data inline
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class Report:
    experiment: dict
    sections: list[Section]

    @property
    def title(self) -> str:
        return report_title(self.experiment)


@dataclass
class Study:
    """Everything a section is computed from: the experiment row, its result dict and its tagged rows."""
    experiment: dict
    result: dict
    frame: pd.DataFrame  # study_frame rows; shared by the sections, never modified

    @property
    def metrics(self) -> set[str]:
        return set(self.frame["metric"].unique())


def report_title(experiment: dict) -> str:
    return f"Hierarchical Re-Basin study — experiment {experiment['id']} ({experiment['name']})"


def _experiment(experiment_id: int) -> tuple[dict, dict]:
    from store import experiments as store_exps

    exp = store_exps.get_experiment(int(experiment_id))
    if exp is None:
        raise ValueError(f"experiment {experiment_id} does not exist")
    result = exp.get("result")  # get_experiment decodes the JSON columns
    if not result or "groups" not in result:
        raise ValueError(f"experiment {experiment_id} has no results yet (status: {exp.get('status')})")
    return exp, result


def _label_by(df: pd.DataFrame, keys: list[str], label: Callable[..., str]) -> np.ndarray:
    """label(*key values) for every row, calling `label` once per distinct key combination."""
    combos = df[keys].drop_duplicates()  # first-appearance order, the order ngroup(sort=False) numbers
    labels = np.array([label(*row) for row in combos.itertuples(index=False, name=None)], dtype=object)
    codes = df.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()  # [rows]
    return labels[codes] if len(labels) else np.array([], dtype=object)


def _series_label(method, level, zoo_kind) -> str:
    if method == "zoo":
        return ZOO_LABELS.get(zoo_kind, str(zoo_kind))
    if method == "hierarchical":
        return "unmerged (leaves)" if level == 0 else f"hierarchical level {level} ({2 ** level} models)"
    return method_short(method)


def tag_rows(df: pd.DataFrame, result: dict) -> pd.DataFrame:
    """level_metrics rows tagged with the experiment's pair index, leaf count and series label (new frame).

    pair / leaves are NA for zoo models and trees outside the experiment's groups.
    """
    tree_info = {int(t): (g["pair"], g["leaves"]) for g in result["groups"] for t in g["trees"].values()}
    tree_ids = df["tree_id"].astype("Int64")
    out = df.copy()
    out["pair"] = tree_ids.map({t: p for t, (p, _) in tree_info.items()}).astype("Int64")
    out["leaves"] = tree_ids.map({t: n for t, (_, n) in tree_info.items()}).astype("Int64")
    out["series"] = _label_by(out, ["method", "level", "zoo_kind"], _series_label)
    out["level"] = out["level"].astype(int)
    return out


def study_frame(result: dict) -> pd.DataFrame:
    """level_metrics rows of the experiment, tagged with series label, leaf count and pair index."""
    from backend.levels import level_metrics

    df = level_metrics(tree_ids=result["tree_ids"], zoo_ids=list(result["zoos"].values()),
                       eval_key=result["eval_key"])
    return tag_rows(df, result)


def load_study(experiment_id: int) -> Study:
    """Read the experiment and its rows once; every section is computed from the returned Study."""
    exp, result = _experiment(experiment_id)
    df = study_frame(result)
    if df.empty:
        raise ValueError(f"experiment {experiment_id} has no evaluations under its config yet")
    return Study(exp, result, df)


def _reference_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Each model once: zoo models, merged hierarchical nodes, MergeMany and average results."""
    merged = df[(df["method"] != "zoo") & (df["kind"] != "trained")]
    return pd.concat([df[df["method"] == "zoo"], merged], ignore_index=True)


def _records(df: pd.DataFrame) -> list[dict]:
    """JSON-safe rows (NaN/NA -> null, numpy scalars -> Python) for a spec's inline data."""
    return json.loads(df.to_json(orient="records", double_precision=15))


def _field(name: str, kind: str, **extra) -> dict:
    return {"field": name, "type": {"Q": "quantitative", "O": "ordinal", "N": "nominal"}[kind], **extra}


def _line_with_ci(summary: pd.DataFrame, x: str, x_title: str, y_title: str, color: str, title: str,
                  x_type: str = "Q") -> dict:
    """Mean per series as a line with points, bootstrap CI as error bars. Like Compare's charts it fills its
    column's width (a file: 640 px) while `height` stays the plot's own, so title, axes and legend never
    squash the plot; the legend is Compare's (charts.legend), never cut off. Interactive like Compare's charts
    on the page: click a legend entry to isolate its series; on a numeric x axis
    drag to pan and scroll to zoom (double-click resets)."""
    from backend.charts import AUTOSIZE, PADDING, dimmed, interactive, legend
    from backend.colors import color_scale

    x_enc = _field(x, x_type, title=x_title, axis={"labelAngle": 0})
    order = list(dict.fromkeys(summary[color])) if color in summary.columns else []
    # the same colour per group as in Compare; the legend under the plot
    color_enc = _field(color, "N", title=None, scale=color_scale(order), legend=legend(None, order, "circle"))
    tooltip = [_field(color, "N"), _field(x, x_type)] + [_field(c, "Q") for c in ("mean", "std", "ci_lo",
                                                                                  "ci_hi", "n")]
    return {"$schema": SCHEMA, "title": title, "height": 260, "autosize": AUTOSIZE, "padding": PADDING,
            "data": {"values": _records(summary)},
            "layer": [
                {"mark": {"type": "errorbar"},
                 "encoding": {"x": x_enc, "color": color_enc, **dimmed(), "y": _field("ci_lo", "Q", title=y_title),
                              "y2": {"field": "ci_hi"}}},
                {"mark": {"type": "line", "point": True}, "params": interactive(color, zoom=x_type == "Q"),
                 "encoding": {"x": x_enc, "color": color_enc, "tooltip": tooltip, **dimmed(),
                              "y": _field("mean", "Q", title=y_title, scale={"zero": False})}},
            ]}


def _bars_by_leaves(summary: pd.DataFrame, title: str) -> dict:
    """One bar (with CI) per method, one panel per leaf count."""
    return {"$schema": SCHEMA, "title": title, "data": {"values": _records(summary)},
            "facet": {"column": _field("leaves", "O", title="leaves per tree")},
            "spec": {"width": 160, "height": 240,
                     "encoding": {"x": _field("method", "N", title=None),
                                  "color": _field("method", "N", legend=None)},
                     "layer": [{"mark": {"type": "bar"}, "encoding": {"y": _field("mean", "Q", title="test accuracy")}},
                               {"mark": {"type": "errorbar", "color": "black"},
                                "encoding": {"y": _field("ci_lo", "Q", title="test accuracy"),
                                             "y2": {"field": "ci_hi"}}}]}}


def _per_level(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Hierarchical nodes per (leaves, level) plus MergeMany/average at their level, one series each."""
    rows = df[(df["method"] != "zoo") & df["leaves"].notna() & (df["metric"] == metric)]
    rows = rows[(rows["method"] == "hierarchical") | (rows["kind"] != "trained")]
    series = _label_by(rows, ["method", "leaves"], lambda m, n: (
        f"{method_short(m)} · {n} leaves"))
    rows = _once(rows.assign(series=series), ["series", "level"])
    return stats.level_summary(rows, metric, by=("series", "level"))


def _once(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Each model once per group: a leaf shared by two trees of one group is one sample, not two."""
    return rows.drop_duplicates([*by, "model_id", "metric", "param"])


def _roots(df: pd.DataFrame) -> pd.DataFrame:
    """Hierarchical roots and MergeMany/average results, one row per (pair, method, metric, param)."""
    trees = df[df["pair"].notna()]
    top = trees.groupby("tree_id")["level"].transform("max")
    return trees[(trees["level"] == top) & (trees["kind"] != "trained")]


def _mid(grid) -> float:
    grid = sorted(set(float(v) for v in grid if v > 0))
    return grid[len(grid) // 2] if grid else 0.0


def _setup(study: Study) -> Section:
    exp, result = study.experiment, study.result
    ev, plan = result.get("eval", {}), result.get("plan", {})
    n_trees = ", ".join(f"{t} × {n} leaves" for t, n in plan.get("trees", []))
    return Section("Setup", (
        f"Dataset **{exp['dataset']}**, preset **{exp['preset']}**, widths {plan.get('widths')}, "
        f"{plan.get('epochs')} epoch(s), train subset {plan.get('train_subset') or 'all'}; trees: {n_trees}; "
        f"L1 ({plan.get('l1_strength')}) and L2 ({plan.get('l2_strength')}) zoos of {plan.get('reg_models')} "
        f"models. Evaluation config `{result['eval_key']}`: test subset {ev.get('subset') or 'whole split'}, "
        f"DeepFool steps {ev.get('deepfool_steps')}, local Lipschitz at {ev.get('lipschitz_points')} points "
        f"(radius {ev.get('lipschitz_radius')}). Error bars: bootstrap 95 % CI of the mean (seed 0)."))


def _accuracy(study: Study) -> Section:
    acc = _per_level(study.frame, "accuracy")
    return Section("Accuracy per level", (
        "Test accuracy of every tree node by level (level k merges 2^k models); MergeMany and naive "
        "averaging over the same leaves sit at the root's level."),
        _line_with_ci(acc, "level", "tree level", axis_title("accuracy"), "series", "Accuracy per level", "O"),
        {"accuracy_per_level": acc})


def _hierarchical_vs_merge_many(study: Study) -> Section:
    roots = _roots(study.frame)
    present = study.metrics
    scalar_metrics = [(m, None) for m in SCALARS if m in present]
    fgsm = _mid(study.result.get("eval", {}).get("fgsm_eps", []))
    paired = stats.paired_table(roots, scalar_metrics + [("fgsm_acc", fgsm)])
    cmp = stats.summarize(stats.select(roots, "accuracy"), ["leaves", "method"])
    cmp["method"] = cmp["method"].map(method_short)
    return Section("Hierarchical vs MergeMany", (
        "Root of each hierarchical tree vs the MergeMany model of the same leaves (paired by tree). "
        "mean_diff = hierarchical − MergeMany with bootstrap CI; paired t-test for n ≥ 2, Wilcoxon "
        "signed-rank for n ≥ 5 (NaN where n does not allow a test)."),
        _bars_by_leaves(cmp, "Hierarchical root vs MergeMany"),
        {"root_vs_merge_many": cmp, "paired_differences": paired})


def _robustness(study: Study, metric: str) -> Section:
    x_title = CURVES[metric]
    df = study.frame
    refs = _reference_rows(df[df["metric"] == metric])
    curves = stats.robust_curves(refs, metric, by=("series",))
    chart = _line_with_ci(curves, "param", ROWS[metric].axis, axis_title(metric), "series",
                          f"{x_title}: robust accuracy per level vs unmerged, L1, L2")
    wide = curves.pivot_table(index="series", columns="param", values="mean").reset_index()
    wide.columns = [c if isinstance(c, str) else f"{c:g}" for c in wide.columns]
    return Section(f"Robustness: {x_title}", (
        "Share of all test samples still classified correctly at each budget (at 0 it is the clean "
        "accuracy). Merged models by level against unmerged, L1- and L2-regularised models."),
        chart, {f"{metric}_curves": curves, f"{metric}_by_eps": wide})


def _trends(study: Study, metrics: list[str]) -> pd.DataFrame:
    hier = _once(study.frame[study.frame["method"] == "hierarchical"], ["leaves", "level"])
    return stats.trend_table(hier, [(m, None) for m in metrics], by=("leaves",))


def _norm(study: Study, metric: str) -> Section:
    what = NORMS[metric]
    df = study.frame
    per_level = _per_level(df, metric)
    zoo = stats.summarize(stats.select(df[df["method"] == "zoo"], metric), ["series"]).assign(level=0)
    chart = _line_with_ci(pd.concat([per_level, zoo], ignore_index=True), "level", "tree level", axis_title(metric),
                          "series", f"{what} per level", "O")
    return Section(what, (
        f"{what} of every node by level, with the L1/L2 zoos at level 0 for reference. The trend table "
        "gives the OLS slope per level with its 95 % CI (scipy.stats.linregress) over hierarchical nodes."),
        chart, {f"{metric}_per_level": per_level, f"{metric}_zoos": zoo,
                f"{metric}_trend": _trends(study, [metric])})


def _trend_section(study: Study) -> Section:
    metrics = [m for m in NORMS if m in study.metrics] + ["accuracy"]
    return Section("Trends over levels", "OLS slope of each metric against tree level.", None,
                   {"trends": _trends(study, metrics)})


def _builders(study: Study) -> dict[str, Callable[[Study], Section]]:
    """Section title -> builder, in report order; only sections the stored metrics can fill."""
    present, df = study.metrics, study.frame
    in_refs = set(df.loc[(df["method"] == "zoo") | (df["kind"] != "trained"), "metric"].unique())
    out: dict[str, Callable[[Study], Section]] = {
        "Setup": _setup, "Accuracy per level": _accuracy, "Hierarchical vs MergeMany": _hierarchical_vs_merge_many}
    for metric, x_title in CURVES.items():
        if metric in in_refs:
            out[f"Robustness: {x_title}"] = lambda s, m=metric: _robustness(s, m)
    from backend.report_bracket import builders as bracket_builders  # issue 12: certified ≤ true ≤ attacked

    out.update(bracket_builders(study))
    for metric, what in NORMS.items():
        if metric in present:
            out[what] = lambda s, m=metric: _norm(s, m)
    out["Trends over levels"] = _trend_section
    if study.result.get("curve_key") or study.result.get("variant_tree_ids"):  # issue 13's explain sections
        from backend.report_connectivity import builders

        out.update(builders(study))
    return out


def section_titles(study: Study) -> list[str]:
    return list(_builders(study))


def build_section(study: Study, title: str) -> Section:
    """One section of the report (the page builds only the one on screen)."""
    builders = _builders(study)
    if title not in builders:
        raise ValueError(f"the report has no section {title!r}; it has {', '.join(builders)}")
    return builders[title](study)


def build_report(experiment_id: int) -> Report:
    """Read the experiment's rows from the store and assemble every figure and table of the study."""
    study = load_study(experiment_id)
    return Report(study.experiment, [build(study) for build in _builders(study).values()])
