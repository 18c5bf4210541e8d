"""Charts as files: every Vega-Lite chart (Compare, the Report page, report files, `export --figures`) is
written as SVG, PNG or PDF by this one helper, with vl-convert (no browser, no network)."""

from __future__ import annotations

import json

import pandas as pd

FIGURE_FORMATS = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}


def portable(spec: dict) -> dict:
    """The spec with its datasets inline as JSON records, as a file or vl-convert needs it (the page ships
    DataFrames as Arrow instead)."""
    out = dict(spec)
    if "datasets" in out:
        out["datasets"] = {name: json.loads(df.to_json(orient="records", double_precision=15))
                           if isinstance(df, pd.DataFrame) else df for name, df in out["datasets"].items()}
    return out


def figure_bytes(spec: dict, fmt: str, *, width: int = 640, scale: float = 2.0) -> bytes:
    """The chart as an SVG, PNG (`scale` × its pixel size) or PDF file. A chart that fills its container
    (Compare's) is drawn `width` px wide; one with its own width or panels (the report's) keeps its size."""
    import vl_convert as vlc

    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"a figure is saved as {', '.join(FIGURE_FORMATS)}, not {fmt!r}")
    static = portable(spec)
    if "width" not in static and not any(k in static for k in ("facet", "hconcat", "vconcat", "concat")):
        static = {**static, "width": width, "autosize": {"type": "fit-x", "contains": "padding"}}
    text = json.dumps(static)
    if fmt == "svg":
        return vlc.vegalite_to_svg(text).encode()
    if fmt == "png":
        return vlc.vegalite_to_png(text, scale=scale)
    return vlc.vegalite_to_pdf(text)


def figure_name(index: int, title: str, fmt: str = "png") -> str:
    """'01-accuracy-per-level.png': a stable, portable file name for a numbered figure."""
    return f"{index:02d}-{slug(title)}.{fmt}"


def slug(title: str) -> str:
    """'Accuracy per level' -> 'accuracy-per-level' (ASCII letters and digits, at most 60 characters)."""
    text = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in title.lower())
    return "-".join(part for part in text.split("-") if part)[:60] or "figure"
