"""One colour per group everywhere: Compare's charts, the Report page and the report files.

Known groups (unmerged leaves, each merge method, the reference zoos — under the names Compare and the
report give them) always get the same colour; any other series takes the next unused colour of a
20-colour palette in the order given, so a chart with 11 series never repeats a colour.
"""

from __future__ import annotations

# Tableau 10 and darker partners, ordered so neighbours differ.
PALETTE = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d",
           "#bab0ac", "#1f3b73", "#c45a00", "#8c1c1c", "#2d7f7a", "#2a6e1f", "#a68a00", "#6b3a66", "#d4537f",
           "#5c4033", "#6e6e6e"]
_LEAVES, _HIER, _MM, _AVG, _PLAIN, _L1, _L2 = (PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[4], PALETTE[9],
                                                PALETTE[6], PALETTE[3])
FIXED = {
    "unmerged leaves": _LEAVES, "unmerged": _LEAVES, "unmerged (leaves)": _LEAVES,
    "hierarchical": _HIER, "merge_many": _MM, "MergeMany": _MM, "average": _AVG, "naive average": _AVG,
    "unmerged zoo": _PLAIN, "L1 zoo": _L1, "L1-regularised": _L1, "L2 zoo": _L2, "L2-regularised": _L2,
}


def colors_for(labels) -> list[str]:
    """A colour per label (in order): the fixed one for known groups, else the next unused palette colour."""
    labels = list(labels)
    used = {FIXED[label] for label in labels if label in FIXED}
    free = [c for c in PALETTE if c not in used] or PALETTE
    out, i = [], 0
    for label in labels:
        if label in FIXED:
            out.append(FIXED[label])
        else:
            out.append(free[i % len(free)])
            i += 1
    return out


def color_scale(labels) -> dict:
    """A Vega-Lite scale: {"domain": labels, "range": colors_for(labels)}."""
    labels = list(labels)
    return {"domain": labels, "range": colors_for(labels)}
