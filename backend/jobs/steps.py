"""The three job steps — train a zoo, build merge trees, evaluate models — run against the store.

Every step is keyed so it can be interrupted and rerun: a model, a tree node or an evaluation that is
already stored is a cache hit and is not recomputed. Weights are written (atomically, content-addressed)
before the row that points to them, so a killed worker never leaves a row without its file.

Level convention (what Compare lines up): trained leaves are level 0; a hierarchical node at level k
merges 2^k leaves. A MergeMany or naive-average result over n leaves is one node stored at level
ceil(log2(n)), so MergeMany of 2^k leaves sits next to hierarchical level k; its parents are all leaves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import torch

from backend.jobs.context import JobContext
from backend.jobs.spec import (  # model_key, tree_key: the cache keys, declared without torch
    MergeSpec,
    TrainSpec,
    canonical_key,
    model_key,
    tree_config,
    tree_key,
)
from backend.leaves import compatibility_problem
from backend.merge.registry import get_method
from backend.progress import ProgressEvent, report
from store import evaluations as store_evals
from store import models as store_models
from store import trees as store_trees
from store import weights as store_weights
from store import zoos as store_zoos
from store.checkpoints import delete_checkpoint
from store.db import connect, transaction
from store.jsonutil import decoded


def record_work(ctx: JobContext, phase: str, arch: str, units: float, seconds: float, *,
                resumed: bool = False) -> None:
    """Record how long `units` of `phase` work took (store/rates.py), so estimates learn this machine's
    speed; best effort: a failed write never fails the job. Work done on a cluster (a remote executor) is
    not this machine's speed and is not recorded; nor is work `resumed` from what an interrupted run left
    (only part of `units` was done: its seconds still count as measured, not as overhead)."""
    executor = getattr(ctx, "executor", None)
    if executor is not None and not executor.in_process:
        return
    ctx.measured_seconds += seconds
    if resumed:
        return
    try:
        from store import rates as store_rates

        device = "cuda" if torch.cuda.is_available() else "cpu"
        store_rates.record_rate(phase, arch, device, torch.get_num_threads(), units, seconds, ctx.job_id)
    except Exception:  # noqa: BLE001 - the rate is a planning aid; the job's own work matters more
        pass


# -- train ----------------------------------------------------------------------------------------------


def train_chunk_size(device=None) -> int:
    """Models per train unit (one train_models call): on a CPU one at a time is fastest; on a GPU a
    device-sized stacked chunk (train.MAX_STACK, which train_models caps further by free memory)."""
    device = torch.device(device) if device is not None else \
        torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda":
        return 1
    from backend.train import MAX_STACK

    return MAX_STACK


def executor_of(ctx: JobContext):
    """The job's executor (backend/jobs/executors.py); in-process when the context names none."""
    if getattr(ctx, "executor", None) is None:
        from backend.jobs.executors import LocalExecutor

        ctx.executor = LocalExecutor()
    return ctx.executor


