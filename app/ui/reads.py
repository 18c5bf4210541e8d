"""Cached store reads for the pages.

st.cache_data hands every caller its own copy of a cached frame, so pages may filter and add columns
freely. TTLs are short: workers write the store from other processes, and a cached read must never hide
a finished job for long. `clear()` drops everything after this session starts or cancels a job.
Each cached function takes the store home as its first argument so two stores (tests, several labs in one
process) never share cache entries; the public functions fill it in.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backend import labels, levels, listings
from store import db
from store import jobs as store_jobs
from store import status as store_status
from store import zoos as store_zoos
from store.paths import home_dir

FAST = 3  # seconds: counts and jobs (Runs polls these)
SLOW = 15  # seconds: tables that change only when a job finishes


def _home() -> str:
    return str(home_dir())


@st.cache_data(ttl=FAST, show_spinner=False)
def _counts(home: str) -> dict:
    return store_status.counts()


@st.cache_data(ttl=FAST, show_spinner=False)
def _jobs(home: str, limit: int) -> pd.DataFrame:
    return store_jobs.list_jobs(limit=limit)


@st.cache_data(ttl=SLOW, show_spinner=False)
def _zoos(home: str) -> pd.DataFrame:
    return store_zoos.list_zoos()


@st.cache_data(ttl=SLOW, show_spinner=False)
def _trees(home: str) -> pd.DataFrame:
    return listings.trees_table()


@st.cache_data(ttl=SLOW, show_spinner=False)
def _models_table(home: str, kind: str | None, dataset: str | None) -> pd.DataFrame:
    return listings.models_table(kind=kind, dataset=dataset)


@st.cache_data(ttl=SLOW, show_spinner=False)
def _level_metrics(home: str, tree_ids: tuple, zoo_ids: tuple, eval_key: str | None) -> pd.DataFrame:
    return levels.level_metrics(tree_ids=list(tree_ids), zoo_ids=list(zoo_ids), eval_key=eval_key)


@st.cache_data(ttl=SLOW, show_spinner=False)
def _tree_node_table(home: str, tree_id: int, eval_key: str | None) -> pd.DataFrame:
    return listings.tree_node_table(tree_id, eval_key)


@st.cache_data(ttl=SLOW, show_spinner=False)
def _members(home: str, tree_ids: tuple, zoo_ids: tuple) -> pd.DataFrame:
    return levels.level_members(tree_ids=list(tree_ids), zoo_ids=list(zoo_ids))


@st.cache_data(ttl=SLOW, show_spinner=False)
def _eval_keys(home: str, tree_ids: tuple, zoo_ids: tuple) -> pd.DataFrame:
    with db.connect():
        return levels.eval_keys(levels.level_members(tree_ids=list(tree_ids), zoo_ids=list(zoo_ids)))


@st.cache_data(ttl=SLOW, show_spinner=False)
def _summary(home: str, tree_ids: tuple, zoo_ids: tuple, eval_key: str, split: tuple = ()) -> pd.DataFrame:
    with db.connect():
        return levels.selection_summary(tree_ids, zoo_ids, eval_key, split)


@st.cache_data(ttl=SLOW, show_spinner=False)
def _points(home: str, tree_ids: tuple, eval_key: str, metrics: tuple, split: tuple = ()) -> pd.DataFrame:
    with db.connect():
        return levels.selection_points(tree_ids, eval_key, metrics, split)


@st.cache_data(ttl=SLOW, show_spinner=False)
def _selection_eval_labels(home: str, tree_ids: tuple, zoo_ids: tuple) -> dict:
    with db.connect():
        keys = levels.eval_keys(levels.level_members(tree_ids=list(tree_ids), zoo_ids=list(zoo_ids)))
        return labels.eval_config_labels(keys)


@st.cache_data(ttl=SLOW, show_spinner=False)
def _coverage(home: str, tree_ids: tuple, zoo_ids: tuple) -> pd.DataFrame:
    with db.connect():
        return levels.eval_coverage(levels.level_members(tree_ids=list(tree_ids), zoo_ids=list(zoo_ids)))


@st.cache_data(ttl=FAST * 10, show_spinner=False)
def _preset_estimate(home: str, preset: str, dataset: str, calibration_mtime: float) -> dict:
    from backend.estimate import estimate_breakdown
    from backend.experiment import plan_for

    est = estimate_breakdown(plan_for(preset, dataset), measure=False)
    return {"seconds": float(est["total"]), "low": float(est["low"]), "high": float(est["high"]),
            "source": est["source"], "calibrated": bool(est["calibrated"]), "cached": est.get("cached", {})}


@st.cache_data(ttl=FAST * 10, show_spinner=False)
def _job_estimate(home: str, job_id: int, kind: str, spec_json: str, started: str | None) -> dict | None:
    from datetime import datetime

    from backend.estimate import job_estimate
    from store.jsonutil import decoded

    try:
        spec = decoded(spec_json)
    except ValueError:  # a damaged spec has no estimate (Runs shows it as unreadable)
        return None
    est = job_estimate(kind, spec, before=None if started is None else datetime.fromisoformat(started))
    return None if est is None else {"seconds": float(est["total"]), "low": float(est["low"]),
                                     "high": float(est["high"]), "source": est["source"],
                                     "cached": est.get("cached", {})}


@st.cache_data(ttl=SLOW, show_spinner=False)
def _eval_labels(home: str) -> dict:
    from backend.runs import eval_label
    from store import evaluations as store_evals
    from store.jsonutil import decoded

    configs = store_evals.list_eval_configs()
    return {k: eval_label(decoded(c), k) for k, c in zip(configs["key"], configs["config"], strict=True)}


@st.cache_data(ttl=FAST, show_spinner=False)
def _train_curves(home: str, zoo_ids: tuple, model_ids: tuple) -> pd.DataFrame:
    from store import train_curves

    return train_curves.curves(zoo_ids=zoo_ids, model_ids=model_ids)


@st.cache_data(ttl=FAST, show_spinner=False)
def _experiments(home: str) -> pd.DataFrame:
    from store import experiments as store_exps

    return store_exps.list_experiments()


def experiments() -> pd.DataFrame:
    """store.experiments.list_experiments(): every experiment with its status."""
    return _experiments(_home())


def eval_labels() -> dict:
    """eval_key -> 'a1b2c3d4 · 300 test images' for every registered evaluation config."""
    return _eval_labels(_home())


def train_curves(*, zoo_ids=(), model_ids=()) -> pd.DataFrame:
    """Training-curve points (store/train_curves.py) of these zoos or models."""
    return _train_curves(_home(), _ids(zoo_ids), _ids(model_ids))


def counts() -> dict:
    return _counts(_home())


def jobs(limit: int = 200) -> pd.DataFrame:
    return _jobs(_home(), limit)


def zoos() -> pd.DataFrame:
    return _zoos(_home())


def trees() -> pd.DataFrame:
    """listings.trees_table(): tree_id, method, n_leaves, root_model_id, experiment_id, created_at, label."""
    return _trees(_home())


def models_table(kind: str | None = None, dataset: str | None = None) -> pd.DataFrame:
    return _models_table(_home(), kind, dataset)


def level_metrics(tree_ids: tuple = (), zoo_ids: tuple = (), eval_key: str | None = None) -> pd.DataFrame:
    return _level_metrics(_home(), tuple(int(t) for t in tree_ids), tuple(int(z) for z in zoo_ids), eval_key)


def tree_node_table(tree_id: int, eval_key: str | None = None) -> pd.DataFrame:
    return _tree_node_table(_home(), int(tree_id), eval_key)


def _ids(values) -> tuple:
    return tuple(int(v) for v in values)


def members(tree_ids=(), zoo_ids=()) -> pd.DataFrame:
    """levels.level_members of the selection: who is in it, with level and group."""
    return _members(_home(), _ids(tree_ids), _ids(zoo_ids))


def eval_keys(tree_ids=(), zoo_ids=()) -> pd.DataFrame:
    """Evaluation configs the selection has results for (eval_key, n_models, n_rows), most models first."""
    return _eval_keys(_home(), _ids(tree_ids), _ids(zoo_ids))


def selection_eval_labels(tree_ids=(), zoo_ids=()) -> dict:
    """eval_key -> human label (subset, grids, attack settings, models with results, when) for the selection."""
    return _selection_eval_labels(_home(), _ids(tree_ids), _ids(zoo_ids))


def coverage(tree_ids=(), zoo_ids=()) -> pd.DataFrame:
    """levels.eval_coverage of the selection: source ("tree 3" / "zoo 2"), eval_key, n_models."""
    return _coverage(_home(), _ids(tree_ids), _ids(zoo_ids))


def summary(tree_ids, zoo_ids, eval_key: str, split=()) -> pd.DataFrame:
    """Mean/std/n per group × level × metric × param, aggregated in DuckDB (levels.level_summary): every
    tree's leaves form one "unmerged leaves" group, carried nodes are left out, n counts distinct models."""
    return _summary(_home(), _ids(tree_ids), _ids(zoo_ids), eval_key, tuple(split))


