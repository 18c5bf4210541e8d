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


EXECUTOR_LABELS = {"local": "this machine", "ray": "Ray cluster"}


def executor_input(key: str, container=None) -> dict | None:
    """'Run on': this machine or a Ray cluster (offered only when Ray is installed) and the cluster's
    address; returns the executor settings for start_job (None: this machine)."""
    from backend.jobs.executors import ray_available

    if not ray_available():
        return None
    container = container or st
    c1, c2 = container.columns([1, 1])
    kind = c1.radio("Run on", tuple(EXECUTOR_LABELS), format_func=EXECUTOR_LABELS.get, horizontal=True,
                    key=f"{key}-executor",
                    help="Ray cluster: the job's units (train seeds, trees, evaluation batches) run as Ray "
                         "tasks; this machine's worker stores their results. See README, 'Running on a cluster'.")
    # always shown (inside a form, a field cannot appear when the radio changes); used for the Ray cluster only
    address = c2.text_input("Ray address", key=f"{key}-ray-address", placeholder="HOST:PORT (Ray cluster only)",
                            help="The head node's address as `ray start --head` prints it, or 'auto'. "
                                 "Blank: RAY_ADDRESS, else a local Ray cluster started for the job.")
    if kind == "local":
        return None
    return {"kind": "ray", "address": address.strip() or None}


def start_job(spec, what: str, executor: dict | None = None) -> int | None:
    """Submit a job spec (on `executor`, see executor_input); bad input or an unreachable cluster is shown
    as st.error (never a traceback). Returns the job id or None."""
    from backend.jobs.executors import ExecutorError
    from backend.jobs.queue import submit_job

    try:
        job_id, joined = submit_job(spec, executor)
    except (ValueError, ExecutorError) as err:
        st.error(f"Could not start the {md(what)}: {md(err)}")
        return None
    reads.clear()
    st.session_state[LAST_JOB] = job_id
    if joined:
        st.info(f"The same {md(what)} is already queued or running as job #{job_id}: following that one.")
    else:
        st.success(f"Started {md(what)} as job #{job_id}. Follow it on the Runs page.")
    st.page_link("views/runs.py", label="Open Runs", icon=":material/timer:", query_params={"jobs": str(job_id)})
    return job_id


ESTIMATE_SOURCES = {"measured": "from rates jobs measured on this machine",
                    "partly measured": "partly from rates jobs measured here, partly from the cost model",
                    "calibrated": "from a calibration of this machine; no job measured here yet",
                    "default": "from default rates of a 2-core reference machine; no job measured here yet"}


def estimate_text(est: dict, *, stored: bool = True) -> str:
    """'about 3 min (2–5 min)': backend.estimate's figure and range, the same words on every page; then, when
    part of the work is already stored (and `stored`), '— 12 of 16 models already stored' (stored_note)."""
    from backend.estimate import describe_range

    return describe_range({"total": est["seconds"], "low": est["low"], "high": est["high"],
                           "cached": est.get("cached")}, stored=stored)


def estimate_caption(spec) -> None:
    """'Estimated time here: about 3 min (2–5 min), …' under a builder's form for a job spec not started yet
    (nothing when it cannot be estimated)."""
    from app.ui.reads import spec_estimate

    est = spec_estimate(spec)
    if est is not None:
        st.caption(f"Estimated time here: {estimate_text(est)}, {ESTIMATE_SOURCES[est['source']]}.")


def stored_note(est: dict) -> str:
    """'12 of 16 models already stored' (why an estimate is short), or '' when nothing of the job is stored."""
    from backend.estimate import stored_text

    return stored_text(est.get("cached"))


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


# ---- widgets derived from a config's declaration (backend/options.py) ---------------------------------------

_UNSET = object()


