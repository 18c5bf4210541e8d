"""Graphviz DOT strings for merge trees: the planned tree (before any weights exist) and a stored tree
coloured by a metric. Pure string builders so they are testable without a browser."""

from __future__ import annotations

import math

import pandas as pd

# Low -> high colour ramp (viridis stops); text switches to white on the dark end.
_RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]


def _quote(*lines: str) -> str:
    """A DOT string literal; several lines are joined with DOT's own line break."""
    escaped = [str(t).replace("\\", "\\\\").replace('"', '\\"') for t in lines]
    return '"' + "\\n".join(escaped) + '"'


def _hex_to_rgb(h: str) -> tuple[int, int, int]:
    return int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16)


def ramp_color(t: float) -> str:
    """Colour for t in [0, 1] on the viridis ramp (NaN -> light grey)."""
    if t is None or math.isnan(t):
        return "#dddddd"
    t = min(max(t, 0.0), 1.0) * (len(_RAMP) - 1)
    i = min(int(t), len(_RAMP) - 2)
    a, b = _hex_to_rgb(_RAMP[i]), _hex_to_rgb(_RAMP[i + 1])
    frac = t - i
    return "#" + "".join(f"{round(x + (y - x) * frac):02x}" for x, y in zip(a, b, strict=True))


def plan_dot(levels: list, leaf_labels: list[str]) -> str:
    """DOT for a tree plan: `levels[k]` lists groups of indices into level k's nodes (pairs, or a single
    index for a node carried up unchanged); leaves are level 0, drawn on top, the root at the bottom."""
    lines = ["digraph plan {", "  rankdir=TB; node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", "
             "fontname=\"Helvetica\", fontsize=10]; edge [color=\"#7a869a\"];"]
    lines += [f"  n0_{i} [label={_quote(*str(label).splitlines())}];" for i, label in enumerate(leaf_labels)]
    for k, groups in enumerate(levels, start=1):
        lines.append(f"  subgraph level{k} {{ rank=same;")
        for j, group in enumerate(groups):
            carried = len(group) == 1
            label = f"level {k} · {'carried' if carried else 'merge'} {j}"
            fill = "#f5f5f5" if carried else "#d8e6fb"
            lines.append(f"    n{k}_{j} [label={_quote(label)}, fillcolor={_quote(fill)}];")
        lines.append("  }")
        for j, group in enumerate(groups):
            lines += [f"  n{k - 1}_{int(p)} -> n{k}_{j};" for p in group]
    lines.append("}")
    return "\n".join(lines)


WIDE = 6  # nodes on one level above which Tree view draws compact labels (an 8-leaf MergeMany star)


def metric_title(column: str) -> str:
    """'fgsm_acc@0.01' -> 'FGSM robust accuracy @ 0.01': a Tree view column by its title."""
    from backend.labels import METRIC_TITLES

    metric, _, param = str(column).partition("@")
    title = METRIC_TITLES.get(metric, metric)
    return f"{title} @ {param}" if param else title


def ramp_legend_html(lo: float, hi: float, title: str) -> str:
    """A colour bar for tree_dot's ramp: the metric's title, its lowest value on the left, highest on the right.
    Only numbers and catalogue titles go in (no user text)."""
    stops = ", ".join(ramp_color(i / 10) for i in range(11))
    safe = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f'<div style="font-size:0.85rem;margin:0.2rem 0 0.6rem 0">{safe}'
            f'<div style="height:12px;border-radius:3px;background:linear-gradient(to right, {stops});'
            f'max-width:420px"></div><div style="display:flex;justify-content:space-between;max-width:420px">'
            f'<span>{lo:.4g} (lowest in this tree)</span><span>{hi:.4g} (highest)</span></div>'
            f'<span style="color:#888">grey: not evaluated</span></div>')


def tree_dot(nodes: pd.DataFrame, metric_column: str | None = None, selected: int | None = None) -> str:
    """DOT for a stored tree (rows: model_id, level, kind, parents[model ids], optional carried) coloured by
    one column. A carried node (an odd-count level's last node, moved up unchanged) is drawn dashed and
    labelled as such, and its edge is dashed: it is a copy, not a merge. A tree with more than WIDE nodes on
    one level gets compact labels (id and value) and tighter spacing, so it stays readable when scaled."""
    has_metric = bool(metric_column) and metric_column in nodes.columns
    values = nodes[metric_column].astype(float) if has_metric else pd.Series(float("nan"), index=nodes.index)
    lo, hi = (values.min(), values.max()) if values.notna().any() else (0.0, 0.0)
    wide = len(nodes) > 0 and int(nodes.groupby("level").size().max()) > WIDE
    size = 14 if wide else 10
    lines = ["digraph tree {", f"  rankdir=TB; {'nodesep=0.08; ranksep=0.6; ' if wide else ''}node [shape=box, "
             f"style=\"rounded,filled\", fontname=\"Helvetica\", fontsize={size}, margin=\"0.05,0.03\"]; "
             "edge [color=\"#7a869a\"];"]
    for level, rows in nodes.groupby("level", sort=True):
        lines.append(f"  subgraph level{int(level)} {{ rank=same;")
        for idx, row in rows.iterrows():
            value = float(values.loc[idx])
            t = 0.5 if hi == lo else (value - lo) / (hi - lo)
            fill = ramp_color(t)
            dark = not math.isnan(value) and t < 0.45
            model_id = int(row.model_id)
            carried = bool(row.get("carried", False))
            shown = "n/a" if math.isnan(value) else f"{value:.3g}"
            if wide:  # the level, kind and metric are the legend's and the inspector's job
                label = [f"#{model_id}"] + ([shown] if has_metric else [])
            else:
                label = [f"#{model_id} · level {int(row.level)}",
                         "carried up (no merge)" if carried else str(row.kind)]
                if has_metric:
                    label.append(f"{metric_title(metric_column)} = {shown}")
            style = ', style="rounded,filled,dashed"' if carried else ""
            border = ', penwidth=3, color="#d62728"' if selected is not None and model_id == selected else ""
            lines.append(f"    m{model_id} [label={_quote(*label)}, fillcolor={_quote(fill)}, "
                         f"fontcolor={_quote('white' if dark else 'black')}{style}{border}];")
        lines.append("  }")
    present = set(nodes["model_id"].astype(int))
    carried_ids = set(nodes.loc[nodes["carried"].astype(bool), "model_id"].astype(int)) if "carried" in nodes else set()
    for row in nodes.itertuples(index=False):
        edge = ' [style=dashed, label="carried"]' if int(row.model_id) in carried_ids else ""
        lines += [f"  m{int(p)} -> m{int(row.model_id)}{edge};" for p in row.parents if int(p) in present]
    lines.append("}")
    return "\n".join(lines)
