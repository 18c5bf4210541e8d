"""Interpolation curves and barriers in long format: one row per (pair, config, variant, split, λ, metric).

`curve_key` is the ConnectivityConfig's key; the config is kept once in `curve_configs`, so rows of
different grids, image batches or seeds never mix. Rows of a curve have lam set (metrics accuracy, loss);
the barrier rows of the same variant have lam NULL (loss_barrier, accuracy_barrier). Saving replaces the
rows of (model_a, model_b, curve_key) in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import pyarrow as pa

from store.db import connect, fetch_df, transaction, utc_now
from store.jsonutil import as_float, before_clause, check_id, check_key, dumps, fetch_dict

ALIGNS = ("none", "weight", "activation")
SPLITS = ("test", "train")
COLUMNS = ["model_a", "model_b", "curve_key", "align", "repair", "split", "lam", "metric", "value"]
_SCHEMA = pa.schema([("align", pa.string()), ("repair", pa.bool_()), ("split", pa.string()),
                     ("lam", pa.float64()), ("metric", pa.string()), ("value", pa.float64())])


def register_curve_config(key: str, config: dict[str, Any]) -> None:
    """Remember which config a key stands for (first registration wins; keys are content hashes)."""
    with transaction() as con:
        con.execute("INSERT INTO curve_configs (key, config) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [check_key(key), dumps(config)])


def get_curve_config(key: str) -> dict[str, Any] | None:
    with connect() as con:
        row = fetch_dict(con, "SELECT config FROM curve_configs WHERE key = ?", [check_key(key)], ("config",))
    return None if row is None else row["config"]


def _validated(rows) -> pa.Table:
    cols: dict[str, list] = {name: [] for name in _SCHEMA.names}
    for row in rows:
        try:
            align, repair, split, lam, metric, value = row
        except (TypeError, ValueError) as err:
            raise ValueError(f"Each curve row must be (align, repair, split, lam, metric, value), got {row!r}.") from err
        if align not in ALIGNS or split not in SPLITS or not isinstance(metric, str) or not metric:
            raise ValueError(f"A curve row needs align in {ALIGNS}, split in {SPLITS} and a metric, got {row!r}.")
        cols["align"].append(align)
        cols["repair"].append(bool(repair))
        cols["split"].append(split)
        cols["lam"].append(None if lam is None else as_float(lam, "λ"))
        cols["metric"].append(metric)
        cols["value"].append(as_float(value, f"The value of {metric}"))
    return pa.table([cols[n] for n in _SCHEMA.names], schema=_SCHEMA)


def save_curves(model_a: int, model_b: int, curve_key: str, rows: Iterable[tuple]) -> int:
    """Replace the rows of (model_a, model_b, curve_key) with `rows`; return how many were written."""
    a, b, key = check_id(model_a, "model_a"), check_id(model_b, "model_b"), check_key(curve_key)
    with transaction() as con:
        for mid in (a, b):
            if con.execute("SELECT 1 FROM models WHERE id = ?", [mid]).fetchone() is None:
                raise ValueError(f"There is no model {mid} to attach a curve to.")
        con.execute("DELETE FROM curves WHERE model_a = ? AND model_b = ? AND curve_key = ?", [a, b, key])
        table = _validated(rows)
        con.register("_new_curve_rows", table)
        try:
            con.execute("INSERT INTO curves SELECT ?, ?, ?, align, repair, split, lam, metric, value, ? "
                        "FROM _new_curve_rows", [a, b, key, utc_now()])
        finally:
            con.unregister("_new_curve_rows")
    return table.num_rows


def has_curves(model_a: int, model_b: int, curve_key: str) -> bool:
    with connect() as con:
        row = con.execute("SELECT 1 FROM curves WHERE model_a = ? AND model_b = ? AND curve_key = ? LIMIT 1",
                          [check_id(model_a, "model_a"), check_id(model_b, "model_b"), check_key(curve_key)]
                          ).fetchone()
    return row is not None


def pairs_with_curves(pairs: Iterable[tuple[int, int]], curve_key: str, before: Any = None) -> set[tuple[int, int]]:
    """Which (model_a, model_b) `pairs` already have rows for `curve_key` (saved before `before`, naive UTC, when
    given) — one query, for cache checks (backend/stored_work.py)."""
    pairs = [(check_id(a, "model_a"), check_id(b, "model_b")) for a, b in pairs]
    params: list[Any] = [[a for a, _ in pairs], [b for _, b in pairs], check_key(curve_key)]
    sql = ("SELECT DISTINCT c.model_a, c.model_b FROM curves c "
           "JOIN (SELECT unnest(CAST(? AS BIGINT[])) AS a, unnest(CAST(? AS BIGINT[])) AS b) p "
           "ON c.model_a = p.a AND c.model_b = p.b WHERE c.curve_key = ?")
    sql += before_clause("c.created_at", before, params)
    with connect() as con:
        return {(int(a), int(b)) for a, b in con.execute(sql, params).fetchall()}


def curves(*, pairs: Iterable[tuple[int, int]] | None = None, model_ids: Iterable[int] | None = None,
           curve_key: str | None = None, barriers_only: bool = False) -> pd.DataFrame:
    """Rows as DataFrame(COLUMNS), ordered by pair, variant, split, metric, λ.

    pairs: only these (model_a, model_b); model_ids: pairs with either end in the list.
    """
    where, params = [], []
    if pairs is not None:
        pairs = [(check_id(a, "model_a"), check_id(b, "model_b")) for a, b in pairs]
        where.append("EXISTS (SELECT 1 FROM (SELECT unnest(CAST(? AS BIGINT[])) AS a, unnest(CAST(? AS BIGINT[])) AS b) p "
                     "WHERE p.a = model_a AND p.b = model_b)")
        params += [[a for a, _ in pairs], [b for _, b in pairs]]
    if model_ids is not None:
        ids = [check_id(i, "Each model id") for i in model_ids]
        where.append("(model_a IN (SELECT unnest(CAST(? AS BIGINT[]))) OR model_b IN (SELECT unnest(CAST(? AS BIGINT[]))))")
        params += [ids, ids]
    if curve_key is not None:
        where.append("curve_key = ?")
        params.append(check_key(curve_key))
    if barriers_only:
        where.append("lam IS NULL")
    sql = (f"SELECT {', '.join(COLUMNS)} FROM curves" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY model_a, model_b, curve_key, align, repair, split, metric, lam NULLS FIRST")
    with connect() as con:
        return fetch_df(con, sql, params)


def list_curve_configs() -> pd.DataFrame:
    """Known curve configs with how many pairs each has rows for; `config` stays JSON text."""
    with connect() as con:
        return fetch_df(con,
            "SELECT c.key, c.config, coalesce(n.n_pairs, 0) AS n_pairs FROM curve_configs c LEFT JOIN "
            "(SELECT curve_key, count(DISTINCT (model_a, model_b)) AS n_pairs FROM curves GROUP BY curve_key) n "
            "ON n.curve_key = c.key ORDER BY c.key")
