"""How metrics and evaluation configs are named for a reader: metric titles, `metric@param` column names
and a human label per evaluation config. Shared by the listings, the comparison tables and the app."""

from __future__ import annotations

import pandas as pd

from backend.metrics import CURVE_ROWS, METRICS, ROWS, grid_rows
from store import reads as store_reads
from store.jsonutil import decoded

# Read from the metric catalogue (backend/metrics.py): curves with their x-axis title, every row's title.
CURVE_METRICS = {name: ROWS[name].axis for name in CURVE_ROWS}
METRIC_TITLES = {name: row.title for name, row in ROWS.items()}


def metric_label(metric: str, param) -> str:
    """'fgsm_acc@0.01': a metric row's column name (the metric alone when it has no parameter)."""
    return metric if param is None or pd.isna(param) else f"{metric}@{param:g}"


def _grid_text(values) -> str:
    values = [float(v) for v in values or []]
    if not values:
        return "none"
    return f"{values[0]:g}…{values[-1]:g} ({len(values)})" if len(values) > 2 else ", ".join(f"{v:g}" for v in values)


def eval_config_label(config: dict | None, n_models: int | None = None, when=None) -> str:
    """A human name for an evaluation config: test subset, grids, attack settings, how many models, when."""
    if not config:
        return "unregistered config" + (f" · {n_models} models" if n_models is not None else "")
    subset = config.get("subset")
    metrics = config.get("metrics")
    asked = set(metrics) if metrics is not None else set(METRICS)
    parts = [f"test subset {subset}" if subset else "whole test split"]
    # each parameter grid a requested metric uses, named as the catalogue names it ("FGSM ε", "noise σ")
    parts += [f"{row.symbol or row.budget} {_grid_text(config.get(grid))}" for grid, row in grid_rows().items()
              if any(METRICS[m].grid == grid for m in asked if m in METRICS) and config.get(grid) is not None]
    if asked & {"deepfool_linf", "deepfool_l2"} and config.get("deepfool_steps") is not None:
        parts.append(f"DeepFool {config.get('deepfool_steps')} steps")
    if metrics is not None and len(metrics) < 8:
        parts.append("metrics " + ", ".join(metrics))
    if n_models is not None:
        parts.append(f"{n_models} models")
    if when is not None and not pd.isna(when):
        parts.append(pd.Timestamp(when).strftime("%Y-%m-%d %H:%M"))
    return " · ".join(parts)


def eval_config_labels(keys_frame: pd.DataFrame) -> dict[str, str]:
    """eval_key -> human label (with its model count from `keys_frame`: eval_key, n_models)."""
    if keys_frame.empty:
        return {}
    rows = store_reads.eval_config_rows(keys_frame["eval_key"].tolist())
    info = {k: (decoded(c, None), t) for k, c, t in zip(rows["key"], rows["config"], rows["first_at"], strict=True)}
    return {k: eval_config_label(*info.get(k, (None, None))[:1], int(n), info.get(k, (None, None))[1])
            for k, n in zip(keys_frame["eval_key"], keys_frame["n_models"], strict=True)}

