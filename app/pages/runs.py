"""Runs: live progress of every job, cancel, readable errors, and links from finished jobs to results."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from app.ui import reads
from app.ui.text import md
from app.ui.widgets import LAST_JOB
from backend.jobs import queue
from store import jobs as store_jobs

ACTIVE = ("queued", "running")
BADGE_COLOR = {"queued": "gray", "running": "blue", "done": "green", "failed": "red", "cancelled": "orange"}
POLL_SECONDS = 2.0

st.title("Runs")
st.caption("Every job runs in its own worker process; this page polls the store while something is active.")


def _json(value) -> dict:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return {}
    return json.loads(value) if isinstance(value, str) else dict(value)


def _seconds(start, end=None) -> float | None:
    if start is None or pd.isna(start):
        return None
    end = end if end is not None and not pd.isna(end) else datetime.now(UTC).replace(tzinfo=None)
    return max(0.0, (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds())


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def _title(job) -> str:
    spec = _json(job["spec"])
    kind = job["kind"]
    if kind == "train":
        train = spec.get("train", {})
        what = f"zoo '{spec.get('name')}' · {spec.get('n_models')} × {train.get('dataset')} MLP {train.get('widths')}"
    elif kind == "merge":
        what = f"{', '.join(spec.get('methods', []))} over {len(spec.get('model_ids', []))} models"
    elif kind == "evaluate":
        what = f"{len(spec.get('model_ids', []))} model(s)"
    elif kind == "interpolate":
        pairs, trees = spec.get("pairs", []), spec.get("tree_ids", [])
        what = ", ".join([f"models {a} → {b}" for a, b in pairs] + [f"tree {t}" for t in trees])
    else:
        what = f"preset '{spec.get('preset')}' on {spec.get('dataset')}"
    return f"#{int(job['id'])} · {md(kind)} · {md(what)}"


def _result_links(job) -> None:
    """Where a finished job's results live: Compare / Tree view / Zoo, with the ids as query params."""
    result = _json(job["result"])
    trees = [int(t) for t in result.get("tree_ids", [])]
    zoos = result.get("zoos") or ({"zoo": result["zoo_id"]} if "zoo_id" in result else {})
    zoo_ids = [int(z) for z in zoos.values()]
    params = {}
    if trees:
        params["trees"] = ",".join(map(str, trees))
    if zoo_ids:
        params["zoos"] = ",".join(map(str, zoo_ids))
    if result.get("eval_key"):
        params["eval"] = result["eval_key"]
    cols = st.columns(4)
    if trees or zoo_ids:
        cols[0].page_link("pages/compare.py", label="Compare results", icon=":material/bar_chart:", query_params=params)
    if trees:
        cols[1].page_link("pages/tree_view.py", label="Open tree", icon=":material/search:", query_params={"tree": str(trees[0])})
    if "zoo_id" in result:
        cols[2].page_link("pages/zoo.py", label=f"Zoo #{result['zoo_id']} models", icon=":material/science:")
    if result.get("report_path"):
        cols[3].caption(f"Report: `{result['report_path']}`")
    if result.get("curve_key") and result.get("pairs"):
        cols[0].page_link("pages/connectivity.py", label="Open Connectivity", icon=":material/timeline:")


def _job_card(job) -> None:
    status = job["status"]
    with st.container(border=True):
        head, badge, right = st.columns([6, 1, 1], vertical_alignment="center")
        head.markdown(f"**{_title(job)}**")
        badge.badge(status, color=BADGE_COLOR.get(status, "gray"))
        if status in ACTIVE:
            if right.button("Cancel", key=f"cancel-{int(job['id'])}", disabled=bool(job["cancel_requested"])):
                queue.cancel(int(job["id"]), wait=False)
                reads.clear()
                st.rerun()
            progress = float(job["progress"] or 0.0)
            stage = job["stage"] or "starting"
            text = f"{md(stage)}: {md(job['message'])}" if job["message"] else md(stage)
            st.progress(min(max(progress, 0.0), 1.0), text=f"{progress:.0%} · {text}")
            elapsed = _seconds(job["started_at"] if pd.notna(job["started_at"]) else job["created_at"])
            eta = elapsed * (1 - progress) / progress if elapsed and progress > 0.02 else None
            st.caption(f"elapsed {_clock(elapsed)} · ETA {_clock(eta) if eta is not None else 'estimating…'}"
                       + (" · cancel requested" if job["cancel_requested"] else ""))
        else:
            took = _seconds(job["started_at"], job["finished_at"])
            finished = pd.Timestamp(job["finished_at"]).strftime("%Y-%m-%d %H:%M:%S") if pd.notna(
                job["finished_at"]) else "–"
            st.caption(f"finished {finished} UTC" + (f" · took {_clock(took)}" if took is not None else ""))
            if status == "failed":
                st.error(md(job["error"]) if job["error"] else "the worker stopped without saying why")
            elif status == "cancelled" and job["error"]:
                st.warning(md(job["error"]))
            elif status == "done":
                _result_links(job)


def _draw_jobs() -> None:
    queue.reap()  # a worker that died leaves a running row; mark it failed before drawing
    jobs = store_jobs.list_jobs(limit=100)
    if jobs.empty:
        st.info("No jobs yet. Start a preset on Home, train a zoo, or build a merge.")
        return
    active = jobs[jobs["status"].isin(ACTIVE)]
    finished = jobs[~jobs["status"].isin(ACTIVE)]
    st.markdown(f"**{len(active)} active** · {len(finished)} finished")
    for _, job in active.iterrows():
        _job_card(job)
    for _, job in finished.head(30).iterrows():
        _job_card(job)
    if active.empty and st.session_state.get("runs_polling"):
        st.session_state["runs_polling"] = False
        reads.clear()
        st.rerun()  # stop polling: redraw the page with a fragment that does not refresh


polling = st.session_state.get("runs_polling", False) or bool(
    store_jobs.list_jobs(status="running", limit=1).shape[0] or store_jobs.list_jobs(status="queued", limit=1).shape[0])
st.session_state["runs_polling"] = polling
if st.session_state.get(LAST_JOB):
    st.caption(f"Your last started job: #{st.session_state[LAST_JOB]}")
st.fragment(_draw_jobs, run_every=POLL_SECONDS if polling else None)()
