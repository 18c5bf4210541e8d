"""Report section "Robustness bracket": certified (lower) and attacked (upper) robust accuracy per merge level.

For every model and budget ε the true robust accuracy lies between two measured numbers:
- *certified* — the share of samples IBP/CROWN (L∞) or the local Lipschitz bound (L2) proves robust;
- *attacked* — the share no attack fooled; per model the smallest over every attack run at that ε (PGD, APGD,
  and FGSM/DeepFool, which are attacks too), so it is the tightest upper bound the evaluation holds. The
  strong attacks alone are reported as *strong*.

Per series (each hierarchical level, MergeMany, naive average, the unmerged, L1 and L2 zoos) the section gives
the mean of both bounds over the paper's ε range (L∞ 0–0.02; the whole L2 grid), their gap, and how many models
break certified ≤ attacked (a sound certificate never does). Paired statistics against the leaves: every tree
of the experiment has its own leaves, so per tree the merged models' mean (per level, or the MergeMany result)
is paired with the mean of that tree's leaves, and backend.stats.paired_difference gives the mean difference,
its bootstrap CI and the paired t / Wilcoxon tests over trees. The sentences are generated from these numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from backend import stats

NORMS = {"linf": "L∞", "l2": "L2"}
CERTIFIED = {"linf": "certified_linf_acc", "l2": "certified_l2_acc"}
STRONG = {"linf": ("pgd_linf_acc", "apgd_linf_acc"), "l2": ("pgd_l2_acc", "apgd_l2_acc")}
WEAK = {"linf": ("fgsm_acc", "deepfool_linf_acc"), "l2": ("deepfool_l2_acc",)}
PAPER_RANGE = {"linf": 0.02, "l2": math.inf}  # the paper's L∞ range is 0–0.02
KEYS = ["model_id", "tree_id", "pair", "leaves", "method", "level", "kind", "zoo_kind", "series"]
LEAVES = "leaves"


def available(metrics: set[str], p: str) -> bool:
    """A bracket needs a certificate and at least one strong attack for norm p."""
    return CERTIFIED[p] in metrics and any(m in metrics for m in STRONG[p])


def bracket_rows(frame: pd.DataFrame, p: str) -> pd.DataFrame:
    """One row per model (as tagged in the frame) and ε in the paper's range: its certified, strong, attacked
    value and each attack's value (columns named by metric)."""
    metrics = [m for m in (CERTIFIED[p], *STRONG[p], *WEAK[p]) if m in set(frame["metric"])]
    rows = frame[frame["metric"].isin(metrics) & frame["param"].notna()].copy()
    rows["param"] = rows["param"].astype(float).round(9)
    rows = rows[rows["param"] <= PAPER_RANGE[p] + 1e-12]
    keys = [k for k in KEYS if k in rows.columns]
    wide = (rows.groupby([*keys, "param", "metric"], dropna=False, sort=False)["value"].first()
            .unstack("metric").reset_index())
    wide.columns.name = None
    strong = [m for m in STRONG[p] if m in wide.columns]
    attacks = [m for m in (*STRONG[p], *WEAK[p]) if m in wide.columns]
    wide["certified"] = wide[CERTIFIED[p]] if CERTIFIED[p] in wide.columns else np.nan
    wide["strong"] = wide[strong].min(axis=1, skipna=True) if strong else np.nan
    wide["attacked"] = wide[attacks].min(axis=1, skipna=True) if attacks else np.nan
    return wide


def bracket_summary(rows: pd.DataFrame, *, by: tuple[str, ...] = ("series",)) -> pd.DataFrame:
    """Per group × ε: n models, mean certified / strong / attacked, gap = attacked − certified, and the number of
    models whose certified value exceeds their attacked value."""
    cols = ["certified", "strong", "attacked"]
    grouped = rows.groupby([*by, "param"], sort=False, dropna=False)
    out = grouped[cols].mean().reset_index()
    out.insert(len(by) + 1, "n", grouped.size().to_numpy())
    out["gap"] = out["attacked"] - out["certified"]
    broken = (rows["certified"] > rows["attacked"] + 1e-12).groupby([rows[c] for c in (*by, "param")],
                                                                       sort=False, dropna=False).sum()
    out["violations"] = broken.to_numpy().astype(int)
    return out


