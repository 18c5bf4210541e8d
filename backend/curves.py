"""Training curves for charts: per-model points (store/train_curves.py) grouped by zoo kind with a band.

Points are epoch means (`step` missing) or means over every N training steps (`step` set, `epoch` a
fraction); `epoch_points` keeps the first (bands compare them), `live_points` the finest per model.
`curve_groups` labels every point with the group a chart colours it by ("plain zoo", "L1 zoo", "L2 zoo",
or the zoo's name when several zoos of one kind are shown); `curve_bands` gives per group and epoch the
mean, min and max over the group's models and how many there are, so one diverging seed stands out as a
line leaving its band.
"""

from __future__ import annotations

import pandas as pd

KIND_LABELS = {"plain": "plain zoo", "l1": "L1 zoo", "l2": "L2 zoo"}
BAND_COLUMNS = ["group", "epoch", "metric", "mean", "low", "high", "n"]


def curve_groups(points: pd.DataFrame) -> pd.DataFrame:
    """points + "group" (zoo kind, or "kind · zoo name" when one kind spans several zoos) and "model"
    (a label per model: "#id" once stored, else "seed N")."""
    out = points.copy()
    if out.empty:
        return out.assign(group=pd.Series(dtype=str), model=pd.Series(dtype=str))
    kinds = out["zoo_kind"].map(lambda k: KIND_LABELS.get(k, str(k)))
    zoos_per_kind = out.groupby("zoo_kind")["zoo_id"].transform("nunique")
    out["group"] = [k if n <= 1 else f"{k} · {name}" for k, n, name in zip(kinds, zoos_per_kind, out["zoo_name"],
                                                                           strict=True)]
    out["model"] = [f"#{int(m)}" if pd.notna(m) else f"seed {int(s)}" if pd.notna(s) else str(k)[:8]
                    for m, s, k in zip(out["model_id"], out["seed"], out["model_key"], strict=True)]
    return out


def epoch_points(points: pd.DataFrame) -> pd.DataFrame:
    """Only the epoch means (what bands compare: every model has one per epoch), not the step points."""
    return points[points["step"].isna()] if "step" in points.columns else points


def live_points(points: pd.DataFrame) -> pd.DataFrame:
    """Per model its step points (every N steps) when it has any, else its epoch means: the finest curve
    a running job offers, one kind per model so a line never mixes window and epoch means."""
    if "step" not in points.columns or points["step"].isna().all():
        return points
    stepped = set(points.loc[points["step"].notna(), "model_key"])
    keep = points["model_key"].isin(stepped) == points["step"].notna()
    return points[keep]


def curve_bands(points: pd.DataFrame) -> pd.DataFrame:
    """Per group, epoch and metric (loss, acc): mean, low (min), high (max) and n over the models."""
    if points.empty:
        return pd.DataFrame(columns=BAND_COLUMNS)
    long = points.melt(id_vars=["group", "epoch"], value_vars=["loss", "acc"], var_name="metric")
    out = long.groupby(["group", "epoch", "metric"], as_index=False)["value"].agg(
        mean="mean", low="min", high="max", n="count")
    return out[BAND_COLUMNS].sort_values(["metric", "group", "epoch"]).reset_index(drop=True)
