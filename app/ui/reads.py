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

from backend import queries
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
    return queries.trees_table()


@st.cache_data(ttl=SLOW, show_spinner=False)
def _models_table(home: str, kind: str | None, dataset: str | None) -> pd.DataFrame:
    return queries.models_table(kind=kind, dataset=dataset)


@st.cache_data(ttl=SLOW, show_spinner=False)
def _level_metrics(home: str, tree_ids: tuple, zoo_ids: tuple, eval_key: str | None) -> pd.DataFrame:
    return queries.level_metrics(tree_ids=list(tree_ids), zoo_ids=list(zoo_ids), eval_key=eval_key)


@st.cache_data(ttl=SLOW, show_spinner=False)
def _tree_node_table(home: str, tree_id: int, eval_key: str | None) -> pd.DataFrame:
    return queries.tree_node_table(tree_id, eval_key)


@st.cache_data(ttl=3600, show_spinner="Timing this machine for honest estimates…")
def _preset_estimate(home: str, preset: str, dataset: str) -> float:
    from backend.experiment import estimate_seconds, plan_for

    return estimate_seconds(plan_for(preset, dataset))


def counts() -> dict:
    return _counts(_home())


def jobs(limit: int = 200) -> pd.DataFrame:
    return _jobs(_home(), limit)


def zoos() -> pd.DataFrame:
    return _zoos(_home())


def trees() -> pd.DataFrame:
    """queries.trees_table(): tree_id, method, n_leaves, root_model_id, experiment_id, created_at, label."""
    return _trees(_home())


def models_table(kind: str | None = None, dataset: str | None = None) -> pd.DataFrame:
    return _models_table(_home(), kind, dataset)


def level_metrics(tree_ids: tuple = (), zoo_ids: tuple = (), eval_key: str | None = None) -> pd.DataFrame:
    return _level_metrics(_home(), tuple(int(t) for t in tree_ids), tuple(int(z) for z in zoo_ids), eval_key)


def tree_node_table(tree_id: int, eval_key: str | None = None) -> pd.DataFrame:
    return _tree_node_table(_home(), int(tree_id), eval_key)


def preset_estimate(preset: str, dataset: str) -> float:
    """Seconds the preset should take here (rates are measured once, then cached on disk)."""
    return _preset_estimate(_home(), preset, dataset)


@st.cache_data(ttl=3600, show_spinner=False)
def dataset_status(name: str) -> str:
    from backend.data import dataset_status as status

    return status(name)


def clear() -> None:
    st.cache_data.clear()
