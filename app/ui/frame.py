"""The frame around every page: store status in the sidebar."""

from __future__ import annotations

import streamlit as st

from app.ui import reads
from app.ui.text import md
from store.db import STORE_ERRORS
from store.paths import home_dir


def sidebar_status(slot=None) -> None:
    """Counts of what the store holds and how many jobs run, plus where the store lives; refreshed every
    few seconds while a job runs or waits (a fragment: only the sidebar redraws). The router draws it into
    `slot` (a sidebar container) after the page ran, so a job the page just started already counts."""
    try:
        c = reads.counts()
        active = int(c.get("running_jobs", 0)) + int(c.get("queued_jobs", 0))
    except STORE_ERRORS:
        active = 0
    with slot if slot is not None else st.sidebar:
        st.fragment(_status, run_every=3.0 if active else None)()


def _status() -> None:
    st.markdown("**Lab store**")
    try:
        c = reads.counts()
    except STORE_ERRORS as err:  # the pages still render without the status
        st.warning(f"Store status unavailable: {md(err)}")
        return
    st.caption(f"{c.get('zoos', 0)} zoos · {c.get('models', 0)} models · {c.get('trees', 0)} trees · "
               f"{c.get('evaluations', 0)} evaluation rows")
    running = int(c.get("running_jobs", 0))
    if running:
        st.page_link("views/runs.py", label=f"{running} job(s) running — see Runs", icon=":material/hourglass_top:")
    else:
        st.caption("No job running")
    st.caption(f"Home: `{home_dir()}`")
    from store.db import read_only_reason

    reason = read_only_reason()
    if reason is not None:
        st.caption(f"Read-only ({md(reason)}): results can be browsed, jobs cannot be started.")


BUSY_RETRY_S = 3.0


def store_busy(err: Exception) -> None:
    """A page that found the store locked past the timeout: say so and try again, never an exception box."""
    st.warning(f"Store busy, retrying in {BUSY_RETRY_S:.0f} s… ({md(err)})", icon=":material/hourglass_top:")

    def retry() -> None:
        if st.session_state.get("_store_busy_waited"):
            st.session_state["_store_busy_waited"] = False
            st.rerun(scope="app")
        st.session_state["_store_busy_waited"] = True

    st.fragment(retry, run_every=BUSY_RETRY_S)()


# where a page sends a user who has nothing to look at yet: (page file, link label, icon)
NEXT_STEPS = {"home": ("views/home.py", "Go to Home", ":material/home:"),
              "zoo": ("views/zoo.py", "Go to Zoo", ":material/science:"),
              "merge": ("views/merge_builder.py", "Go to Merge builder", ":material/account_tree:")}


def empty_state(message: str, next_step: str) -> None:
    """A page with nothing to show yet: say why, link the page that makes something, stop the page here."""
    page, label, icon = NEXT_STEPS[next_step]
    st.info(message)
    st.page_link(page, label=label, icon=icon)
    st.stop()
