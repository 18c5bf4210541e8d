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
from backend.jobs.spec import MergeSpec, TrainSpec, canonical_key
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


def record_work(ctx: JobContext, phase: str, arch: str, units: float, seconds: float) -> None:
    """Record how long `units` of `phase` work took (store/rates.py), so estimates learn this machine's
    speed; best effort: a failed write never fails the job."""
    ctx.measured_seconds += seconds
    try:
        from store import rates as store_rates

        device = "cuda" if torch.cuda.is_available() else "cpu"
        store_rates.record_rate(phase, arch, device, torch.get_num_threads(), units, seconds, ctx.job_id)
    except Exception:  # noqa: BLE001 - the rate is a planning aid; the job's own work matters more
        pass


def model_key(zoo_key: str, train_key: str, seed: int) -> str:
    """A trained model is named by its zoo, its training config and its seed."""
    return canonical_key({"zoo": zoo_key, "train": train_key, "seed": seed})


# -- train ----------------------------------------------------------------------------------------------


def train_chunk_size() -> int:
    """Models per train_models call: on CPU one at a time is fastest; on GPU a device-sized stacked chunk
    (train.MAX_STACK, which train_models caps further by free memory), saved after it."""
    if not torch.cuda.is_available():
        return 1
    from backend.train import MAX_STACK

    return MAX_STACK


def train_zoo(spec: TrainSpec, ctx: JobContext) -> int:
    """Create (or find) the zoo and train only its missing models, saving each as soon as it exists.

    Every epoch of every model adds a point to its training curve (store/train_curves.py) while it trains,
    and with spec.curve_every = N every N training steps too (the mean over those steps)."""
    from backend.estimate import arch_key, layer_sizes, train_units
    from backend.train import seeds_for, train_models
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
    chunk = train_chunk_size()
    done_before = spec.n_models - len(missing)
    ctx.cache_hits += done_before
    with ctx.within() as sub:
        for start in range(0, len(missing), chunk):
            part = missing[start:start + chunk]
            ctx.check_cancel(force=True)
            lo = (done_before + start) / spec.n_models
            keys = [model_key(zoo_key, train_key, s) for _, s in part]
            for key in keys:
                store_train_curves.start_curve(key)

            def on_epoch(j, epoch, loss, acc, keys=keys, part=part):
                store_train_curves.add_point(keys[j], epoch, loss, acc, zoo_id=zoo_id, seed=part[j][1], job_id=ctx.job_id)

            def on_step(first, epochs, step, losses, accs, keys=keys, part=part):
                store_train_curves.add_points(  # one write for the whole stacked group
                    [(keys[first + j], epochs, loss, acc, zoo_id, part[first + j][1], step)
                     for j, (loss, acc) in enumerate(zip(losses, accs, strict=True))], job_id=ctx.job_id)

            first, last = part[0][0] + 1, part[-1][0] + 1
            label = f"model {first} of {spec.n_models}" if len(part) == 1 else \
                f"models {first}-{last} of {spec.n_models}"
            t0 = time.perf_counter()
            with ctx.section(label):
                trained = train_models(config, [s for _, s in part], on_epoch=on_epoch,
                                       on_step=on_step if spec.curve_every else None, curve_every=spec.curve_every,
                                       progress=sub(lo, lo + len(part) / spec.n_models))
            seconds = time.perf_counter() - t0
            for (index, seed), model, key in zip(part, trained, keys, strict=True):
                weights = store_weights.save_weights(model.params)  # the file first, then the row
                if seed in rows:  # a repair: the row exists; point it at the new bytes if they differ
                    if weights != rows[seed]["weights"]:
                        store_models.replace_weights(int(rows[seed]["id"]), weights)
                    continue
                store_models.add_model(
                    kind="trained", dataset=config.dataset, widths=list(config.widths),
                    config=config.to_dict(), weights=weights, key=key,
                    zoo_id=zoo_id, seed=seed, level=0, node_index=index, parents=(), seconds=model.seconds,
                    train_loss=model.train_loss, train_acc=model.train_acc)
            sizes = layer_sizes(config.dataset, config.widths)
            samples = config.train_subset or _train_split_size(config.dataset)
            record_work(ctx, "train", arch_key(sizes), train_units(sizes, len(part), config.epochs, samples), seconds)
            stored = done_before + start + len(part)
            sub(0.0, 1.0)
            ctx.progress(ProgressEvent("train", stored, spec.n_models, f"{stored} of {spec.n_models} models stored"),
                         force=True)
        if not missing:
            sub(0.0, 1.0)
            ctx.progress(ProgressEvent("train", 1, 1, f"all {spec.n_models} models already stored (cached)"),
                         force=True)
    return zoo_id


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
    datasets = sorted({r["dataset"] for r in rows})
    if len(datasets) > 1:
        raise ValueError(f"cannot merge models trained on different datasets: {', '.join(datasets)}")
    widths = sorted({tuple(decoded(r["widths"])) for r in rows})
    if len(widths) > 1:
        raise ValueError(f"cannot merge models with different widths: {', '.join(map(str, widths))}")
    params = [store_weights.load_weights(r["weights"]) for r in rows]
    return rows, params