def field_input(cls, name: str, *, key: str, container=st, default=_UNSET, show=None):
    """The widget of one declared config field, keyed `{key}-{name}`: a checkbox for a flag, a select box for
    choices (multiselect for a list of names), a number box for a number (0 = None where None is allowed),
    a text box for a list (JSON for a structured field). Label, help, bounds, step and format come from the declaration; `default`
    overrides the declared default (a page's own starting point), `show` the choice labels. Returns the raw
    value (field_value parses it)."""
    from backend.options import declared_field, show_value

    d = declared_field(cls, name)
    value = d.default if default is _UNSET else default
    opt, wkey = d.opt, f"{key}-{name}"
    show = show or opt.show or str
    if d.kind == "bool" and not d.nullable:
        return container.checkbox(d.label, value=bool(value), key=wkey, help=opt.help)
    if d.kind == "bool":
        states = [None, True, False]
        return container.selectbox(d.label, states, index=states.index(value), key=wkey, help=opt.help,
                                   format_func=lambda v: opt.none if v is None else ("on" if v else "off"))
    if d.kind == "str" and opt.choices:
        return container.selectbox(d.label, opt.choices, index=list(opt.choices).index(value), key=wkey,
                                   help=opt.help, format_func=show)
    if d.kind == "strs" and opt.choices:
        return container.multiselect(d.label, opt.choices, default=list(value), key=wkey, help=opt.help,
                                     format_func=show)
    if d.kind in ("int", "float"):
        number = int if d.kind == "int" else float
        low = opt.low if opt.low is not None else (opt.above if opt.above is not None else None)
        label = f"{d.label} (0 = {opt.none})" if d.nullable else d.label
        if d.nullable:
            low, value = 0, 0 if value is None else value
        kwargs = {"min_value": None if low is None else number(low),
                  "max_value": None if opt.high is None else number(opt.high)}
        if opt.step is not None:
            kwargs["step"] = number(opt.step)
        if opt.format is not None:
            kwargs["format"] = opt.format
        return container.number_input(label, value=number(value), key=wkey, help=opt.help, **kwargs)
    text = value if isinstance(value, str) else show_value(d, value)
    text = text if d.kind == "json" else text.replace(",", ", ")  # a page's own default shows, not the declared one
    return container.text_input(d.label, value=text, key=wkey, help=opt.help)


def field_value(cls, name: str, raw):
    """A widget's raw value as the config field's value (ValueError, in the declaration's words, when the
    field alone is wrong: a bad list, a number out of bounds)."""
    from backend.options import check_field, declared_field, parse_text

    d = declared_field(cls, name)
    if isinstance(raw, str) and (d.kind in ("ints", "floats", "strs", "json") or d.opt.parse is not None):
        value = parse_text(d, raw, d.what[:1].upper() + d.what[1:])  # a text box
    elif d.kind == "strs":
        value = tuple(raw)  # a multiselect
    elif d.kind in ("int", "float") and raw is not None:
        value = int(raw) if d.kind == "int" else float(raw)
        value = None if d.nullable and value == 0 else value
    else:
        value = raw
    try:
        check_field(d, value)
    except ValueError as err:
        text = str(err)
        raise ValueError(text[:1].upper() + text[1:]) from None
    return value


def config_inputs(cls, key: str, *, defaults: dict | None = None, names=None, more=(), columns: int = 3,
                  container=st) -> dict:
    """Widgets for a declared config (every user option, or `names`), `columns` per row, the `more` ones in a
    "More settings" expander; each field's error is shown under it. Returns {name: value}, or raises
    ValueError naming every field that needs fixing (the config's own cross-field check is the caller's,
    by constructing it)."""
    from backend.options import declared

    defaults = defaults or {}
    wanted = [d.name for d in declared(cls) if not d.opt.internal and (names is None or d.name in names)]
    main = [n for n in wanted if n not in more]
    raws = {}
    for group, place in ((main, container), ([n for n in wanted if n in more], None)):
        if not group:
            continue
        if place is None:
            place = container.expander("More settings")
        cols = place.columns(columns)
        for i, name in enumerate(group):
            column = cols[i % columns]
            raws[name] = (column, field_input(cls, name, key=key, container=column,
                                              default=defaults.get(name, _UNSET)))
    values, errors = {}, []
    for name, (column, raw) in raws.items():
        try:
            values[name] = field_value(cls, name, raw)
        except ValueError as err:
            column.error(md(err))
            errors.append(str(err))
    if errors:
        raise ValueError(f"{len(errors)} field(s) need fixing (see above): " + "; ".join(errors))
    return values


EVAL_MORE = ("deepfool_candidates", "deepfool_overshoot", "noise_seed", "lipschitz_radius", "batch_size",
             "pgd_steps", "apgd_steps", "attack_restarts", "attack_seed", "certify_method")


def eval_config_inputs(key: str, *, subset_default: int = 1000):
    """Widgets for an EvalConfig (derived from its declaration); returns the config, or raises ValueError with
    what is wrong."""
    from backend.evaluate.config import EvalConfig

    return EvalConfig(**config_inputs(EvalConfig, key, defaults={"subset": subset_default}, more=EVAL_MORE,
                                      columns=2))


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
