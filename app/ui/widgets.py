"""Small pieces every page shares: table downloads, starting/cancelling jobs, parsing typed lists."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.ui import reads
from app.ui.text import md
from backend.export import FILE_SUFFIX, FORMATS, MIME_TYPES, export_bytes

FORMAT_LABELS = {"csv": "CSV", "parquet": "Parquet", "markdown": "Markdown", "latex": "LaTeX"}
# session_state keys shared between pages
LAST_JOB = "last_job_id"  # the job this session started most recently
SELECTED_MODELS = "selected_model_ids"  # Zoo table selection -> Merge builder
COMPARE_TREES = "compare_tree_ids"  # Runs -> Compare
COMPARE_ZOOS = "compare_zoo_ids"
TREE_ID = "tree_view_id"  # Runs/Compare -> Tree view


def download_buttons(df: pd.DataFrame, basename: str, *, key: str) -> None:
    """One download button per export format, side by side. The bytes are made only when a button is
    clicked (deferred data), so a page with a big table does not serialise it four times per render."""
    cols = st.columns(len(FORMATS))
    for col, fmt in zip(cols, FORMATS, strict=True):
        col.download_button(FORMAT_LABELS[fmt], data=lambda fmt=fmt: export_bytes(df, fmt), icon=":material/download:",
                            file_name=f"{basename}{FILE_SUFFIX[fmt]}", mime=MIME_TYPES[fmt],
                            key=f"{key}-{fmt}", on_click="ignore", width="stretch")


def chart_with_downloads(container, spec: dict, basename: str, *, key: str, width: str = "stretch") -> None:
    """Draw a Vega-Lite chart with SVG / PNG / PDF download buttons under it (Compare and the Report page
    alike); the file is rendered (backend.figures, vl-convert) only when its button is clicked."""
    from backend.figures import FIGURE_FORMATS, figure_bytes

    container.vega_lite_chart(spec=spec, width=width)
    cols = container.columns(len(FIGURE_FORMATS))
    for col, (fmt, mime) in zip(cols, FIGURE_FORMATS.items(), strict=True):
        col.download_button(fmt.upper(), data=lambda fmt=fmt: figure_bytes(spec, fmt), file_name=f"{basename}.{fmt}",
                            mime=mime, key=f"{key}-{fmt}", on_click="ignore", width="stretch",
                            icon=":material/image:")


def start_job(spec, what: str) -> int | None:
    """Submit a job spec; bad input is shown as st.error (never a traceback). Returns the job id or None."""
    from backend.jobs.queue import submit_job

    try:
        job_id, joined = submit_job(spec)
    except ValueError as err:
        st.error(f"Could not start the {md(what)}: {md(err)}")
        return None
    reads.clear()
    st.session_state[LAST_JOB] = job_id
    if joined:
        st.info(f"The same {md(what)} is already queued or running as job #{job_id}: following that one.")
    else:
        st.success(f"Started {md(what)} as job #{job_id}. Follow it on the Runs page.")
    st.page_link("pages/runs.py", label="Open Runs", icon=":material/timer:", query_params={"jobs": str(job_id)})
    return job_id


ESTIMATE_SOURCES = {"measured": "from rates jobs measured on this machine",
                    "partly measured": "partly from rates jobs measured here, partly from the cost model",
                    "calibrated": "from a calibration of this machine; no job measured here yet",
                    "default": "from default rates of a 2-core reference machine; no job measured here yet"}


def estimate_text(est: dict) -> str:
    """'about 3 min (2–5 min)': backend.estimate's figure and range, the same words on every page."""
    from backend.estimate import describe_range

    return describe_range({"total": est["seconds"], "low": est["low"], "high": est["high"]})


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    """'128, 64' -> (128, 64); ValueError with a readable sentence otherwise."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{what} must be whole numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"{what} must be one or more positive whole numbers, got {text!r}")
    return values


def parse_floats(text: str, what: str) -> tuple[float, ...]:
    """'0, 0.01, 0.02' -> (0.0, 0.01, 0.02); the grids of the evaluation forms."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{what} must be numbers separated by commas, got {text!r}") from None
    if not values:
        raise ValueError(f"{what} needs at least one number")
    if min(values) < 0:
        raise ValueError(f"{what} must not contain negative numbers, got {text!r}")
    return values


def grid_text(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def eval_config_inputs(key: str, *, subset_default: int = 1000):
    """Widgets for an EvalConfig; returns the config, or raises ValueError with what is wrong."""
    from backend.evaluate.config import EvalConfig
    from backend.metrics import ALL_METRICS, METRICS, ROW_METRIC, grid_rows

    c1, c2 = st.columns(2)
    metrics = c1.multiselect("Metrics", ALL_METRICS, default=list(ALL_METRICS), key=f"{key}-metrics",
                             format_func=lambda m: METRICS[m].label)
    subset = c2.number_input("Test subset (0 = whole test split)", min_value=0, value=subset_default,
                             step=100, key=f"{key}-subset",
                             help="The first N test samples, in a fixed order, for every model.")
    defaults = EvalConfig()
    texts = {}  # one text box per curve metric's grid (catalogue order, two per row); parsed after all widgets
    columns = st.columns(2)
    for i, (name, row) in enumerate(grid_rows().items()):
        column = columns[i % 2]
        texts[name] = (row.symbol or row.budget, column.text_input(
            f"{row.budget} grid ({row.param_unit})", grid_text(getattr(defaults, name)),
            key=f"{key}-{ROW_METRIC[row.name]}"), column)
    o1, o2, o3 = st.columns(3)
    steps = o1.number_input("DeepFool steps", min_value=1, value=defaults.deepfool_steps, key=f"{key}-steps")
    points = o2.number_input("Local Lipschitz points", min_value=1, value=defaults.lipschitz_points,
                             key=f"{key}-lpoints")
    radius = o3.number_input("Local Lipschitz radius (L2)", min_value=0.0, value=defaults.lipschitz_radius,
                             format="%.3f", key=f"{key}-lradius")
    errors = []

    def grid(text: str, what: str, column):
        """Parse one grid; a bad one shows its error right under its field (all of them at once)."""
        try:
            return parse_floats(text, what)
        except ValueError as err:
            column.error(md(err))
            errors.append(str(err))
            return None

    grids = {name: grid(text, f"The {budget} grid", column) for name, (budget, text, column) in texts.items()}
    if not metrics:
        c1.error("Choose at least one metric.")
        errors.append("choose at least one metric")
    if errors:
        raise ValueError(f"{len(errors)} field(s) need fixing (see above): " + "; ".join(errors))
    return EvalConfig(metrics=tuple(metrics), subset=int(subset) or None, **grids, deepfool_steps=int(steps),
                      lipschitz_points=int(points), lipschitz_radius=float(radius))


def merge_option_input(option, container=st):
    """The widget of one registered merge option (backend.merge.registry.MergeOption), keyed by its name:
    a slider for bounded numbers, a select box for choices, a checkbox for flags, a number box otherwise."""
    if isinstance(option.default, bool):
        return container.checkbox(option.label, value=option.default, key=option.name, help=option.help)
    if option.choices is not None:
        return container.selectbox(option.label, option.choices, index=option.choices.index(option.default),
                                   key=option.name, help=option.help)
    if option.bounds is not None:
        low, high, step = option.bounds
        return float(container.slider(option.label, low, high, float(option.default), step, key=option.name,
                                      help=option.help))
    if isinstance(option.default, int):
        return int(container.number_input(option.label, min_value=0, value=option.default, key=option.name,
                                          help=option.help))
    return container.text_input(option.label, value=str(option.default), key=option.name, help=option.help)