def train_zoo(spec: TrainSpec, ctx: JobContext) -> int:
    """Create (or find) the zoo and train only its missing models, saving each as soon as it exists.

    The seeds go to the job's executor in units of train_chunk_size() models (units.train_unit); each unit's
    models are stored as its result arrives. In process, every epoch of every model adds a point to its
    training curve (store/train_curves.py) while it trains, and with spec.curve_every = N every N training
    steps too (the mean over those steps); on a cluster a unit's curve points arrive with it."""
    from backend.estimate import arch_key, layer_sizes, train_units
    from backend.jobs.executors import Unit
    from backend.jobs.units import from_bytes, train_unit
    from backend.train import load_train_data, seeds_for
    from store import train_curves as store_train_curves

    spec.validate()
    config = spec.train_config()
    zoo_key, train_key = spec.zoo_key(), config.key()
    zoo_id = store_zoos.create_zoo(spec.name, config.dataset, spec.zoo_kind, config.to_dict(),
                                   spec.n_models, zoo_key)
    seeds = seeds_for(spec.base_seed, spec.n_models)
    with connect():  # one store open for all the look-ups
        stored = {s: store_models.find_model(model_key(zoo_key, train_key, s)) for s in seeds}
        rows = {s: store_models.get_model(mid) for s, mid in stored.items() if mid is not None}
    # a cache hit counts only when its weights file is intact: a missing or damaged one is trained again
    missing = [(i, s) for i, s in enumerate(seeds) if s not in rows or _damaged(rows[s])]
    executor = executor_of(ctx)
    # in process: this machine's device (the default); on a cluster: the device a unit's task gets
    chunk = train_chunk_size() if executor.in_process else train_chunk_size(executor.device)
    done_before = spec.n_models - len(missing)
    ctx.cache_hits += done_before
    sizes = layer_sizes(config.dataset, config.widths)
    samples = config.train_subset or _train_split_size(config.dataset)
    parts = [missing[start:start + chunk] for start in range(0, len(missing), chunk)]
    stored_count = [done_before]
    with ctx.within() as sub:
        units = []
        data = executor.share(load_train_data(config)) if parts else None
        for start, part in zip(range(0, len(missing), chunk), parts, strict=True):
            lo = (done_before + start) / spec.n_models
            keys = [model_key(zoo_key, train_key, s) for _, s in part]
            first, last = part[0][0] + 1, part[-1][0] + 1
            label = f"model {first} of {spec.n_models}" if len(part) == 1 else \
                f"models {first}-{last} of {spec.n_models}"
            local = {}
            if executor.in_process:  # live curves and progress; a remote unit reports when it returns
                def on_epoch(j, epoch, loss, acc, keys=keys, part=part):
                    store_train_curves.add_point(keys[j], epoch, loss, acc, zoo_id=zoo_id, seed=part[j][1],
                                                 job_id=ctx.job_id)

                def on_step(first, epochs, step, losses, accs, keys=keys, part=part):
                    store_train_curves.add_points(  # one write for the whole stacked group
                        [(keys[first + j], epochs, loss, acc, zoo_id, part[first + j][1], step)
                         for j, (loss, acc) in enumerate(zip(losses, accs, strict=True))], job_id=ctx.job_id)

                local = {"on_epoch": on_epoch, "on_step": on_step if spec.curve_every else None,
                         "progress": _LazySpan(sub, lo, lo + len(part) / spec.n_models)}
            units.append(Unit(train_unit, {"config": config.to_dict(), "seeds": [s for _, s in part],
                                           "curve_every": spec.curve_every}, label,
                              shared={"data": data}, local=local))

        def before(i):
            ctx.check_cancel(force=True)
            for _, s in parts[i]:
                store_train_curves.start_curve(model_key(zoo_key, train_key, s))

        def on_result(i, results):
            part = parts[i]
            for (index, seed), result in zip(part, results, strict=True):
                key = model_key(zoo_key, train_key, seed)
                if not executor.in_process:  # the curve came with the unit: epochs, then the step points
                    store_train_curves.start_curve(key)
                    for epoch, loss, acc in result["curve"]:
                        store_train_curves.add_point(key, epoch, loss, acc, zoo_id=zoo_id, seed=seed,
                                                     job_id=ctx.job_id)
                    store_train_curves.add_points([(key, epochs, loss, acc, zoo_id, seed, step)
                                                   for epochs, step, loss, acc in result["steps"]],
                                                  job_id=ctx.job_id)
                weights = store_weights.save_weights(from_bytes(result["weights"]))  # the file first, then the row
                if seed in rows:  # a repair: the row exists; point it at the new bytes if they differ
                    if weights != rows[seed]["weights"]:
                        store_models.replace_weights(int(rows[seed]["id"]), weights)
                    continue
                store_models.add_model(
                    kind="trained", dataset=config.dataset, widths=list(config.widths),
                    config=config.to_dict(), weights=weights, key=key,
                    zoo_id=zoo_id, seed=seed, level=0, node_index=index, parents=(), seconds=result["seconds"],
                    train_loss=result["train_loss"], train_acc=result["train_acc"])
            seconds = results[0]["wall"] if results else 0.0
            record_work(ctx, "train", arch_key(sizes), train_units(sizes, len(part), config.epochs, samples), seconds)
            stored_count[0] += len(part)
            sub(0.0, 1.0)
            ctx.progress(ProgressEvent("train", stored_count[0], spec.n_models,
                                       f"{stored_count[0]} of {spec.n_models} models stored"), force=True)

        _run_units(ctx, executor, units, on_result, before=before)
        if not missing:
            sub(0.0, 1.0)
            ctx.progress(ProgressEvent("train", 1, 1, f"all {spec.n_models} models already stored (cached)"),
                         force=True)
    return zoo_id


