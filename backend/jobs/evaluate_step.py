"""The evaluate step: the "evaluate K models" unit (evaluate_params, no store) and the job step that runs
it in device-sized batches (evaluate_models). A model is cached by its eval config key: one with rows under it
is skipped, and each batch's rows are saved as soon as it is done."""

from __future__ import annotations

import time

import torch

from backend.jobs.context import JobContext
from backend.jobs.step_common import LazySpan, executor_of, record_work, run_units
from backend.progress import ProgressEvent
from store import evaluations as store_evals
from store import models as store_models
from store import weights as store_weights
from store.db import connect
from store.jsonutil import decoded

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
    from backend.estimate.cost import arch_key, eval_units, layer_sizes, split_sizes
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

            local = {"progress": LazySpan(sub, lo, hi)} if executor.in_process else {}
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
                            eval_units(sizes, config, len(good), split_sizes(dataset)[1]),
                            time.perf_counter() - started[u])

        run_units(ctx, executor, units, on_result, before=before)
        sub(0.0, 1.0)
        skipped = len(ctx.damaged) - damaged_before
        ctx.progress(ProgressEvent("evaluate", 1, 1, f"{len(todo) - skipped} evaluated, "
                                   f"{len(rows) - len(todo)} already evaluated (cached)"
                                   + (f", {skipped} skipped (damaged weights)" if skipped else "")),
                     force=True)
    return len(todo) - skipped
