"""Trees: one merge run over an ordered list of leaf models (hierarchical, MergeMany or averaging).

The merged nodes are rows of `models` with `tree_id` set; the leaves stay ordinary models (they can
be leaves of many trees), listed in order in `trees.leaves`. `merges` records how each node was made.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from store.db import connect, fetch_df, transaction, utc_now
from store.jsonutil import (
    before_clause,
    check_choice,
    check_id,
    check_key,
    dumps,
    fetch_dict,
    finite_or_none,
    loads,
)

if TYPE_CHECKING:  # pandas is imported where a DataFrame is built: `jobs list` and --help stay light
    import pandas as pd

TREE_METHODS = ("hierarchical", "merge_many", "average")


def find_tree(key: str) -> int | None:
    with connect() as con:
        row = con.execute("SELECT id FROM trees WHERE key = ?", [check_key(key)]).fetchone()
    return None if row is None else int(row[0])


def complete_trees(keys: Iterable[str], before: Any = None) -> dict[str, int]:
    """{key: tree id} of those tree `keys` whose tree is complete (its root is set last; with `before`, naive UTC,
    the root was stored before then): one query, for cache checks (backend/stored_work.py)."""
    params: list[Any] = [[check_key(k) for k in keys]]
    sql = ("SELECT t.key, t.id FROM trees t JOIN models m ON m.id = t.root_model_id "
           "WHERE t.key IN (SELECT unnest(CAST(? AS VARCHAR[])))" + before_clause("m.created_at", before, params))
    with connect() as con:
        return {str(key): int(tid) for key, tid in con.execute(sql, params).fetchall()}


def merged_nodes(tree_ids: Iterable[int]) -> list[tuple[int, int, list[int]]]:
    """(tree id, model id, parent ids) of every stored merged or carried node of these trees (their leaves
    are not listed), by tree, level and node index: one query."""
    ids = [check_id(t, "Each tree id") for t in tree_ids]
    with connect() as con:
        rows = con.execute("SELECT tree_id, id, parents FROM models WHERE tree_id IN "
                           "(SELECT unnest(CAST(? AS BIGINT[]))) ORDER BY tree_id, level, node_index, id",
                           [ids]).fetchall()
    return [(int(t), int(m), [int(p) for p in loads(parents) or []]) for t, m, parents in rows]


def create_tree(
    method: str, leaves: Iterable[int], config: dict[str, Any], key: str, experiment_id: int | None = None
) -> int:
    """Record a tree over `leaves` (model ids, in order); the existing id when `key` is already there."""
    check_choice(method, TREE_METHODS, "Tree method")
    check_key(key)
    leaf_ids = [check_id(m, "Each leaf") for m in leaves]
    if not leaf_ids:
        raise ValueError("A tree needs at least one leaf model.")
    values = [method, dumps(leaf_ids), dumps(config), key,
              None if experiment_id is None else check_id(experiment_id, "experiment_id"), utc_now()]
    with transaction() as con:
        row = con.execute("SELECT id FROM trees WHERE key = ?", [key]).fetchone()
        if row is not None:
            return int(row[0])
        (found,) = con.execute(
            "SELECT count(*) FROM models WHERE id IN (SELECT unnest(CAST(? AS BIGINT[])))", [sorted(set(leaf_ids))]
        ).fetchone()
        if found != len(set(leaf_ids)):
            raise ValueError("Every leaf of a tree must be a stored model id.")
        (tree_id,) = con.execute(
            "INSERT INTO trees (method, leaves, config, key, experiment_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            values,
        ).fetchone()
    return int(tree_id)


def get_tree(tree_id: int) -> dict[str, Any] | None:
    """The tree row with `leaves` and `config` decoded, or None."""
    with connect() as con:
        return fetch_dict(con, "SELECT * FROM trees WHERE id = ?", [check_id(tree_id, "tree_id")],
                          ("leaves", "config"))


def set_tree_root(tree_id: int, model_id: int) -> None:
    with transaction() as con:
        updated = con.execute(
            "UPDATE trees SET root_model_id = ? WHERE id = ? RETURNING id",
            [check_id(model_id, "model_id"), check_id(tree_id, "tree_id")],
        ).fetchall()
    if not updated:
        raise ValueError(f"There is no tree {tree_id}.")


def list_trees(experiment_id: int | None = None) -> pd.DataFrame:
    """Trees (newest first) with their node count; `leaves` and `config` stay JSON text."""
    sql = ("SELECT t.*, json_array_length(t.leaves) AS n_leaves, "
           "(SELECT count(*) FROM models m WHERE m.tree_id = t.id) AS n_merged FROM trees t")
    params: list[Any] = []
    if experiment_id is not None:
        sql += " WHERE t.experiment_id = ?"
        params.append(check_id(experiment_id, "experiment_id"))
    with connect() as con:
        return fetch_df(con, sql + " ORDER BY t.id DESC", params)


def add_merge(
    tree_id: int, model_id: int, method: str, lam: float | None, sweeps: int | None,
    objective: Iterable[float], seconds: float,
) -> int:
    """Record how one node of a tree was merged (λ, sweeps, objective trace, time)."""
    trace = [finite_or_none(v, "Each objective value") for v in objective]
    values = [check_id(tree_id, "tree_id"), check_id(model_id, "model_id"), method,
              finite_or_none(lam, "lam"), None if sweeps is None else check_id(sweeps, "sweeps"),
              dumps(trace), finite_or_none(seconds, "seconds") or 0.0]
    with transaction() as con:
        (merge_id,) = con.execute(
            "INSERT INTO merges (tree_id, model_id, method, lam, sweeps, objective, seconds) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            values,
        ).fetchone()
    return int(merge_id)


def has_merge(tree_id: int, model_id: int) -> bool:
    """Whether the node `model_id` of tree `tree_id` has its merge row."""
    with connect() as con:
        return con.execute("SELECT 1 FROM merges WHERE tree_id = ? AND model_id = ? LIMIT 1",
                           [check_id(tree_id, "tree_id"), check_id(model_id, "model_id")]).fetchone() is not None


def list_merges(tree_id: int) -> pd.DataFrame:
    """Merge records of a tree, in order; `objective` stays JSON text."""
    with connect() as con:
        return fetch_df(con, "SELECT * FROM merges WHERE tree_id = ? ORDER BY id",
                           [check_id(tree_id, "tree_id")])


def tree_nodes(tree_id: int) -> pd.DataFrame:
    """Every node of a tree as `models` rows: its leaves (level 0) then its merged nodes, by level.

    `tree_id` is set to this tree on all rows, leaves get `node_index` = their position in the leaf
    list, and `is_leaf` tells them apart. Empty when the tree does not exist.
    """
    tid = check_id(tree_id, "tree_id")
    with connect() as con:
        row = con.execute("SELECT leaves FROM trees WHERE id = ?", [tid]).fetchone()
        if row is None:
            return fetch_df(con, "SELECT *, TRUE AS is_leaf FROM models WHERE FALSE")
        leaves = loads(row[0])
        leaf_rows = fetch_df(con,
            "SELECT m.* REPLACE (CAST(? AS BIGINT) AS tree_id, CAST(l.pos AS INTEGER) AS node_index), "
            "TRUE AS is_leaf FROM models m "
            "JOIN (SELECT unnest(?) AS id, generate_subscripts(?, 1) - 1 AS pos) l ON l.id = m.id "
            "ORDER BY l.pos",
            [tid, leaves, leaves],
        )
        merged = fetch_df(con,
            "SELECT *, FALSE AS is_leaf FROM models WHERE tree_id = ? ORDER BY level, node_index, id", [tid]
        )
    if merged.empty:
        return leaf_rows.reset_index(drop=True)
    import pandas as pd

    return pd.concat([leaf_rows, merged], ignore_index=True)