def paired_vs_leaves(rows: pd.DataFrame, params, columns=("certified", "attacked")) -> pd.DataFrame:
    """Merged − leaves per tree (paired), for each leaf count, merged series, ε and bound (`columns`).

    rows: bracket_rows of the experiment's trees (pair and leaves set); hierarchical level 0 = the leaves.
    """
    trees = rows[rows["pair"].notna()]
    leaf_mask = (trees["method"] == "hierarchical") & (trees["level"] == 0)
    leaves = (trees[leaf_mask].drop_duplicates(["pair", "model_id", "param"])
              .groupby(["pair", "leaves", "param"])[list(columns)].mean())
    merged = trees[trees["kind"] != "trained"]
    merged = merged.groupby(["pair", "leaves", "series", "param"])[list(columns)].mean().reset_index()
    out = []
    for param in params:
        at = merged[np.isclose(merged["param"], param, rtol=0, atol=1e-9)]
        for (n_leaves, series), part in at.groupby(["leaves", "series"], sort=True):
            for col in columns:
                own = part.set_index("pair")[col]
                base = leaves.xs(part["param"].iloc[0], level="param")[col].droplevel("leaves")
                pairs = pd.DataFrame({"pair": list(own.index) * 2, "method": ["merged"] * len(own) + [LEAVES] * len(own),
                                      "value": [*own.to_numpy(), *base.reindex(own.index).to_numpy()]})
                res = stats.paired_difference(pairs, a="merged", b=LEAVES)
                out.append({"leaves": int(n_leaves), "series": series, "param": float(param), "bound": col, **res})
    return pd.DataFrame(out)


def _chart(summary: pd.DataFrame, p: str) -> dict:
    from backend.charts import AUTOSIZE, PADDING, SCHEMA, dimmed, interactive, legend
    from backend.colors import color_scale
    from backend.report import _field, _records

    order = list(dict.fromkeys(summary["series"]))
    # Compare's legend (never cut off) and interactions: click an entry to isolate it, drag/scroll to pan/zoom
    color = _field("series", "N", title=None, scale=color_scale(order), legend=legend(None, order, "circle"))
    x = _field("param", "Q", title=f"ε ({NORMS[p]}, pixel units)")
    tooltip = [_field("series", "N"), _field("param", "Q"), _field("certified", "Q"), _field("attacked", "Q"),
               _field("n", "Q")]
    return {"$schema": SCHEMA, "height": 260, "autosize": AUTOSIZE, "padding": PADDING,
            "title": f"Robust accuracy bracket ({NORMS[p]}): certified (dashed) ≤ true ≤ attacked (solid)",
            "data": {"values": _records(summary)},
            "layer": [
                {"mark": {"type": "area"},
                 "encoding": {"x": x, "color": color, **dimmed(0.18, 0.02),
                              "y": _field("certified", "Q", title="robust accuracy"), "y2": {"field": "attacked"}}},
                {"mark": {"type": "line", "point": True}, "params": interactive("series", zoom=True),
                 "encoding": {"x": x, "color": color, "tooltip": tooltip, **dimmed(),
                              "y": _field("attacked", "Q", title="robust accuracy")}},
                {"mark": {"type": "line", "strokeDash": [4, 3]},
                 "encoding": {"x": x, "color": color, **dimmed(),
                              "y": _field("certified", "Q", title="robust accuracy")}},
            ]}


def _fmt_ci(row) -> str:
    if row["n"] == 0 or pd.isna(row["mean_diff"]):
        return "no pairs"
    text = f"{row['mean_diff']:+.3f} (95 % CI {row['ci_lo']:+.3f} … {row['ci_hi']:+.3f}, {int(row['n'])} tree(s)"
    if not pd.isna(row["t_p"]):
        text += f", paired t p = {row['t_p']:.3g}"
    return text + ")"


