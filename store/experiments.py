"""Experiments: a preset run end to end (zoos, trees, evaluations, report), tracked as one row."""

from __future__ import annotations

from typing import Any

import pandas as pd

from store.db import connect, fetch_df, transaction, utc_now
from store.jsonutil import check_id, check_key, dumps, fetch_dict

_JSON = ("spec", "result")
_UPDATABLE = ("name", "status", "job_id", "report_path", "result")


def find_experiment(key: str) -> int | None:
    with connect() as con:
        row = con.execute("SELECT id FROM experiments WHERE key = ?", [check_key(key)]).fetchone()
    return None if row is None else int(row[0])


def create_experiment(name: str, preset: str, dataset: str, spec: dict[str, Any], key: str) -> int:
    """Record an experiment (status 'created'); the existing id when `key` is already there."""
    values = [name, preset, dataset, dumps(spec), check_key(key), utc_now()]
    with transaction() as con:
        row = con.execute("SELECT id FROM experiments WHERE key = ?", [key]).fetchone()
        if row is not None:
            return int(row[0])
        (exp_id,) = con.execute(
            "INSERT INTO experiments (name, preset, dataset, spec, key, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            values,
        ).fetchone()
    return int(exp_id)


def get_experiment(experiment_id: int) -> dict[str, Any] | None:
    """The experiment row with `spec` and `result` decoded, or None."""
    with connect() as con:
        return fetch_dict(con, "SELECT * FROM experiments WHERE id = ?",
                          [check_id(experiment_id, "experiment_id")], _JSON)


def list_experiments() -> pd.DataFrame:
    """Experiments, newest first; `spec` and `result` stay JSON text."""
    with connect() as con:
        return fetch_df(con, "SELECT * FROM experiments ORDER BY id DESC")


def update_experiment(experiment_id: int, **fields: Any) -> None:
    """Set any of name, status, job_id, report_path, result (result is stored as JSON)."""
    eid = check_id(experiment_id, "experiment_id")
    unknown = sorted(set(fields) - set(_UPDATABLE))
    if unknown:
        raise ValueError(f"Cannot update experiment field(s) {', '.join(unknown)}; allowed: {', '.join(_UPDATABLE)}.")
    if not fields:
        return
    values = dict(fields)
    if "result" in values and values["result"] is not None:
        values["result"] = dumps(values["result"])
    if "job_id" in values and values["job_id"] is not None:
        values["job_id"] = check_id(values["job_id"], "job_id")
    if "report_path" in values and values["report_path"] is not None:
        values["report_path"] = str(values["report_path"])
    names = sorted(values)  # whitelisted above: safe to splice into SQL
    sql = "UPDATE experiments SET " + ", ".join(f"{n} = ?" for n in names) + " WHERE id = ? RETURNING id"
    with transaction() as con:
        if not con.execute(sql, [values[n] for n in names] + [eid]).fetchall():
            raise ValueError(f"There is no experiment {eid}.")
