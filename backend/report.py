"""The results report of one experiment: the study's figures (Altair) and tables, read back from DuckDB.

`build_report(experiment_id)` returns sections (title, text, chart, tables) that the Report page draws and
`write_report` serialises into ONE file that works offline:
- `.md`:   Markdown with every figure as an embedded PNG (data URI) and tables as Markdown — diffable text
           that pandoc, VS Code and Typora render without network;
- `.html`: the same content as a standalone page (PNG inline) — opens in any browser, no CDN needed.
PNGs are rendered from the Vega-Lite specs with vl-convert-python (no browser, no network), which is why
we do not ship vega-embed HTML (it loads vega from a CDN and breaks offline).
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import pandas as pd

from backend import stats

ZOO_LABELS = {"plain": "unmerged", "l1": "L1-regularised", "l2": "L2-regularised"}
METHOD_LABELS = {"merge_many": "MergeMany", "average": "naive average"}
CURVES = {"fgsm_acc": "FGSM ε (L∞)", "deepfool_linf_acc": "DeepFool ε (L∞)",
          "deepfool_l2_acc": "DeepFool ε (L2)", "noise_acc": "Gaussian noise σ"}
SCALARS = ["accuracy", "loss", "weight_norm", "lipschitz_global", "lipschitz_local_mean",
           "deepfool_linf_median", "deepfool_l2_median"]


@dataclass
class Section:
    title: str
    text: str
    chart: alt.TopLevelMixin | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class Report:
    experiment: dict
    sections: list[Section]

    @property
    def title(self) -> str:
        return f"Hierarchical Re-Basin study — experiment {self.experiment['id']} ({self.experiment['name']})"


def default_report_path(experiment_id: int, suffix: str = ".md") -> Path:
    from store.paths import home_dir

    return home_dir() / "reports" / f"experiment-{experiment_id}{suffix}"


def _experiment(experiment_id: int) -> tuple[dict, dict]:
    from store import experiments as store_exps

    exp = store_exps.get_experiment(int(experiment_id))
    if exp is None:
        raise ValueError(f"experiment {experiment_id} does not exist")
    result = exp.get("result")
    result = json.loads(result) if isinstance(result, str) else result
    if not result or "groups" not in result:
        raise ValueError(f"experiment {experiment_id} has no results yet (status: {exp.get('status')})")
    return exp, result


def study_frame(result: dict) -> pd.DataFrame:
    """level_metrics rows of the experiment, tagged with series label, leaf count and pair index."""
    from backend.queries import level_metrics

    df = level_metrics(tree_ids=result["tree_ids"], zoo_ids=list(result["zoos"].values()),
                       eval_key=result["eval_key"])
    tree_info = {int(t): (g["pair"], g["leaves"]) for g in result["groups"] for t in g["trees"].values()}
    df["pair"] = [tree_info.get(int(t), (pd.NA, pd.NA))[0] if pd.notna(t) else pd.NA for t in df["tree_id"]]
    df["leaves"] = [tree_info.get(int(t), (pd.NA, pd.NA))[1] if pd.notna(t) else pd.NA for t in df["tree_id"]]

    def label(method, level, zoo_kind):
        if method == "zoo":
            return ZOO_LABELS.get(zoo_kind, str(zoo_kind))
        if method == "hierarchical":
            return "unmerged (leaves)" if level == 0 else f"hierarchical level {level} ({2 ** level} models)"
        return METHOD_LABELS.get(method, method)

    df["series"] = [label(m, lv, z) for m, lv, z in zip(df["method"], df["level"], df["zoo_kind"], strict=True)]
    df["level"] = df["level"].astype(int)
    return df


def _reference_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Each model once: zoo models, merged hierarchical nodes, MergeMany and average results."""
    merged = df[(df["method"] != "zoo") & (df["kind"] != "trained")]
    return pd.concat([df[df["method"] == "zoo"], merged], ignore_index=True)


def _line_with_ci(summary: pd.DataFrame, x: str, x_title: str, y_title: str, color: str, title: str,
                  x_type: str = "Q") -> alt.LayerChart:
    base = alt.Chart(summary).encode(x=alt.X(f"{x}:{x_type}", title=x_title),
                                     color=alt.Color(f"{color}:N", title=None))
    line = base.mark_line(point=True).encode(y=alt.Y("mean:Q", title=y_title, scale=alt.Scale(zero=False)),
                                             tooltip=[color, x, "mean", "std", "ci_lo", "ci_hi", "n"])
    band = base.mark_errorbar().encode(y="ci_lo:Q", y2="ci_hi:Q")
    return (band + line).properties(title=title, width=420, height=260)


