"""Models: every stored network — trained zoo members and every merged node of every tree.

A row points at its weights by hash (store/weights.py); `level` is 0 for unmerged models and k for a
node built at level k of a tree; `parents` lists the model ids it was merged from; `carried` marks a node
carried up unchanged at an odd-count level (one parent, same weights): it is drawn but never counted as a
merge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
)
from store.trees import TREE_METHODS
from store.weights import check_hash, has_weights

if TYPE_CHECKING:  # pandas is imported where a DataFrame is built: `jobs list` and --help stay light
    import pandas as pd

MODEL_KINDS = ("trained", *TREE_METHODS)  # a merged node's kind is its tree's method
JSON_FIELDS = ("widths", "config", "parents")  # decoded by get_model; JSON text in list_models


def find_model(key: str) -> int | None:
    with connect() as con:
        row = con.execute("SELECT id FROM models WHERE key = ?", [check_key(key)]).fetchone()
    return None if row is None else int(row[0])


def ids_by_key(keys: Iterable[str], before: Any = None) -> dict[str, int]:
    """{key: model id} of those `keys` that are stored (before `before`, naive UTC, when given): one query, for
    cache checks that count what a job would find already done (backend/stored_work.py)."""
    params: list[Any] = [[check_key(k) for k in keys]]
    sql = "SELECT key, id FROM models WHERE key IN (SELECT unnest(CAST(? AS VARCHAR[])))"
    sql += before_clause("created_at", before, params)
    with connect() as con:
        return {str(key): int(mid) for key, mid in con.execute(sql, params).fetchall()}


def add_model(
    *,
    kind: str,
    dataset: str,
    widths: Sequence[int],
    config: dict[str, Any],
    weights: str,
    key: str,
    zoo_id: int | None = None,
    seed: int | None = None,
    tree_id: int | None = None,
    level: int = 0,
    node_index: int | None = None,
    parents: Iterable[int] = (),
    seconds: float = 0.0,
    train_loss: float | None = None,
    train_acc: float | None = None,
    carried: bool = False,
) -> int:
    """Record a model whose weights are already saved; the existing id when `key` is already there.

    carried: a node carried up unchanged at an odd-count level of a tree (a copy of its one parent, not a
    merge); per-level statistics leave such nodes out.
    """
    check_choice(kind, MODEL_KINDS, "Model kind")
    check_key(key)
    check_hash(weights)
    if not has_weights(weights):
        raise ValueError(f"No weights file for hash {weights[:12]}…: call save_weights before add_model.")
    widths_list = [check_id(w, "Each width") for w in widths]
    parent_ids = [check_id(p, "Each parent") for p in parents]
    if check_id(level, "level") < 0:
        raise ValueError(f"level must be >= 0, got {level}.")
    if carried and (len(parent_ids) != 1 or tree_id is None):
        raise ValueError("A carried node belongs to a tree and has exactly one parent.")
    values = [
        None if zoo_id is None else check_id(zoo_id, "zoo_id"),
        kind,
        dataset,
        dumps(widths_list),
        dumps(config),
        None if seed is None else check_id(seed, "seed"),
        weights,
        None if tree_id is None else check_id(tree_id, "tree_id"),
        int(level),
        None if node_index is None else check_id(node_index, "node_index"),
        dumps(parent_ids),
        finite_or_none(seconds, "seconds") or 0.0,
        finite_or_none(train_loss, "train_loss"),
        finite_or_none(train_acc, "train_acc"),
        key,
        utc_now(),
        bool(carried),
    ]
    with transaction() as con:
        row = con.execute("SELECT id FROM models WHERE key = ?", [key]).fetchone()
        if row is not None:
            return int(row[0])
        (model_id,) = con.execute(
            "INSERT INTO models (zoo_id, kind, dataset, widths, config, seed, weights, tree_id, level, "
            "node_index, parents, seconds, train_loss, train_acc, key, created_at, carried) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            values,
        ).fetchone()
    return int(model_id)


def get_model(model_id: int) -> dict[str, Any] | None:
    """The model row as a dict with widths/config/parents decoded, or None."""
    with connect() as con:
        return fetch_dict(con, "SELECT * FROM models WHERE id = ?", [check_id(model_id, "model_id")], JSON_FIELDS)


def list_models(
    *,
    zoo_id: int | None = None,
    tree_id: int | None = None,
    kind: str | None = None,
    dataset: str | None = None,
    ids: Iterable[int] | None = None,
) -> pd.DataFrame:
    """Models matching every given filter, by id. JSON columns (widths, config, parents) stay text.

    `tree_id` selects the merged nodes stored for that tree; use store.trees.tree_nodes to include
    its leaves.
    """
    where, params = [], []
    if zoo_id is not None:
        where.append("zoo_id = ?")
        params.append(check_id(zoo_id, "zoo_id"))
    if tree_id is not None:
        where.append("tree_id = ?")
        params.append(check_id(tree_id, "tree_id"))
    if kind is not None:
        where.append("kind = ?")
        params.append(check_choice(kind, MODEL_KINDS, "Model kind"))
    if dataset is not None:
        where.append("dataset = ?")
        params.append(dataset)
    if ids is not None:
        where.append("id IN (SELECT unnest(CAST(? AS BIGINT[])))")
        params.append([check_id(i, "Each model id") for i in ids])
    sql = "SELECT * FROM models" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
    with connect() as con:
        return fetch_df(con, sql, params)


def replace_weights(model_id: int, weights: str) -> None:
    """Point a model at recomputed weights (a repair whose bytes differ from the lost ones); its
    evaluations were of the old weights and are dropped, so they are recomputed."""
    mid = check_id(model_id, "model_id")
    check_hash(weights)
    if not has_weights(weights):
        raise ValueError(f"No weights file for hash {weights[:12]}…: call save_weights before replace_weights.")
    with transaction() as con:
        if not con.execute("UPDATE models SET weights = ? WHERE id = ? RETURNING id", [weights, mid]).fetchall():
            raise ValueError(f"There is no model {mid}.")
        con.execute("DELETE FROM evaluations WHERE model_id = ?", [mid])
