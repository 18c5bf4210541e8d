"""Evaluation results in long format: one row per (model, eval config, metric, param).

`eval_key` is the EvalConfig's key; the config itself is kept once in `eval_configs`, so every number
can be traced to the attack parameters, subset and seed that produced it, and different configs never
mix. Saving replaces a model's rows for that key in one transaction: readers see the old rows or the
new rows, never a mixture.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import pyarrow as pa

from store.db import connect, fetch_df, transaction, utc_now
from store.jsonutil import as_float, before_clause, check_id, check_key, dumps, fetch_dict

_ROWS_SCHEMA = pa.schema([("metric", pa.string()), ("param", pa.float64()), ("value", pa.float64())])


def register_eval_config(key: str, config: dict[str, Any]) -> None:
    """Remember which config a key stands for (first registration wins; keys are content hashes)."""
    text = dumps(config)
    with transaction() as con:
        con.execute("INSERT INTO eval_configs (key, config) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [check_key(key), text])


def get_eval_config(key: str) -> dict[str, Any] | None:
    with connect() as con:
        row = fetch_dict(con, "SELECT config FROM eval_configs WHERE key = ?", [check_key(key)], ("config",))
    return None if row is None else row["config"]


def list_eval_configs() -> pd.DataFrame:
    """Known eval configs with how many models each has results for; `config` stays JSON text."""
    with connect() as con:
        return fetch_df(con,
            "SELECT c.key, c.config, coalesce(e.n_models, 0) AS n_models FROM eval_configs c "
            "LEFT JOIN (SELECT eval_key, count(DISTINCT model_id) AS n_models FROM evaluations "
            "GROUP BY eval_key) e ON e.eval_key = c.key ORDER BY c.key"
        )


def _validated(rows: Iterable[tuple[str, float | None, float]]) -> pa.Table:
    metrics, params, values = [], [], []
    for row in rows:
        try:
            metric, param, value = row
        except (TypeError, ValueError) as err:
            raise ValueError(f"Each evaluation row must be (metric, param, value), got {row!r}.") from err
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"An evaluation metric must be a non-empty name, got {metric!r}.")
        metrics.append(metric)
        params.append(None if param is None else as_float(param, f"The param of {metric}"))
        values.append(as_float(value, f"The value of {metric}"))
    return pa.table([metrics, params, values], schema=_ROWS_SCHEMA)


def save_evaluations(model_id: int, eval_key: str, rows: Iterable[tuple[str, float | None, float]]) -> int:
    """Replace the results of (model, eval_key) with `rows` (metric, param|None, value); return the count.

    The delete and the inserts share one transaction, and `rows` is consumed inside it: if anything
    fails (a bad row, a crash), the previous results stay as they were.
    """
    mid, key = check_id(model_id, "model_id"), check_key(eval_key)
    with transaction() as con:
        if con.execute("SELECT 1 FROM models WHERE id = ?", [mid]).fetchone() is None:
            raise ValueError(f"There is no model {mid} to attach evaluations to.")
        con.execute("DELETE FROM evaluations WHERE model_id = ? AND eval_key = ?", [mid, key])
        table = _validated(rows)
        con.register("_new_eval_rows", table)
        try:
            con.execute(
                "INSERT INTO evaluations (model_id, eval_key, metric, param, value, created_at) "
                "SELECT ?, ?, metric, param, value, ? FROM _new_eval_rows",
                [mid, key, utc_now()],
            )
        finally:
            con.unregister("_new_eval_rows")
    return table.num_rows


def has_evaluation(model_id: int, eval_key: str) -> bool:
    with connect() as con:
        row = con.execute(
            "SELECT 1 FROM evaluations WHERE model_id = ? AND eval_key = ? LIMIT 1",
            [check_id(model_id, "model_id"), check_key(eval_key)],
        ).fetchone()
    return row is not None


def evaluated_model_ids(eval_key: str, model_ids: Iterable[int] | None = None, before: Any = None) -> set[int]:
    """Which of `model_ids` (default: all) already have results for `eval_key` (saved before `before`, naive UTC,
    when given) — one query, for cache checks."""
    sql, params = "SELECT DISTINCT model_id FROM evaluations WHERE eval_key = ?", [check_key(eval_key)]
    if model_ids is not None:
        sql += " AND model_id IN (SELECT unnest(CAST(? AS BIGINT[])))"
        params.append([check_id(i, "Each model id") for i in model_ids])
    sql += before_clause("created_at", before, params)
    with connect() as con:
        return {int(r[0]) for r in con.execute(sql, params).fetchall()}


def evaluations(*, model_ids: Iterable[int] | None = None, eval_key: str | None = None) -> pd.DataFrame:
    """Results as DataFrame(model_id, eval_key, metric, param, value), ordered by model, metric, param."""
    where, params = [], []
    if model_ids is not None:
        where.append("model_id IN (SELECT unnest(CAST(? AS BIGINT[])))")
        params.append([check_id(i, "Each model id") for i in model_ids])
    if eval_key is not None:
        where.append("eval_key = ?")
        params.append(check_key(eval_key))
    sql = ("SELECT model_id, eval_key, metric, param, value FROM evaluations"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY model_id, eval_key, metric, param NULLS FIRST")
    with connect() as con:
        return fetch_df(con, sql, params)

