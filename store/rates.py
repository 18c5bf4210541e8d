"""Work rates: how long units of work (backend/estimate/cost.py) took on this machine.

Every job step records the work it did and the wall time it took (train, merge, evaluate); estimates
read the recent rates back, so "how long will this take" comes from what jobs actually measured here.
"""

from __future__ import annotations

import math

import pandas as pd

from store.db import connect, fetch_df, transaction, utc_now

PHASES = ("train", "merge", "evaluate", "overhead")  # overhead: per experiment, units = 1


def record_rate(phase: str, arch: str, device: str, threads: int, units: float, seconds: float,
                job_id: int | None = None) -> None:
    """Store one measurement; ignored when there was no work or no time (nothing to learn from)."""
    if phase not in PHASES:
        raise ValueError(f"unknown work phase {phase!r}; choose one of {', '.join(PHASES)}")
    if not (math.isfinite(units) and math.isfinite(seconds)) or units <= 0 or seconds <= 0:
        return
    with transaction() as con:
        con.execute("INSERT INTO work_rates VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [phase, str(arch), str(device), int(threads), float(units), float(seconds),
                     None if job_id is None else int(job_id), utc_now()])


def recent_rates(device: str, threads: int, limit: int = 20) -> pd.DataFrame:
    """The newest measurements per phase on this device and thread count: phase, arch, units, seconds,
    seconds_per_unit, created_at (newest first)."""
    with connect() as con:
        return fetch_df(con,
            "SELECT phase, arch, units, seconds, seconds / units AS seconds_per_unit, job_id, created_at "
            "FROM (SELECT *, row_number() OVER (PARTITION BY phase ORDER BY created_at DESC) AS r "
            "      FROM work_rates WHERE device = ? AND threads = ?) WHERE r <= ? "
            "ORDER BY phase, created_at DESC", [str(device), int(threads), int(limit)])
