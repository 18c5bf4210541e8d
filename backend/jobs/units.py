"""Work units: a job's work as independent, pure, picklable pieces (what an executor runs).

Each unit is a function of configs, weights and data that returns weights (canonical safetensors bytes,
store.weights.weights_bytes) and plain rows; it never touches the store, the weights folder or any file, so
it can run in the job's process (backend.jobs.executors.LocalExecutor) or on any Ray worker
(RayExecutor) with the same result. The job's driver stores results as they arrive (backend/jobs/*_step.py).

Sizes (coarse, so a Ray task runs for seconds to minutes, never milliseconds):
- train: the seeds one train_models call trains — one model per unit on a CPU (stacking is slower there),
  train.MAX_STACK stacked models on a GPU; a model is epochs x the training split.
- merge: one tree (one method over all its leaves): the levels of a hierarchical tree depend on each other
  and MergeMany's rounds are sequential, so a tree is the smallest piece worth a task.
- evaluate: one batch of models of one dataset and architecture (evaluate_step.eval_stack_size: one model on a
  CPU, a stack on a GPU) under one evaluation config — the whole protocol per model.
- interpolate: the curves and barriers of one model pair.

Inputs that are large and shared by many units (the dataset tensors, a tree's leaves) are passed through
`executor.share` (Ray: once into the object store). Weight inputs may be state dicts or bytes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping


def to_bytes(params) -> bytes:
    from store.weights import weights_bytes

    return params if isinstance(params, bytes) else weights_bytes(params)


def from_bytes(data):
    """A state dict from canonical safetensors bytes (a state dict passes through)."""
    if not isinstance(data, bytes | bytearray):
        return data
    from safetensors.torch import load

    return load(bytes(data))


def _device(device=None):
    import torch

    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def train_unit(config: dict, seeds: list[int], data=None, curve_every: int | None = None, *, device=None,
               progress=None, on_epoch=None, on_step=None) -> list[dict]:
    """Train one model per seed (one train_models call); per model: seed, weights bytes, seconds, final
    losses/accuracies, its training curve [(epoch, loss, acc), ...] and, with curve_every = N, its means over
    every N steps [(epochs done, step, loss, acc), ...]."""
    from backend.train import TrainConfig, train_models

    cfg = TrainConfig.from_dict(dict(config))
    curves: list[list[tuple[int, float, float]]] = [[] for _ in seeds]
    steps: list[list[tuple[float, int, float, float]]] = [[] for _ in seeds]

    def record(j, epoch, loss, acc):
        curves[j].append((int(epoch), float(loss), float(acc)))
        if on_epoch is not None:
            on_epoch(j, epoch, loss, acc)

    def record_steps(first, epochs, step, losses, accs):
        for j, (loss, acc) in enumerate(zip(losses, accs, strict=True)):
            steps[first + j].append((float(epochs), int(step), float(loss), float(acc)))
        if on_step is not None:
            on_step(first, epochs, step, losses, accs)

    t0 = time.perf_counter()
    trained = train_models(cfg, list(seeds), device=device, progress=progress, data=data, on_epoch=record,
                           on_step=record_steps if curve_every else None, curve_every=curve_every)
    wall = time.perf_counter() - t0
    return [{"seed": int(m.seed), "weights": to_bytes(m.params), "seconds": float(m.seconds),
             "train_loss": float(m.train_loss), "train_acc": float(m.train_acc), "test_acc": float(m.test_acc),
             "curve": curves[j], "steps": steps[j], "wall": wall}
            for j, m in enumerate(trained)]


class _LazyWeights(Mapping):
    """{node index: params} decoded from bytes only when the method needs that node as a parent."""

    def __init__(self, stored):
        self._stored = stored

    def __getitem__(self, index):
        return from_bytes(self._stored[index])

    def __iter__(self):
        return iter(self._stored)

    def __len__(self):
        return len(self._stored)


def merge_unit(method: str, values: dict, leaves: list, images=None, stored=None, checkpoint=None, *,
               progress=None, on_node=None, on_checkpoint=None) -> dict:
    """One tree: the registry's method over the leaves. `stored` {node index: params or bytes} and
    `checkpoint` (MergeMany's round state) are what an interrupted run left: only the other nodes are built.
    In process `on_node` stores each node as it is built and `on_checkpoint` each MergeMany round; without
    `on_node` the built nodes come back: {"root": the root's node index, "nodes": [{index, level, parents
    (node indices), weights bytes, seconds, match {sweeps, objective_trace} | None}, ...]}."""
    from backend.merge.registry import get_method

    leaves = [from_bytes(p) for p in leaves]
    built = []

    def collect(node):
        match = node.match
        built.append({"index": int(node.index), "level": int(node.level), "parents": [int(p) for p in node.parents],
                      "weights": to_bytes(node.params), "seconds": float(node.seconds),
                      "match": None if match is None else
                      {"sweeps": int(match.sweeps), "objective_trace": [float(v) for v in match.objective_trace]}})

    nodes = get_method(method)(leaves, progress=progress, images=images,
                               stored=None if stored is None else _LazyWeights(stored),
                               on_node=on_node or collect, checkpoint=checkpoint, on_checkpoint=on_checkpoint,
                               **values)
    return {"root": int(nodes[-1].index), "nodes": built}


def evaluate_unit(weights: list, dataset: str, eval_config: dict, test_set, *, device=None,
                  progress=None) -> list[list[tuple]]:
    """The evaluation protocol for a batch of models (evaluate_step.evaluate_params); per model its rows
    (metric, param, value)."""
    from backend.jobs.evaluate_step import evaluate_params

    device = _device(device)
    x, y = test_set
    params = [from_bytes(w) for w in weights]
    results = evaluate_params(params, dataset, eval_config, device=device, progress=progress,
                              test_set=(x.to(device), y.to(device)))
    return [[(r.metric, None if r.param is None else float(r.param), float(r.value)) for r in rows]
            for rows in results]


def interpolate_unit(params_a, params_b, config: dict, test, train=None, images=None, *, device=None,
                     progress=None) -> list[tuple]:
    """Curves and barriers of one pair (connectivity.curves_for_pair), as the rows store.curves saves."""
    from backend.connectivity import ConnectivityConfig, curves_for_pair

    device = _device(device)

    def move(pair):
        return None if pair is None else tuple(v.to(device) for v in pair)

    a = {k: v.to(device) for k, v in from_bytes(params_a).items()}
    b = {k: v.to(device) for k, v in from_bytes(params_b).items()}
    curves = curves_for_pair(a, b, ConnectivityConfig.from_dict(dict(config)), test=move(test), train=move(train),
                             images=None if images is None else images.to(device), progress=progress)
    return [tuple(r) for c in curves for r in c.rows()]
