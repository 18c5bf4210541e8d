"""The merge step: build one tree per method over the same leaves, every node a stored model. A tree with
a root is cached by its tree key; an interrupted one resumes from the nodes stored under their node keys
(weights file first, then the model and merge rows in one transaction) and MergeMany's last round checkpoint.

Level convention (what Compare lines up): trained leaves are level 0; a hierarchical node at level k
merges 2^k leaves. A MergeMany or naive-average result over n leaves is one node stored at level
ceil(log2(n)), so MergeMany of 2^k leaves sits next to hierarchical level k; its parents are all leaves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from backend.jobs.context import JobContext
from backend.jobs.spec import MergeSpec, canonical_key, tree_config, tree_key  # tree_key: the cache key
from backend.jobs.step_common import LazySpan, executor_of, record_work, run_units, weights_damaged
from backend.leaves import compatibility_problem
from backend.merge.registry import get_method
from backend.progress import ProgressEvent, report
from store import models as store_models
from store import trees as store_trees
from store import weights as store_weights
from store.checkpoints import delete_checkpoint
from store.db import connect, transaction
from store.jsonutil import decoded


def load_leaves(model_ids) -> tuple[list[dict], list[dict]]:
    """Rows and weights of the models to merge; ValueError when they are missing or incompatible."""
    rows = []
    with connect():
        for mid in model_ids:
            row = store_models.get_model(int(mid))
            if row is None:
                raise ValueError(f"model {mid} does not exist")
            rows.append(row)
    problem = compatibility_problem(rows, "merge")
    if problem is not None:
        raise ValueError(problem)
    params = [store_weights.load_weights(r["weights"]) for r in rows]
    return rows, params


def build_merges(spec: MergeSpec, ctx: JobContext) -> list[int]:
    """Build one tree per method over the same leaves; every node becomes a stored model.

    Each tree still to build is one unit (units.merge_unit) on the job's executor. In process its nodes are
    stored as soon as each is built and MergeMany checkpoints every round (a rerun after a kill builds only
    the missing nodes, from the last round); from a cluster a tree's nodes arrive together with its result
    and are stored then (a rerun resumes from the nodes stored before the unit started). The root is set
    last: a tree with a root is complete."""
    spec.validate()
    rows, leaves = load_leaves(spec.model_ids)
    from backend.jobs.executors import Unit
    from backend.jobs.units import from_bytes, merge_unit, to_bytes
    from backend.merge.common import check_compatible

    check_compatible(leaves)
    leaf_ids = [int(r["id"]) for r in rows]
    dataset, widths = rows[0]["dataset"], list(decoded(rows[0]["widths"]))
    from backend.estimate.cost import arch_key, layer_sizes, merge_units
    from backend.merge.registry import needs_images

    executor = executor_of(ctx)
    tree_ids = []
    n_methods = len(spec.methods)
    # each method gets a slice of the bar proportional to its nominal work (averaging: a sliver)
    weights = [max(merge_units(m, len(leaf_ids), widths), 1e-3 * sum(w ** 3 for w in widths))
               for m in spec.methods]
    edges = [sum(weights[:i]) / sum(weights) for i in range(n_methods + 1)]
    values = spec.option_values()
    todo = []  # (method position, method, key, tree id)
    with ctx.within() as sub:
        for i, method in enumerate(spec.methods):
            key = tree_key(spec, method)
            config = {**tree_config(spec, method), "level_convention": "merge_many/average at ceil(log2(n))"}
            tree_id = store_trees.create_tree(method, leaf_ids, config, key)
            tree_ids.append(tree_id)
            if store_trees.get_tree(tree_id).get("root_model_id") is not None and not _tree_damaged(tree_id):
                ctx.cache_hits += 1
                with ctx.section(f"method {i + 1} of {n_methods}: {get_method(method).short}"):
                    report(sub(edges[i], edges[i + 1]), method, 1, 1, f"tree {tree_id} already built (cached)")
                continue
            todo.append((i, method, key, tree_id))
        shared_leaves = executor.share(leaves if executor.in_process else [to_bytes(p) for p in leaves]) \
            if todo else None
        images = None
        if todo and needs_images(values) and any({"matcher", "repair"} & set(get_method(m).options)
                                                 for _, m, _, _ in todo):
            from backend.connectivity import image_batch

            images = executor.share(image_batch(dataset, values["n_images"], values["image_split"],
                                                values["image_seed"]))
        units, writers, started, resumed = [], {}, {}, set()
        for u, (i, method, key, tree_id) in enumerate(todo):
            entry = get_method(method)
            uses_images = bool({"matcher", "repair"} & set(entry.options))
            common = dict(dataset=dataset, widths=widths, tree_id=tree_id)

            def prepare(u=u, method=method, key=key, common=common):
                """Read what an interrupted run left (finished nodes, MergeMany's round state) when it starts."""
                started[u] = time.perf_counter()
                finished = _finished_nodes(common["tree_id"], key)
                writers[u] = _NodeWriter(spec, method, key, common, leaf_ids, finished)
                hashes = {i: row["weights"] for i, row in finished.items()}
                if executor.in_process:
                    stored = _StoredWeights(hashes)
                else:
                    stored = {i: store_weights.weights_path(h).read_bytes() for i, h in hashes.items()}
                checkpoint = _round_state(key)
                if hashes or checkpoint is not None:
                    resumed.add(u)  # part of the work was done before: its time says nothing of the rate
                return {"stored": stored or None, "checkpoint": checkpoint}

            local = {}
            if executor.in_process:
                local = {"progress": LazySpan(sub, edges[i], edges[i + 1]),
                         "on_node": lambda node, u=u: writers[u].store(node.index, node.level, node.parents,
                                                                       node.params, node.seconds, node.match),
                         "on_checkpoint": lambda state, key=key: _save_round_state(key, state)}
            units.append(Unit(merge_unit, {"method": method, "values": values},
                              f"method {i + 1} of {n_methods}: {entry.short}",
                              shared={"leaves": shared_leaves, "images": images if uses_images else None},
                              local=local, prepare=prepare))

        def on_result(u, out):
            i, method, key, tree_id = todo[u]
            writer = writers[u]
            for node in out["nodes"]:  # nodes built on a cluster (in process they were stored as built)
                writer.store(node["index"], node["level"], node["parents"], from_bytes(node["weights"]),
                             node["seconds"], node["match"])
            record_work(ctx, "merge", arch_key(layer_sizes(dataset, widths)), merge_units(method, len(leaf_ids), widths),
                        time.perf_counter() - started[u], resumed=u in resumed)
            store_trees.set_tree_root(tree_id, writer.ids[out["root"]])  # last: a tree with a root is complete
            delete_checkpoint(key)
            sub(edges[i], edges[i + 1])
            ctx.progress(ProgressEvent(method, 1, 1, f"tree {tree_id} stored"), force=True)

        run_units(ctx, executor, units, on_result)
    return tree_ids


class _NodeWriter:
    """Stores one tree's nodes (weights, model row, merge row) as they are built or arrive; `ids` maps node
    indices to model ids (leaves and the nodes an interrupted run finished included)."""

    def __init__(self, spec, method: str, key: str, common: dict, leaf_ids, finished: dict):
        from backend.merge.registry import ALIGNMENT_OPTIONS

        entry = get_method(method)
        values = spec.option_values()
        self.method, self.key, self.common = method, key, common
        self.lam = values["lam"] if "lam" in entry.options else None
        tree_config = entry.tree_config(values)
        self.alignment = {name: tree_config[name] for name in ALIGNMENT_OPTIONS if name in tree_config}
        self.ids = {**dict(enumerate(leaf_ids)), **{i: int(row["id"]) for i, row in finished.items()}}

    def store(self, index: int, level: int, parents, params, seconds: float, match) -> None:
        """`match`: a MatchResult, a {"sweeps", "objective_trace"} dict (from a unit) or None."""
        config = {"method": self.method, "tree_key": self.key, **({"lam": self.lam} if self.lam is not None else {}),
                  **self.alignment, "node_index": index}
        merged = len(parents) > 1
        merge = None
        if merged:
            if isinstance(match, dict):
                sweeps, trace = match["sweeps"], list(match["objective_trace"])
            else:
                sweeps, trace = (match.sweeps, list(match.objective_trace)) if match else (0, [])
            merge = {"lam": self.lam, "sweeps": sweeps, "objective": trace, "seconds": seconds}
        self.ids[index] = _store_node(canonical_key({"tree": self.key, "node": index}), self.method, params,
                                      config, self.common, level=level, node_index=index,
                                      parents=[self.ids[p] for p in parents], seconds=seconds,
                                      carried=not merged, merge=merge)


class _StoredWeights(Mapping):
    """{node index: params} of the nodes an interrupted run stored; a file is read only when a node still to
    build needs it as a parent."""

    def __init__(self, hashes: dict[int, str]):
        self._hashes = hashes

    def __getitem__(self, index: int):
        return store_weights.load_weights(self._hashes[index])

    def __iter__(self):
        return iter(self._hashes)

    def __len__(self) -> int:
        return len(self._hashes)


def _finished_nodes(tree_id: int, key: str) -> dict[int, dict]:
    """{node index: models row} of the tree's nodes that are completely stored: the row under the node's key,
    an intact weights file, and (for a node merged from two or more parents) its merge row. A node missing
    any of these is built again (and only what is missing is written)."""
    nodes = store_trees.tree_nodes(tree_id)
    if nodes.empty:
        return {}
    nodes = nodes[~nodes["is_leaf"].astype(bool)]
    merged = set(store_trees.list_merges(tree_id)["model_id"].astype(int))
    finished = {}
    for row in nodes.to_dict("records"):
        index = int(row["node_index"])
        if row["key"] != canonical_key({"tree": key, "node": index}) or weights_damaged(row):
            continue
        if _flag(row.get("carried")) or int(row["id"]) in merged:
            finished[index] = row
    return finished


def _flag(value) -> bool:
    """A BOOLEAN cell that may be NULL (pandas NA) as a plain bool."""
    try:
        return bool(value)
    except TypeError:
        return False


def _store_node(key: str, kind: str, params, config: dict, common: dict, *, level: int, node_index: int,
                parents: list[int], seconds: float, carried: bool, merge: dict | None) -> int:
    """Store one node as soon as it is built: its weights file first, then its model row and (for a real
    merge) its merge row in ONE transaction, so a kill leaves either both rows or neither. A row an earlier
    run left (without its merge row, or with a lost file) is completed, never duplicated."""
    weights = store_weights.save_weights(params)
    with transaction():
        mid = store_models.find_model(key)
        if mid is None:
            mid = store_models.add_model(kind=kind, config=config, weights=weights, key=key, level=level,
                                         node_index=node_index, parents=parents, seconds=seconds, carried=carried,
                                         **common)
        else:
            row = store_models.get_model(mid)
            if row["weights"] != weights and weights_damaged(row):  # its file was lost: point it at the rebuilt one
                store_models.replace_weights(mid, weights)
        if merge is not None and not store_trees.has_merge(common["tree_id"], mid):
            store_trees.add_merge(common["tree_id"], mid, kind, **merge)
    return mid


def _round_state(key: str):
    """The MergeMany round state an interrupted run of this tree left, or None."""
    from backend.merge.merge_many import RoundState
    from store.checkpoints import load_checkpoint

    found = load_checkpoint(key)
    if found is None:
        return None
    try:
        return RoundState.from_tensors(*found)
    except (KeyError, TypeError, ValueError):  # a checkpoint of another shape: start over
        return None


def _save_round_state(key: str, state) -> None:
    from store.checkpoints import save_checkpoint

    save_checkpoint(key, *state.to_tensors())


def _tree_damaged(tree_id: int) -> bool:
    """Whether any merged node of a stored tree has a missing or damaged weights file."""
    nodes = store_trees.tree_nodes(tree_id)
    merged = nodes[~nodes["is_leaf"]] if "is_leaf" in nodes.columns else nodes
    return any(store_weights.verify_weights(h) is not None for h in merged["weights"])


def tree_model_ids(tree_id: int) -> list[int]:
    """Every model of a tree, leaves included, by level then node index."""
    if store_trees.get_tree(tree_id) is None:
        raise ValueError(f"tree {tree_id} does not exist")
    df = store_trees.tree_nodes(tree_id)
    return [int(i) for i in df.sort_values(["level", "id"])["id"]]