def _per_level(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Hierarchical nodes per (leaves, level) plus MergeMany/average at their level, one series each."""
    rows = df[df["method"] != "zoo"].dropna(subset=["leaves"])
    rows = rows.assign(series=[f"{'hierarchical' if m == 'hierarchical' else METHOD_LABELS.get(m, m)} · {n} leaves"
                               for m, n in zip(rows["method"], rows["leaves"], strict=True)])
    rows = rows[(rows["method"] == "hierarchical") | (rows["kind"] != "trained")]
    return stats.level_summary(rows, metric, by=("series", "level"))


def _roots(df: pd.DataFrame) -> pd.DataFrame:
    """Hierarchical roots and MergeMany/average results, one row per (pair, method, metric, param)."""
    trees = df.dropna(subset=["pair"])
    top = trees.groupby("tree_id")["level"].transform("max")
    return trees[(trees["level"] == top) & (trees["kind"] != "trained")]


def _mid(grid) -> float:
    grid = sorted(set(float(v) for v in grid if v > 0))
    return grid[len(grid) // 2] if grid else 0.0


def build_report(experiment_id: int) -> Report:
    """Read the experiment's rows from the store and assemble every figure and table of the study."""
    exp, result = _experiment(experiment_id)
    df = study_frame(result)
    if df.empty:
        raise ValueError(f"experiment {experiment_id} has no evaluations under its config yet")
    ev, plan = result.get("eval", {}), result.get("plan", {})
    refs = _reference_rows(df)
    sections = []
    n_trees = ", ".join(f"{t} × {n} leaves" for t, n in plan.get("trees", []))
    sections.append(Section("Setup", (
        f"Dataset **{exp['dataset']}**, preset **{exp['preset']}**, widths {plan.get('widths')}, "
        f"{plan.get('epochs')} epoch(s), train subset {plan.get('train_subset') or 'all'}; trees: {n_trees}; "
        f"L1 ({plan.get('l1_strength')}) and L2 ({plan.get('l2_strength')}) zoos of {plan.get('reg_models')} "
        f"models. Evaluation config `{result['eval_key']}`: test subset {ev.get('subset') or 'whole split'}, "
        f"DeepFool steps {ev.get('deepfool_steps')}, local Lipschitz at {ev.get('lipschitz_points')} points "
        f"(radius {ev.get('lipschitz_radius')}). Error bars: bootstrap 95 % CI of the mean (seed 0).")))

    acc = _per_level(df, "accuracy")
    sections.append(Section("Accuracy per level", (
        "Test accuracy of every tree node by level (level k merges 2^k models); MergeMany and naive "
        "averaging over the same leaves sit at the root's level."),
        _line_with_ci(acc, "level", "tree level", "test accuracy", "series", "Accuracy per level", "O"),
        {"accuracy_per_level": acc}))

    roots = _roots(df)
    scalar_metrics = [(m, None) for m in SCALARS if m in set(df["metric"])]
    paired = stats.paired_table(roots, scalar_metrics + [("fgsm_acc", _mid(ev.get("fgsm_eps", [])))])
    cmp = stats.summarize(stats.select(roots, "accuracy"), ["leaves", "method"])
    cmp["method"] = cmp["method"].map(lambda m: METHOD_LABELS.get(m, m))
    bars = alt.Chart(cmp).encode(x=alt.X("method:N", title=None), color=alt.Color("method:N", legend=None))
    chart = (bars.mark_bar().encode(y=alt.Y("mean:Q", title="test accuracy"))
             + bars.mark_errorbar(color="black").encode(y="ci_lo:Q", y2="ci_hi:Q")
             ).properties(width=160, height=240).facet(column=alt.Column("leaves:O", title="leaves per tree")
                                                       ).properties(title="Hierarchical root vs MergeMany")
    sections.append(Section("Hierarchical vs MergeMany", (
        "Root of each hierarchical tree vs the MergeMany model of the same leaves (paired by tree). "
        "mean_diff = hierarchical − MergeMany with bootstrap CI; paired t-test for n ≥ 2, Wilcoxon "
        "signed-rank for n ≥ 5 (NaN where n does not allow a test)."), chart,
        {"root_vs_merge_many": cmp, "paired_differences": paired}))

    for metric, x_title in CURVES.items():
        if metric not in set(refs["metric"]):
            continue
        curves = stats.robust_curves(refs, metric, by=("series",))
        chart = _line_with_ci(curves, "param", x_title, "robust accuracy", "series",
                              f"{x_title}: robust accuracy per level vs unmerged, L1, L2")
        wide = curves.pivot_table(index="series", columns="param", values="mean").reset_index()
        wide.columns = [c if isinstance(c, str) else f"{c:g}" for c in wide.columns]
        sections.append(Section(f"Robustness: {x_title}", (
            "Share of all test samples still classified correctly at each budget (at 0 it is the clean "
            "accuracy). Merged models by level against unmerged, L1- and L2-regularised models."),
            chart, {f"{metric}_curves": curves, f"{metric}_by_eps": wide}))

    trend_metrics = [(m, None) for m in ("weight_norm", "lipschitz_global", "lipschitz_local_mean")
                     if m in set(df["metric"])]
    hier = df[df["method"] == "hierarchical"]
    trends = stats.trend_table(hier, trend_metrics + [("accuracy", None)], by=("leaves",))
    for metric, what in (("weight_norm", "Weight norm Σ‖W‖_F + ‖b‖₂"),
                         ("lipschitz_global", "Global Lipschitz bound Π‖W‖₂"),
                         ("lipschitz_local_mean", "Local Lipschitz bound (mean over points)")):
        if metric not in set(df["metric"]):
            continue
        per_level = _per_level(df, metric)
        zoo = stats.summarize(stats.select(df[df["method"] == "zoo"], metric), ["series"])
        zoo = zoo.assign(level=0)
        chart = _line_with_ci(pd.concat([per_level, zoo], ignore_index=True), "level", "tree level", what,
                              "series", f"{what} per level", "O")
        sections.append(Section(what, (
            f"{what} of every node by level, with the L1/L2 zoos at level 0 for reference. The trend table "
            "gives the OLS slope per level with its 95 % CI (scipy.stats.linregress) over hierarchical nodes."),
            chart, {f"{metric}_per_level": per_level, f"{metric}_zoos": zoo,
                    f"{metric}_trend": trends[trends["metric"] == metric]}))
    sections.append(Section("Trends over levels", "OLS slope of each metric against tree level.",
                            None, {"trends": trends}))
    return Report(exp, sections)


# -- one-file export -------------------------------------------------------------------------------------


def chart_png(chart: alt.TopLevelMixin, scale: float = 1.5) -> bytes:
    import vl_convert as vlc

    return vlc.vegalite_to_png(chart.to_json(), scale=scale)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def render_markdown(report: Report) -> str:
    from backend.export import export_bytes

    out = [f"# {report.title}", ""]
    for s in report.sections:
        out += [f"## {s.title}", "", s.text, ""]
        if s.chart is not None:
            out += [f"![{s.title}]({_data_uri(chart_png(s.chart))})", ""]
        for name, table in s.tables.items():
            out += [f"**{name}**", "", export_bytes(table, "markdown").decode(), ""]
    return "\n".join(out)


def render_html(report: Report) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(report.title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}</style>",
             f"<h1>{html.escape(report.title)}</h1>"]
    for s in report.sections:
        parts += [f"<h2>{html.escape(s.title)}</h2>", f"<p>{html.escape(s.text)}</p>"]
        if s.chart is not None:
            parts.append(f"<img alt='{html.escape(s.title)}' src='{_data_uri(chart_png(s.chart))}'>")
        for name, table in s.tables.items():
            parts += [f"<h4>{html.escape(name)}</h4>", table.to_html(index=False, float_format=lambda v: f"{v:.4g}")]
    return "\n".join(parts)


def report_bytes(report: Report, fmt: str = "markdown") -> bytes:
    if fmt not in ("markdown", "html"):
        raise ValueError(f"a report is written as markdown or html, not {fmt!r}")
    return (render_markdown(report) if fmt == "markdown" else render_html(report)).encode()


def write_report(experiment_id: int, path: str | Path | None = None) -> Path:
    """Write the report as one file (.md or .html, from the suffix) atomically; returns the path."""
    path = Path(path) if path is not None else default_report_path(experiment_id)
    suffix = path.suffix.lower()
    if suffix not in (".md", ".markdown", ".html", ".htm"):
        raise ValueError(f"the report file must end in .md or .html, got {path.name!r}")
    data = report_bytes(build_report(experiment_id), "html" if suffix.startswith(".htm") else "markdown")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
