"""Read-only queries for the dashboard: memberships and per-level aggregates computed inside DuckDB.

A page about 1 600 models and 80 k evaluation rows must not pull every row into pandas to draw a mean:
these queries join and aggregate in SQL and return small frames. `members` frames (one row per model
with the labels to group by) are built by the caller and joined here as a registered relation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from store.db import connect, fetch_df
from store.jsonutil import check_id, check_key

_TREE_MEMBERS_SQL = """
WITH t AS (
    SELECT id AS tree_id, method, leaves FROM trees WHERE id IN (SELECT unnest(CAST(? AS BIGINT[])))
),
leaf AS (
    SELECT tree_id, method, unnest(from_json(leaves, '["BIGINT"]')) AS model_id FROM t
)
SELECT leaf.model_id, leaf.tree_id, leaf.method, 0 AS level, m.kind, m.zoo_id, TRUE AS is_leaf,
       FALSE AS carried
FROM leaf JOIN models m ON m.id = leaf.model_id
UNION ALL
SELECT m.id AS model_id, t.tree_id, t.method, m.level, m.kind, m.zoo_id, FALSE AS is_leaf,
       coalesce(m.carried, FALSE) AS carried
FROM models m JOIN t ON m.tree_id = t.tree_id
ORDER BY tree_id, level, model_id
"""


def _ids(values: Iterable[int], what: str) -> list[int]:
    return [check_id(v, what) for v in values]


def tree_members(tree_ids: Iterable[int]) -> pd.DataFrame:
    """Every node of the given trees, leaves included (level 0), in one query.

    Columns: model_id, tree_id, method, level, kind, zoo_id (nullable), is_leaf, carried (a node carried
    up unchanged at an odd-count level; never a leaf).
    """
    with connect() as con:
        return fetch_df(con, _TREE_MEMBERS_SQL, [_ids(tree_ids, "Each tree id")])


def zoo_members(zoo_ids: Iterable[int]) -> pd.DataFrame:
    """Models of the given zoos: model_id, zoo_id, kind (model kind), zoo_kind."""
    with connect() as con:
        return fetch_df(con,
            "SELECT m.id AS model_id, m.zoo_id, m.kind, z.kind AS zoo_kind FROM models m "
            "JOIN zoos z ON z.id = m.zoo_id WHERE m.zoo_id IN (SELECT unnest(CAST(? AS BIGINT[]))) "
            "ORDER BY m.id", [_ids(zoo_ids, "Each zoo id")])


def eval_key_counts(model_ids: Iterable[int]) -> pd.DataFrame:
    """Evaluation configs present for these models: eval_key, n_models, n_rows (most models first)."""
    with connect() as con:
        return fetch_df(con,
            "SELECT eval_key, count(DISTINCT model_id) AS n_models, count(*) AS n_rows FROM evaluations "
            "WHERE model_id IN (SELECT unnest(CAST(? AS BIGINT[]))) GROUP BY eval_key "
            "ORDER BY n_models DESC, n_rows DESC, eval_key", [_ids(model_ids, "Each model id")])


def eval_key_coverage(members: pd.DataFrame) -> pd.DataFrame:
    """Per selected source (a `source` label per member: a tree or a zoo) and evaluation config: how many
    of its models have results. Columns: source, eval_key, n_models."""
    rel = _member_relation(members, ["source"])
    return _fetch_with_members(rel,
        "SELECT m.source, e.eval_key, count(DISTINCT m.model_id) AS n_models FROM _members m "
        "JOIN (SELECT DISTINCT model_id, eval_key FROM evaluations) e ON e.model_id = m.model_id "
        "GROUP BY ALL ORDER BY m.source, n_models DESC, e.eval_key", [])


def eval_config_rows(keys: Iterable[str]) -> pd.DataFrame:
    """Stored configs (key, config JSON text) and when their first result was written (first_at)."""
    with connect() as con:
        return fetch_df(con,
            "SELECT c.key, c.config, (SELECT min(created_at) FROM evaluations e WHERE e.eval_key = c.key) "
            "AS first_at FROM eval_configs c WHERE c.key IN (SELECT unnest(CAST(? AS VARCHAR[]))) ORDER BY c.key",
            [[check_key(k) for k in keys]])


def _member_relation(members: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    if "model_id" not in members.columns:
        raise ValueError("A members frame needs a model_id column.")
    missing = [k for k in keys if k not in members.columns]
    if missing:
        raise ValueError(f"The members frame has no column(s) {missing} to group by.")
    out = members[["model_id", *keys]].copy()
    out["model_id"] = out["model_id"].astype("int64")
    # a model counts once per group: a leaf shared by two selected trees is one model, not two samples
    return out.drop_duplicates().reset_index(drop=True)


def _where(eval_key: str, metrics: Sequence[str] | None) -> tuple[str, list]:
    sql, params = "e.eval_key = ?", [check_key(eval_key)]
    if metrics is not None:
        sql += " AND e.metric IN (SELECT unnest(CAST(? AS VARCHAR[])))"
        params.append([str(m) for m in metrics])
    return sql, params


def aggregate_evaluations(members: pd.DataFrame, keys: Sequence[str], eval_key: str, *,
                          metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, sample std (ddof 1) and n of every (keys…, metric, param) over the members' results.

    `members` holds model_id and the label columns named in `keys`. A model may sit in several groups, but
    counts once in each: duplicate (model_id, keys…) rows are dropped first, so n is the number of distinct
    models. Only results of `eval_key` are used, so configs never mix.
    """
    keys = list(keys)
    rel = _member_relation(members, keys)
    cols = ", ".join(f'm."{k}"' for k in keys)
    where, params = _where(eval_key, metrics)
    sql = (f"SELECT {cols}, e.metric, e.param, avg(e.value) AS mean, stddev_samp(e.value) AS std, "
           f"count(e.value) AS n FROM _members m JOIN evaluations e ON e.model_id = m.model_id "
           f"WHERE {where} GROUP BY ALL ORDER BY ALL")
    return _fetch_with_members(rel, sql, params)


