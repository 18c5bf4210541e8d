"""The train step: create (or find) a zoo and train only its missing models. A model is cached by its key
(zoo, training config, seed) with an intact weights file; weights are written (atomically, content-addressed)
before the row that points to them, so a killed worker never leaves a row without its file."""

from __future__ import annotations

import torch

from backend.jobs.context import JobContext
from backend.jobs.spec import TrainSpec, model_key  # model_key: the cache key, declared without torch
from backend.jobs.step_common import LazySpan, executor_of, record_work, run_units, weights_damaged
from backend.progress import ProgressEvent
from store import models as store_models
from store import weights as store_weights
from store import zoos as store_zoos
from store.db import connect


def train_chunk_size(device=None) -> int:
    """Models per train unit (one train_models call): on a CPU one at a time is fastest; on a GPU a
    device-sized stacked chunk (train.MAX_STACK, which train_models caps further by free memory)."""
    device = torch.device(device) if device is not None else \
        torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda":
        return 1
    from backend.train import MAX_STACK

    return MAX_STACK


def train_zoo(spec: TrainSpec, ctx: JobContext) -> int:
    """Create (or find) the zoo and train only its missing models, saving each as soon as it exists.

    The seeds go to the job's executor in units of train_chunk_size() models (units.train_unit); each unit's
    models are stored as its result arrives. In process, every epoch of every model adds a point to its
    training curve (store/train_curves.py) while it trains, and with spec.curve_every = N every N training
    steps too (the mean over those steps); on a cluster a unit's curve points arrive with it."""
    from backend.estimate.cost import arch_key, layer_sizes, train_units
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
    missing = [(i, s) for i, s in enumerate(seeds) if s not in rows or weights_damaged(rows[s])]
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
                         "progress": LazySpan(sub, lo, lo + len(part) / spec.n_models)}
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

        run_units(ctx, executor, units, on_result, before=before)
        if not missing:
            sub(0.0, 1.0)
            ctx.progress(ProgressEvent("train", 1, 1, f"all {spec.n_models} models already stored (cached)"),
                         force=True)
    return zoo_id


def _train_split_size(dataset: str) -> int:
    from backend.estimate.cost import split_sizes

    return split_sizes(dataset)[0]


def zoo_model_ids(zoo_id: int) -> list[int]:
    """The trained members of a zoo, in seed order."""
    if store_zoos.get_zoo(zoo_id) is None:
        raise ValueError(f"zoo {zoo_id} does not exist")
    df = store_models.list_models(zoo_id=zoo_id, kind="trained")
    if df.empty:
        return []
    order = "node_index" if "node_index" in df.columns else "id"
    return [int(i) for i in df.sort_values([order, "id"])["id"]]
