"""Vega-Lite specs for training curves: one line per model, and per group a band (min..max) with its mean."""

from __future__ import annotations

import pandas as pd

from backend.curves import curve_bands, curve_groups, epoch_points, live_points

TITLES = {"loss": "Training loss", "acc": "Training accuracy"}


def curve_chart(points: pd.DataFrame, metric: str, *, band: bool = True) -> dict:
    """Lines per model (thin) coloured by group; with `band`, each group's min..max area and mean line over
    the epoch means; without (a running job), each model's finest points (every N steps when recorded)."""
    chosen = epoch_points(points) if band else live_points(points)
    stepped = "step" in chosen.columns and chosen["step"].notna().any()
    pts = curve_groups(chosen)
    lines = pts[["group", "model", "epoch", metric]].rename(columns={metric: "value"})
    y_title = TITLES[metric]
    color = {"field": "group", "type": "nominal", "title": "group"}
    x = {"field": "epoch", "type": "quantitative", "title": "epoch", "axis": {"tickMinStep": 1, "format": "d"}}
    layers = [{"data": {"name": "lines"}, "mark": {"type": "line", "point": not stepped, "strokeWidth": 1,
                                                   "opacity": 0.6},
               "encoding": {"x": x, "y": {"field": "value", "type": "quantitative", "title": y_title,
                                          "scale": {"zero": False}, "axis": {"format": ".3~f"}},
                            "color": color, "detail": {"field": "model"},
                            "tooltip": [{"field": "group"}, {"field": "model"},
                                        {"field": "epoch", "format": ".2f" if stepped else "d"},
                                        {"field": "value", "format": ".4f", "title": metric}]}}]
    datasets = {"lines": lines}
    if band:
        bands = curve_bands(pts)
        bands = bands[(bands["metric"] == metric) & (bands["n"] > 1)]
        if not bands.empty:
            datasets["bands"] = bands
            layers = [{"data": {"name": "bands"}, "mark": {"type": "area", "opacity": 0.18},
                       "encoding": {"x": x, "y": {"field": "low", "type": "quantitative"},
                                    "y2": {"field": "high"}, "color": color}},
                      {"data": {"name": "bands"}, "mark": {"type": "line", "strokeWidth": 2.5},
                       "encoding": {"x": x, "y": {"field": "mean", "type": "quantitative"}, "color": color,
                                    "tooltip": [{"field": "group"}, {"field": "epoch"},
                                                {"field": "mean", "format": ".4f"}, {"field": "n"}]}},
                      *layers]
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": {"text": y_title, "subtitle": "per epoch; band: min..max of each group, thick line: mean"
                      if band else ("every few training steps" if stepped else "per epoch") + ", one line per model"},
            "layer": layers, "height": 260, "datasets": datasets}
    return spec