class _LazySpan:
    """A progress callback that claims its slice of the bar (sub(lo, hi)) when its unit starts, so units
    prepared in advance do not fight over the job's current span."""

    def __init__(self, sub, lo: float, hi: float):
        self.sub, self.lo, self.hi, self.fn = sub, lo, hi, None

    def __call__(self, event):
        if self.fn is None:
            self.fn = self.sub(self.lo, self.hi)
        return self.fn(event)


def _run_units(ctx: JobContext, executor, units, on_result, *, before=None, section=True) -> None:
    """Run units on the job's executor. In process each unit runs inside its own progress section
    (before(i) first: a cancel check, curve starts); remote units are submitted at once and the job's
    message counts them as they come back."""
    if executor.in_process:
        for i, unit in enumerate(units):
            if before is not None:
                before(i)
            kwargs = unit.arguments()
            if kwargs is None:
                continue
            with ctx.section(unit.label) if section else _nullcontext():
                result = unit.fn(**kwargs, **unit.shared, **unit.local)
            on_result(i, result)
        return
    total = len(units)
    done = [0]
    ctx.check_cancel(force=True)

    def arrived(i, result):
        done[0] += 1
        with ctx.section(f"{done[0]} of {total} units back from the cluster"):
            on_result(i, result)

    executor.run(units, arrived, check_cancel=lambda: ctx.check_cancel())


def _nullcontext():
    from contextlib import nullcontext

    return nullcontext()


def _train_split_size(dataset: str) -> int:
    from backend.estimate import _split_sizes

    return _split_sizes(dataset)[0]


def _damaged(row: dict) -> bool:
    """Whether a stored model's weights file is missing or does not hash to its name."""
    return store_weights.verify_weights(row["weights"]) is not None


def zoo_model_ids(zoo_id: int) -> list[int]:
    """The trained members of a zoo, in seed order."""
    if store_zoos.get_zoo(zoo_id) is None:
        raise ValueError(f"zoo {zoo_id} does not exist")
    df = store_models.list_models(zoo_id=zoo_id, kind="trained")
    if df.empty:
        return []
    order = "node_index" if "node_index" in df.columns else "id"
    return [int(i) for i in df.sort_values([order, "id"])["id"]]