def tree_key(spec: MergeSpec, method: str) -> str:
    """Only the settings a method takes (and its version) name its tree: average ignores lam, pairing and seed."""
    return canonical_key({"method": method, "leaves": list(spec.model_ids), **_tree_config(spec, method)})


def _tree_config(spec: MergeSpec, method: str) -> dict:
    return get_method(method).tree_config(spec.option_values())


def build_merges(spec: MergeSpec, ctx: JobContext) -> list[int]:
    """Build one tree per method over the same leaves; every node becomes a stored model."""
    spec.validate()
    rows, leaves = load_leaves(spec.model_ids)
    from backend.merge.common import check_compatible

    check_compatible(leaves)
    leaf_ids = [int(r["id"]) for r in rows]
    dataset, widths = rows[0]["dataset"], list(decoded(rows[0]["widths"]))
    from backend.estimate import arch_key, layer_sizes, merge_units

    tree_ids = []
    n_methods = len(spec.methods)
    # each method gets a slice of the bar proportional to its nominal work (averaging: a sliver)
    weights = [max(merge_units(m, len(leaf_ids), widths), 1e-3 * sum(w ** 3 for w in widths))
               for m in spec.methods]
    edges = [sum(weights[:i]) / sum(weights) for i in range(n_methods + 1)]
    with ctx.within() as sub:
        for i, method in enumerate(spec.methods):
            progress = sub(edges[i], edges[i + 1])
            key = tree_key(spec, method)
            config = {**_tree_config(spec, method), "level_convention": "merge_many/average at ceil(log2(n))"}
            tree_id = store_trees.create_tree(method, leaf_ids, config, key)
            tree_ids.append(tree_id)
            with ctx.section(f"method {i + 1} of {n_methods}: {get_method(method).short}"):
                if store_trees.get_tree(tree_id).get("root_model_id") is not None and not _tree_damaged(tree_id):
                    ctx.cache_hits += 1
                    report(progress, method, 1, 1, f"tree {tree_id} already built (cached)")
                    continue
                common = dict(dataset=dataset, widths=widths, tree_id=tree_id)
                t0 = time.perf_counter()
                root = _store_tree(spec, method, key, leaves, leaf_ids, common, progress)
                record_work(ctx, "merge", arch_key(layer_sizes(dataset, widths)),
                            merge_units(method, len(leaf_ids), widths), time.perf_counter() - t0)
                store_trees.set_tree_root(tree_id, root)  # last: a tree with a root is complete
                delete_checkpoint(key)
                ctx.progress(ProgressEvent(method, 1, 1, f"tree {tree_id} stored"), force=True)
    return tree_ids



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