def points(tree_ids, eval_key: str, metrics, split=()) -> pd.DataFrame:
    """Per-model values of the trees' nodes (leaves as one group) for scatter layers: a few dozen rows."""
    return _points(_home(), _ids(tree_ids), eval_key, tuple(metrics), tuple(split))


def _calibration_mtime() -> float:
    path = home_dir() / "calibration.json"
    return path.stat().st_mtime if path.exists() else 0.0


def preset_estimate_detail(preset: str, dataset: str) -> dict:
    """{"seconds", "low", "high", "source", "calibrated", "cached"} for a preset (backend.estimate, the one source
    of time estimates): only the work not already stored; rates jobs measured here, else a calibration cached on
    disk, else DEFAULT_RATES; never times the machine during a render (see calibrate())."""
    return _preset_estimate(_home(), preset, dataset, _calibration_mtime())


def job_estimate(job_id: int, kind: str, spec, started_at=None) -> dict | None:
    """{"seconds", "low", "high", "source", "cached"} the job should take (None when it cannot be estimated):
    the work the store did not hold when it started (`started_at`; None: a job not started yet, so now)."""
    import json

    import pandas as pd

    text = spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True)
    started = None if started_at is None or pd.isna(started_at) else pd.Timestamp(started_at).isoformat()
    return _job_estimate(_home(), int(job_id), kind, text, started)