# -- merge ----------------------------------------------------------------------------------------------


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
    from backend.estimate import arch_key, layer_sizes, merge_units
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
                local = {"progress": _LazySpan(sub, edges[i], edges[i + 1]),
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

        _run_units(ctx, executor, units, on_result)
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
        if row["key"] != canonical_key({"tree": key, "node": index}) or _damaged(row):
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
            if row["weights"] != weights and _damaged(row):  # its file was lost: point it at the rebuilt one
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


# -- interpolate ----------------------------------------------------------------------------------------


def tree_parent_pairs(tree_id: int) -> list[tuple[int, int]]:
    """(parent A, parent B) of every node of a tree merged from exactly two parents, by level."""
    if store_trees.get_tree(tree_id) is None:
        raise ValueError(f"tree {tree_id} does not exist")
    df = store_trees.tree_nodes(tree_id).sort_values(["level", "id"])
    pairs = []
    for parents in df["parents"]:
        parents = decoded(parents) or []
        if len(parents) == 2:
            pairs.append((int(parents[0]), int(parents[1])))
    return pairs


def interpolate_pairs(spec, ctx: JobContext) -> dict:
    """Curves and barriers for every requested pair (tree parent pairs included); cached pairs are skipped."""
    from backend.connectivity import ConnectivityConfig, image_batch
    from backend.data import load_split, to_float
    from store import curves as store_curves

    spec.validate()
    config = ConnectivityConfig.from_dict(spec.config)
    key = config.key()
    pairs = [tuple(int(m) for m in p) for p in spec.pairs]
    for tree_id in spec.tree_ids:
        found = tree_parent_pairs(int(tree_id))
        if not found:
            raise ValueError(f"tree {tree_id} has no node merged from two parents")
        pairs += [p for p in found if p not in pairs]
    store_curves.register_curve_config(key, config.to_dict())
    with connect():
        todo = [p for p in pairs if not store_curves.has_curves(p[0], p[1], key)]
    from backend.jobs.executors import Unit
    from backend.jobs.units import interpolate_unit, to_bytes

    executor = executor_of(ctx)
    device = executor.data_device
    data: dict[str, dict] = {}
    with ctx.within() as sub:
        units = []
        for i, (a_id, b_id) in enumerate(todo):
            rows, (params_a, params_b) = load_leaves([a_id, b_id])
            dataset = rows[0]["dataset"]
            if dataset not in data:  # one load per dataset
                x, y = load_split(dataset, train=False)
                x, y = (x, y) if config.test_subset is None else (x[:config.test_subset], y[:config.test_subset])
                entry = {"test": (to_float(x).to(device), y.to(device)), "train": None, "images": None}
                if config.train_subset is not None:
                    xt, yt = load_split(dataset, train=True)
                    entry["train"] = (to_float(xt[:config.train_subset]).to(device), yt[:config.train_subset].to(device))
                if config.repair or "activation" in config.aligns:
                    entry["images"] = image_batch(dataset, config.images, config.image_split, config.data_seed).to(device)
                data[dataset] = {name: None if value is None else executor.share(value) for name, value in entry.items()}
            entry = data[dataset]
            if executor.in_process:
                pair = {"params_a": params_a, "params_b": params_b}
                local = {"progress": _LazySpan(sub, i / len(todo), (i + 1) / len(todo))}
            else:
                pair, local = {"params_a": to_bytes(params_a), "params_b": to_bytes(params_b)}, {}
            units.append(Unit(interpolate_unit, {**pair, "config": config.to_dict()}, f"pair {i + 1} of {len(todo)}",
                              shared=dict(entry), local=local))

        def before(u):
            ctx.check_cancel(force=True)

        def on_result(u, rows):
            a_id, b_id = todo[u]
            store_curves.save_curves(a_id, b_id, key, rows)

        _run_units(ctx, executor, units, on_result, before=before, section=False)
        sub(0.0, 1.0)
        ctx.progress(ProgressEvent("interpolate", 1, 1, f"{len(todo)} pair(s) computed, {len(pairs) - len(todo)} cached"),
                     force=True)
    return {"pairs": [list(p) for p in pairs], "curve_key": key, "computed": len(todo)}


# -- evaluate -------------------------------------------------------------------------------------------


CPU_EVAL_STACK = 1  # models per evaluation batch on CPU (benchmarks/bench_stacked_eval.py decides)
MAX_EVAL_STACK = 64  # models per evaluation batch on CUDA, further capped by free memory


def eval_stack_size(device: str | torch.device, n_params: int) -> int:
    """How many models one evaluation batch stacks: CPU_EVAL_STACK on CPU; on CUDA by free memory."""
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_EVAL_STACK
    free, _ = torch.cuda.mem_get_info(device)
    per_model = 4 * 8 * n_params  # weights, the pixel-space first layer, its Gram, autograd copies
    return max(1, min(MAX_EVAL_STACK, int(0.25 * free) // max(per_model, 1)))


def _test_set(dataset: str, config, device) -> tuple:
    from backend.data import load_split, to_float

    x, y = load_split(dataset, train=False)
    x, y = (x, y) if config.subset is None else (x[:config.subset], y[:config.subset])
    return to_float(x).to(device), y.to(device)  # [N, C, H, W], [N]


def evaluate_params(params_list, dataset: str, eval_config, *, device=None, progress=None, test_set=None) -> list:
    """The "evaluate K models" work unit (no store): one list of EvalRow per state dict, in order.

    One model runs through suite.evaluate_model; several run as one stacked network (evaluate_stack),
    which gives each model the rows it would get alone. `test_set` = (x, y) on the device, else loaded.
    """
    from backend.data import dataset_info
    from backend.evaluate.config import EvalConfig
    from backend.evaluate.stacked import evaluate_stack
    from backend.evaluate.suite import evaluate_model
    from backend.models import mlp_from_state_dict

    config = eval_config if isinstance(eval_config, EvalConfig) else EvalConfig.from_dict(dict(eval_config or {}))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    x, y = test_set if test_set is not None else _test_set(dataset, config, device)
    in_shape = tuple(dataset_info(dataset).in_shape)
    if len(params_list) == 1:
        model = mlp_from_state_dict(params_list[0], in_shape=in_shape).to(device)
        return [evaluate_model(model, x, y, config, progress=progress)]
    models = [mlp_from_state_dict(p, in_shape=in_shape) for p in params_list]
    return evaluate_stack(models, x, y, config, device=device, progress=progress)


def evaluate_models(model_ids, eval_config, ctx: JobContext, *, stack: int | None = None) -> int:
    """Evaluate each model not yet evaluated under this config; returns how many were evaluated now.

    Models go in device-sized batches (eval_stack_size; `stack` overrides it) of one dataset and
    architecture, each batch one evaluate_params call; every model's rows are saved as soon as its batch
    is done, so cancelling between batches or killing the worker loses at most one batch, and a rerun
    evaluates only the models without rows.
    """
    from backend.evaluate.config import EvalConfig

    config = eval_config if isinstance(eval_config, EvalConfig) else EvalConfig.from_dict(dict(eval_config or {}))
    eval_key = config.key()
    with connect():  # one store open for all the look-ups
        rows = []
        for mid in model_ids:
            row = store_models.get_model(int(mid))
            if row is None:
                raise ValueError(f"model {mid} does not exist")
            rows.append(row)
        store_evals.register_eval_config(eval_key, config.to_dict())  # after the checks: bad ids write nothing
        done = store_evals.evaluated_model_ids(eval_key, [int(r["id"]) for r in rows])
        todo = [r for r in rows if int(r["id"]) not in done]
    from backend.estimate import _split_sizes, arch_key, eval_units, layer_sizes
    from backend.jobs.executors import Unit
    from backend.jobs.units import evaluate_unit, to_bytes

    executor = executor_of(ctx)
    device = executor.device  # where the units compute: it decides the batch size
    ctx.cache_hits += len(rows) - len(todo)
    groups: dict[tuple, list[dict]] = {}
    for row in todo:  # one stack holds one dataset and one architecture
        groups.setdefault((row["dataset"], tuple(decoded(row["widths"]))), []).append(row)
    batches = []
    for (dataset, widths), group in groups.items():
        sizes = layer_sizes(dataset, list(widths))
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        k = stack or (eval_stack_size(device, n_params) if executor.in_process else
                      (CPU_EVAL_STACK if device.type != "cuda" else MAX_EVAL_STACK // 4))
        batches += [group[i:i + k] for i in range(0, len(group), k)]
    test_sets = {}
    with ctx.within() as sub:
        damaged_before = len(ctx.damaged)
        units, unit_rows = [], []
        finished = 0
        for batch in batches:
            dataset = batch[0]["dataset"]
            lo, hi = finished / len(todo), (finished + len(batch)) / len(todo)
            label = f"model {finished + 1} of {len(todo)}" if len(batch) == 1 else \
                f"models {finished + 1}-{finished + len(batch)} of {len(todo)}"
            finished += len(batch)
            if dataset not in test_sets:  # one load per dataset, not per model (Ray: one copy in its store)
                test_sets[dataset] = executor.share(_test_set(dataset, config, executor.data_device))

            def load(batch=batch, lo=lo, u=len(units)):  # weights read when the unit starts, not all at once
                params, good = [], []
                for row in batch:
                    try:
                        params.append(store_weights.load_weights(row["weights"]))
                        good.append(row)
                    except store_weights.WeightsCorrupt as err:  # skip and report it; the others go on
                        ctx.damaged.append(int(row["id"]))
                        ctx.progress(ProgressEvent("evaluate", int(lo * len(todo)), len(todo),
                                                   f"skipped model {row['id']}: {err}"), force=True)
                unit_rows[u] = good
                if not good:
                    return None
                return {"weights": params if executor.in_process else [to_bytes(p) for p in params]}

            local = {"progress": _LazySpan(sub, lo, hi)} if executor.in_process else {}
            units.append(Unit(evaluate_unit, {"dataset": dataset, "eval_config": config.to_dict()}, label,
                              shared={"test_set": test_sets[dataset]}, local=local, prepare=load))
            unit_rows.append([])
        started = {}

        def before(u):
            ctx.check_cancel(force=True)
            started[u] = time.perf_counter()

        def on_result(u, results):
            good = unit_rows[u]
            with connect():
                for row, model_rows in zip(good, results, strict=True):
                    store_evals.save_evaluations(int(row["id"]), eval_key, model_rows)
            if u in started:
                dataset = good[0]["dataset"]
                sizes = layer_sizes(dataset, decoded(good[0]["widths"]))
                record_work(ctx, "evaluate", arch_key(sizes),
                            eval_units(sizes, config, len(good), _split_sizes(dataset)[1]),
                            time.perf_counter() - started[u])

        _run_units(ctx, executor, units, on_result, before=before)
        sub(0.0, 1.0)
        skipped = len(ctx.damaged) - damaged_before
        ctx.progress(ProgressEvent("evaluate", 1, 1, f"{len(todo) - skipped} evaluated, "
                                   f"{len(rows) - len(todo)} already evaluated (cached)"
                                   + (f", {skipped} skipped (damaged weights)" if skipped else "")),
                     force=True)
    return len(todo) - skipped
