"""The interpolate step: the interpolation curves and barriers between pairs of models (a tree's parent pairs
included). A pair is cached by its curve config key: pairs already stored under it are skipped."""

from __future__ import annotations

from backend.jobs.context import JobContext
from backend.jobs.merge_step import load_leaves
from backend.jobs.step_common import LazySpan, executor_of, run_units
from backend.progress import ProgressEvent
from store import trees as store_trees
from store.db import connect
from store.jsonutil import decoded


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
                local = {"progress": LazySpan(sub, i / len(todo), (i + 1) / len(todo))}
            else:
                pair, local = {"params_a": to_bytes(params_a), "params_b": to_bytes(params_b)}, {}
            units.append(Unit(interpolate_unit, {**pair, "config": config.to_dict()}, f"pair {i + 1} of {len(todo)}",
                              shared=dict(entry), local=local))

        def before(u):
            ctx.check_cancel(force=True)

        def on_result(u, rows):
            a_id, b_id = todo[u]
            store_curves.save_curves(a_id, b_id, key, rows)

        run_units(ctx, executor, units, on_result, before=before, section=False)
        sub(0.0, 1.0)
        ctx.progress(ProgressEvent("interpolate", 1, 1, f"{len(todo)} pair(s) computed, {len(pairs) - len(todo)} cached"),
                     force=True)
    return {"pairs": [list(p) for p in pairs], "curve_key": key, "computed": len(todo)}