def spec_estimate(spec) -> dict | None:
    """The estimate of a job spec not started yet (a builder's "this will take …"), as job_estimate."""
    return job_estimate(0, spec.kind, spec.to_dict())


def calibrate(presets: dict, *, fresh: bool = False) -> None:
    """Time this machine for every preset's architecture (seconds of compute; only on explicit request).
    fresh: forget the previous calibration first."""
    from backend.estimate import estimate_breakdown, forget_calibration

    if fresh:
        forget_calibration()
    for plan in presets.values():
        estimate_breakdown(plan, measure=True)
    _preset_estimate.clear()


@st.cache_data(ttl=3600, show_spinner=False)
def dataset_status(name: str) -> str:
    from backend.data import dataset_status as status

    return status(name)


def clear() -> None:
    st.cache_data.clear()


@st.cache_data(ttl=SLOW, show_spinner=False)
def _pair_curves(home: str, pairs: tuple) -> pd.DataFrame:
    from store.curves import curves

    return curves(pairs=list(pairs))


@st.cache_data(ttl=SLOW, show_spinner=False)
def _tree_curves(home: str, tree_id: int) -> pd.DataFrame:
    from backend.curve_queries import tree_curves

    return tree_curves([tree_id])


@st.cache_data(ttl=SLOW, show_spinner=False)
def _node_barriers(home: str, tree_id: int) -> pd.DataFrame:
    from backend.curve_queries import node_barrier_columns

    return node_barrier_columns(tree_id)


def pair_curves(pairs) -> pd.DataFrame:
    """Stored interpolation rows (store.curves.COLUMNS) of these (model_a, model_b) pairs, every config."""
    return _pair_curves(_home(), tuple((int(a), int(b)) for a, b in pairs))


def tree_curves(tree_id: int) -> pd.DataFrame:
    """Interpolation rows of every merged node's parent pair, tagged with node_id and level."""
    return _tree_curves(_home(), int(tree_id))


def node_barriers(tree_id: int) -> pd.DataFrame:
    """Per merged node: its parents' barriers as columns (for colouring the tree)."""
    return _node_barriers(_home(), int(tree_id))


@st.cache_data(ttl=SLOW, show_spinner=False)
def _barrier_levels(home: str, tree_ids: tuple):
    from backend.curve_queries import barrier_level_frames

    return barrier_level_frames(list(tree_ids))


def barrier_levels(tree_ids):
    """(summary, points, curve key) of the trees' parent barriers per level (backend.curve_queries)."""
    return _barrier_levels(_home(), _ids(tree_ids))
