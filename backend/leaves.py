"""Which stored models can be merged or interpolated together: one check, one sentence.

Weight matching and interpolation pair up parameters tensor by tensor, so the models must share the dataset
(input shape and classes) and the hidden widths. The job preflight, the merge step and the Merge builder all
ask `compatibility_problem`, so each says the same thing. Torch-free: the app imports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from store.jsonutil import decoded


def widths_label(widths: Any) -> str:
    """Hidden widths as the app shows them ("512-512-256"), from a list, its stored JSON text or that label."""
    if isinstance(widths, str) and not widths.lstrip().startswith("["):
        return widths  # already a label (the widths column of listings.models_table)
    return "-".join(str(w) for w in decoded(widths, []))


def compatibility_problem(rows: Iterable[Mapping[str, Any]], verb: str = "merge") -> str | None:
    """Why these models cannot be combined, as one sentence ("cannot <verb> models trained on different
    datasets (...) and with different widths (...); ..."), or None when they can. `rows`: model rows with
    `dataset` and `widths` (see widths_label), in leaf order; `verb`: "merge", "interpolate between"."""
    rows = list(rows)
    datasets = list(dict.fromkeys(str(r["dataset"]) for r in rows))  # in the order the leaves name them
    widths = list(dict.fromkeys(widths_label(r["widths"]) for r in rows))
    differences = []
    if len(datasets) > 1:
        differences.append(f"trained on different datasets ({', '.join(datasets)})")
    if len(widths) > 1:
        differences.append(f"with different widths ({', '.join(widths)})")
    if not differences:
        return None
    return (f"cannot {verb} models {' and '.join(differences)}; their layers are paired tensor by tensor, so "
            "choose models of one dataset and one set of widths (e.g. of one zoo)")