def _sentences(summary: pd.DataFrame, paired: pd.DataFrame, p: str, at: float) -> str:
    """What the numbers say at ε = `at`, generated from them."""
    here = summary[np.isclose(summary["param"], at, rtol=0, atol=1e-9) & summary["gap"].notna()]
    parts = []
    broken = int(summary["violations"].sum())
    parts.append("Every model's certified accuracy is at or below its attacked accuracy at every ε."
                 if broken == 0 else
                 f"**{broken}** (model, ε) pairs have certified above attacked accuracy: a certificate or an "
                 "attack is wrong for them (see the sanity warnings on those models).")
    if not here.empty:
        widest = here.loc[here["gap"].idxmax()]
        parts.append(f"At ε = {at:g} ({NORMS[p]}) the bracket is widest for {widest['series']} "
                     f"({widest['certified']:.3f} … {widest['attacked']:.3f}) and narrowest for "
                     f"{here.loc[here['gap'].idxmin(), 'series']} (gap {here['gap'].min():.3f}).")
    rows = paired[np.isclose(paired["param"], at, rtol=0, atol=1e-9)] if not paired.empty else paired
    for _, row in rows.iterrows():
        if row["bound"] == "attacked":
            cert = rows[(rows["leaves"] == row["leaves"]) & (rows["series"] == row["series"])
                        & (rows["bound"] == "certified")]
            cert_text = f"; certified {_fmt_ci(cert.iloc[0])}" if len(cert) else ""
            parts.append(f"{row['series']} ({row['leaves']} leaves) vs its own leaves: attacked "
                         f"{_fmt_ci(row)}{cert_text}.")
    return " ".join(parts)


def bracket_section(study, p: str):
    from backend.report import Section, _reference_rows

    rows = bracket_rows(study.frame, p)
    refs = bracket_rows(_reference_rows(study.frame), p)
    summary = bracket_summary(refs)
    grid = sorted(v for v in rows["param"].unique() if v > 0)
    picks = sorted({grid[(len(grid) - 1) // 2], grid[-1]}) if grid else []
    paired = paired_vs_leaves(rows, picks) if picks else pd.DataFrame()
    wide = summary.pivot_table(index="series", columns="param", values=["certified", "attacked"], sort=False)
    wide.columns = [f"{bound} @ {param:g}" for bound, param in wide.columns]
    text = (f"Robust accuracy under {NORMS[p]} budgets as a bracket per level: a *certified* lower bound "
            f"({'IBP/CROWN' if p == 'linf' else 'clean margin over √2 · local Lipschitz bound'}) and an *attacked* "
            "upper bound (per model the smallest robust accuracy over every attack run: PGD, APGD, "
            f"{'FGSM, ' if p == 'linf' else ''}DeepFool); the true robust accuracy lies in between. "
            f"{'ε over the paper’s range 0–0.02. ' if p == 'linf' else ''}Paired statistics: per tree, merged models "
            "minus that tree’s own leaves (mean difference, bootstrap 95 % CI, paired t-test for n ≥ 2, Wilcoxon "
            "for n ≥ 5). " + (_sentences(summary, paired, p, picks[0]) if picks else ""))
    return Section(f"Robustness bracket ({NORMS[p]})", text, _chart(summary, p) if not summary.empty else None,
                   {f"bracket_{p}": summary, f"bracket_{p}_by_eps": wide.reset_index(),
                    f"bracket_{p}_vs_leaves": paired})


def builders(study) -> dict:
    """Section title -> builder for each norm with a certificate and a strong attack in the study."""
    present = study.metrics
    return {f"Robustness bracket ({NORMS[p]})": (lambda s, p=p: bracket_section(s, p))
            for p in NORMS if available(present, p)}
