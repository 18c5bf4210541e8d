"""Zoos: named batches of models trained with one TrainConfig (plain, L1 or L2 regularised)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from store.db import connect, fetch_df, transaction, utc_now
from store.jsonutil import check_choice, check_id, check_key, dumps, fetch_dict

ZOO_KINDS = ("plain", "l1", "l2")
_JSON = ("config",)


def find_zoo(key: str) -> int | None:
    with connect() as con:
        row = con.execute("SELECT id FROM zoos WHERE key = ?", [check_key(key)]).fetchone()
    return None if row is None else int(row[0])


def create_zoo(name: str, dataset: str, kind: str, config: dict[str, Any], n_models: int, key: str) -> int:
    """Record a zoo; the existing id when `key` is already there (re-running a spec is a cache hit)."""
    check_choice(kind, ZOO_KINDS, "Zoo kind")
    if not isinstance(n_models, int) or n_models < 0:
        raise ValueError(f"n_models must be a non-negative integer, got {n_models!r}.")
    config_text = dumps(config)
    with transaction() as con:
        row = con.execute("SELECT id FROM zoos WHERE key = ?", [check_key(key)]).fetchone()
        if row is not None:
            return int(row[0])
        (zoo_id,) = con.execute(
            "INSERT INTO zoos (name, dataset, kind, config, n_models, key, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [name, dataset, kind, config_text, n_models, key, utc_now()],
        ).fetchone()
    return int(zoo_id)


def get_zoo(zoo_id: int) -> dict[str, Any] | None:
    """The zoo row with `config` decoded, plus `models_stored` (how many of its models exist)."""
    with connect() as con:
        return fetch_dict(
            con,
            "SELECT z.*, (SELECT count(*) FROM models m WHERE m.zoo_id = z.id) AS models_stored "
            "FROM zoos z WHERE z.id = ?",
            [check_id(zoo_id, "zoo_id")],
            _JSON,
        )


def list_zoos() -> pd.DataFrame:
    """All zoos, newest first, with `models_stored`; `config` stays JSON text."""
    with connect() as con:
        return fetch_df(con,
            "SELECT z.*, coalesce(c.n, 0) AS models_stored FROM zoos z "
            "LEFT JOIN (SELECT zoo_id, count(*) AS n FROM models GROUP BY zoo_id) c ON c.zoo_id = z.id "
            "ORDER BY z.id DESC"
        )