def _store_tree(spec, method, key, leaves, leaf_ids, common, progress) -> int:
    """Run the registry's method and store every node above the leaves as soon as it is built (weights, model
    row and, for a node that merged two or more parents, its merge row: λ when the method takes it,
    sweeps/rounds and objective trace). A rerun after a kill passes the finished nodes to the method, which
    builds only the others; MergeMany resumes from its last round's checkpoint (store/checkpoints.py)."""
    from backend.merge.registry import ALIGNMENT_OPTIONS, needs_images

    entry = get_method(method)
    values = spec.option_values()
    images = None
    if needs_images(values) and {"matcher", "repair"} & set(entry.options):
        from backend.connectivity import image_batch

        images = image_batch(common["dataset"], values["n_images"], values["image_split"], values["image_seed"])
    lam = values["lam"] if "lam" in entry.options else None
    tree_config = entry.tree_config(values)
    alignment = {name: tree_config[name] for name in ALIGNMENT_OPTIONS if name in tree_config}
    finished = _finished_nodes(common["tree_id"], key)
    ids = {**dict(enumerate(leaf_ids)), **{i: int(row["id"]) for i, row in finished.items()}}

    def on_node(node) -> None:
        config = {"method": method, "tree_key": key, **({"lam": lam} if lam is not None else {}), **alignment,
                  "node_index": node.index}
        merged = len(node.parents) > 1
        merge = None
        if merged:
            match = node.match
            merge = {"lam": lam, "sweeps": match.sweeps if match else 0,
                     "objective": list(match.objective_trace) if match else [], "seconds": node.seconds}
        ids[node.index] = _store_node(canonical_key({"tree": key, "node": node.index}), method, node.params, config,
                                      common, level=node.level, node_index=node.index,
                                      parents=[ids[p] for p in node.parents], seconds=node.seconds,
                                      carried=not merged, merge=merge)

    nodes = entry(leaves, progress=progress, images=images, stored=_StoredWeights(
        {i: row["weights"] for i, row in finished.items()}), on_node=on_node, checkpoint=_round_state(key),
        on_checkpoint=lambda state: _save_round_state(key, state), **values)
    return ids[nodes[-1].index]


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
    from backend.connectivity import ConnectivityConfig, curves_for_pair, image_batch
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
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data: dict[str, dict] = {}
    with ctx.within() as sub:
        for i, (a_id, b_id) in enumerate(todo):
            ctx.check_cancel(force=True)
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
                data[dataset] = entry
            entry = data[dataset]
            params_a = {k: v.to(device) for k, v in params_a.items()}
            params_b = {k: v.to(device) for k, v in params_b.items()}
            curves = curves_for_pair(params_a, params_b, config, test=entry["test"], train=entry["train"],
                                     images=entry["images"], progress=sub(i / len(todo), (i + 1) / len(todo)))
            store_curves.save_curves(a_id, b_id, key, [r for c in curves for r in c.rows()])
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

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ctx.cache_hits += len(rows) - len(todo)
    groups: dict[tuple, list[dict]] = {}
    for row in todo:  # one stack holds one dataset and one architecture
        groups.setdefault((row["dataset"], tuple(decoded(row["widths"]))), []).append(row)
    batches = []
    for (dataset, widths), group in groups.items():
        sizes = layer_sizes(dataset, list(widths))
        k = stack or eval_stack_size(device, sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True)))
        batches += [group[i:i + k] for i in range(0, len(group), k)]
    test_sets = {}
    finished = 0
    with ctx.within() as sub:
        damaged_before = len(ctx.damaged)
        for batch in batches:
            ctx.check_cancel(force=True)
            t0 = time.perf_counter()
            dataset = batch[0]["dataset"]
            if dataset not in test_sets:  # one load per dataset, not per model
                test_sets[dataset] = _test_set(dataset, config, device)
            params, good = [], []
            for row in batch:
                try:
                    params.append(store_weights.load_weights(row["weights"]))
                    good.append(row)
                except store_weights.WeightsCorrupt as err:  # skip and report it; the batch goes on
                    ctx.damaged.append(int(row["id"]))
                    ctx.progress(ProgressEvent("evaluate", finished, len(todo),
                                               f"skipped model {row['id']}: {err}"), force=True)
            progress = sub(finished / len(todo), (finished + len(batch)) / len(todo))
            label = f"model {finished + 1} of {len(todo)}" if len(batch) == 1 else \
                f"models {finished + 1}-{finished + len(batch)} of {len(todo)}"
            finished += len(batch)
            if not good:
                continue
            with ctx.section(label):
                results = evaluate_params(params, dataset, config, device=device, progress=progress,
                                          test_set=test_sets[dataset])
            with connect():
                for row, model_rows in zip(good, results, strict=True):
                    store_evals.save_evaluations(int(row["id"]), eval_key,
                                                 [(r.metric, r.param, float(r.value)) for r in model_rows])
            sizes = layer_sizes(dataset, decoded(batch[0]["widths"]))
            record_work(ctx, "evaluate", arch_key(sizes),
                        eval_units(sizes, config, len(good), _split_sizes(dataset)[1]), time.perf_counter() - t0)
        sub(0.0, 1.0)
        skipped = len(ctx.damaged) - damaged_before
        ctx.progress(ProgressEvent("evaluate", 1, 1, f"{len(todo) - skipped} evaluated, "
                                   f"{len(rows) - len(todo)} already evaluated (cached)"
                                   + (f", {skipped} skipped (damaged weights)" if skipped else "")),
                     force=True)
    return len(todo) - skipped