def member_evaluations(members: pd.DataFrame, keys: Sequence[str], eval_key: str, *,
                       metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Raw results of the members (model_id, keys…, metric, param, value) for one eval config."""
    keys = list(keys)
    rel = _member_relation(members, keys)
    cols = ", ".join(f'm."{k}"' for k in keys)
    where, params = _where(eval_key, metrics)
    sql = (f"SELECT m.model_id, {cols}, e.metric, e.param, e.value FROM _members m "
           f"JOIN evaluations e ON e.model_id = m.model_id WHERE {where} "
           f"ORDER BY m.model_id, e.metric, e.param NULLS FIRST")
    return _fetch_with_members(rel, sql, params)


def _fetch_with_members(rel, sql: str, params: list) -> pd.DataFrame:
    """Run `sql` with the members frame visible as the view `_members` for this one query."""
    with connect() as con:
        con.register("_members", rel)
        try:
            return fetch_df(con, sql, params)
        finally:
            con.unregister("_members")



def latest_metric(metric: str, *, model_ids: Iterable[int] | None = None,
                  eval_key: str | None = None) -> pd.DataFrame:
    """One value of `metric` per model (param NULL or the smallest): under `eval_key`, or from the most
    recent evaluation when no key is given. Columns: model_id, value, eval_key."""
    where, params = ["metric = ?"], [str(metric)]
    if model_ids is not None:
        where.append("model_id IN (SELECT unnest(CAST(? AS BIGINT[])))")
        params.append(_ids(model_ids, "Each model id"))
    if eval_key is not None:
        where.append("eval_key = ?")
        params.append(check_key(eval_key))
    sql = ("SELECT model_id, value, eval_key FROM evaluations WHERE " + " AND ".join(where)
           + " QUALIFY row_number() OVER (PARTITION BY model_id ORDER BY created_at DESC, eval_key, "
             "param NULLS FIRST) = 1 ORDER BY model_id")
    with connect() as con:
        return fetch_df(con, sql, params)
