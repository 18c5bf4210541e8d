"""What part of a job's work the store already holds, counted without doing any of it.

Jobs cache by key (backend/jobs/*_step.py): a trained model by (zoo, training config, seed), a tree by its
tree key once its root is set (the root is set last), an evaluation by (model, eval config key), an
interpolation curve by (pair, curve config key); a rerun recomputes none of them. The time estimates (backend/estimate/) ask
here so that they price only the work still to do.

Cheap enough for a page render: a handful of queries in one short store open, no torch, no weights read (so a
damaged weights file, which a job would recompute, still counts as stored). `before` (a naive-UTC datetime)
counts only what was stored before then: a running job's estimate is of the work it had when it started, not
minus its own progress. Any store trouble (busy, read-only and not created, damaged) gives None, and the caller
prices the whole job.
"""

from __future__ import annotations

from dataclasses import dataclass

LOOKUP_TIMEOUT_S = 2.0  # how long an estimate waits for the store's lock before pricing everything


@dataclass(frozen=True)
class Stored:
    """A job's work units the store already holds, per phase."""

    models: int = 0  # trained models of the job's zoos
    trees: tuple[tuple[str, int], ...] = ()  # (method, leaves) of each complete tree
    evaluated: int = 0  # models with results under the job's eval config
    curves: int = 0  # pairs with interpolation curves under the job's curve config (per tree for experiments)


def _lookup(read) -> Stored | None:
    """read() inside one store open with a short lock wait; None when the store cannot answer."""
    from store.db import STORE_ERRORS, connect

    try:
        with connect(timeout=LOOKUP_TIMEOUT_S):
            return read()
    except (*STORE_ERRORS, OSError, ValueError, KeyError, TypeError):
        return None


def _zoo_models(spec, before) -> list[int | None]:
    """The stored model id of each of a TrainSpec's seeds (None where it is not stored), in seed order."""
    from backend.jobs.spec import model_key
    from backend.train_config import seeds_for
    from store import models as store_models

    zoo_key, train_key = spec.zoo_key(), spec.train_config().key()
    keys = [model_key(zoo_key, train_key, seed) for seed in seeds_for(spec.base_seed, spec.n_models)]
    found = store_models.ids_by_key(keys, before)
    return [found.get(key) for key in keys]


def _complete_trees(spec, before) -> dict[str, int]:
    """{method: tree id} of a MergeSpec's trees that are complete."""
    from backend.jobs.spec import tree_key
    from store import trees as store_trees

    keys = {tree_key(spec, method): method for method in spec.methods}
    return {keys[key]: tree_id for key, tree_id in store_trees.complete_trees(keys, before).items()}


def _evaluated(model_ids, eval_config, before) -> int:
    from store import evaluations as store_evals

    ids = sorted(set(model_ids))
    return len(store_evals.evaluated_model_ids(eval_config.key(), ids, before)) if ids else 0


def _with_curves(pairs, connectivity: dict, before) -> set[tuple[int, int]]:
    from backend.connectivity_config import ConnectivityConfig
    from store import curves as store_curves

    if not pairs:
        return set()
    return store_curves.pairs_with_curves(pairs, ConnectivityConfig.from_dict(dict(connectivity)).key(), before)


def train_stored(spec, before=None) -> Stored | None:
    """How many of a TrainSpec's models are stored."""
    return _lookup(lambda: Stored(models=sum(m is not None for m in _zoo_models(spec, before))))


def merge_stored(spec, before=None) -> Stored | None:
    """A MergeSpec's complete trees, and (when it evaluates) how many of its leaves and those trees' nodes
    already have results under its eval config (the nodes of trees still to build are all new)."""
    from backend.evaluate.config import EvalConfig
    from store import trees as store_trees

    def read() -> Stored:
        trees = _complete_trees(spec, before)
        evaluated = 0
        if spec.evaluate is not None:
            nodes = [m for _, m, _ in store_trees.merged_nodes(trees.values())] if trees else []
            evaluated = _evaluated([*spec.model_ids, *nodes], EvalConfig.from_dict(dict(spec.evaluate)), before)
        return Stored(trees=tuple((method, len(spec.model_ids)) for method in trees), evaluated=evaluated)

    return _lookup(read)


def evaluate_stored(model_ids, eval_config: dict, before=None) -> Stored | None:
    """How many of these models already have results under this EvalConfig dict."""
    from backend.evaluate.config import EvalConfig

    return _lookup(lambda: Stored(evaluated=_evaluated(model_ids, EvalConfig.from_dict(dict(eval_config or {})),
                                                       before)))


def curves_stored(pairs, connectivity: dict, before=None) -> Stored | None:
    """How many of these (model_a, model_b) pairs already have curves under this ConnectivityConfig dict."""
    return _lookup(lambda: Stored(curves=len(_with_curves([tuple(p) for p in pairs], connectivity, before))))


def experiment_stored(plan, before=None) -> Stored | None:
    """An ExperimentPlan's stored work, looked up the way run_experiment would find it: its zoos' models by
    key; each leaf group's trees by their keys once all of the group's leaves are stored (else the group's
    leaves, hence its trees, are new); evaluations of those models and nodes; and, with connectivity, the
    curves of every complete hierarchical tree's parent pairs (counted per tree, as the estimate counts them)."""
    from backend.jobs.experiment import merge_specs, zoo_specs
    from store import trees as store_trees

    def read() -> Stored:
        zoos = {kind: _zoo_models(spec, before) for kind, spec in zoo_specs(plan).items()}
        models = [m for ids in zoos.values() for m in ids if m is not None]
        trees = []  # (method, leaves, tree id)
        for group, (start, n) in enumerate(plan.leaf_groups()):
            leaves = zoos["plain"][start:start + n]
            if None in leaves:
                continue
            for spec in merge_specs(plan, group, leaves):
                trees += [(method, n, tree_id) for method, tree_id in _complete_trees(spec, before).items()]
        nodes = store_trees.merged_nodes([t for _, _, t in trees]) if trees else []
        evaluated = _evaluated(models + [m for _, m, _ in nodes], plan.eval_config(), before)
        curves = 0
        if plan.connectivity is not None:
            hierarchical = {t for method, _, t in trees if method == "hierarchical"}
            pairs = [(t, tuple(parents)) for t, _, parents in nodes if t in hierarchical and len(parents) == 2]
            done = _with_curves(sorted({p for _, p in pairs}), plan.connectivity, before)
            curves = sum(p in done for _, p in pairs)
        return Stored(models=len(models), trees=tuple((m, n) for m, n, _ in trees), evaluated=evaluated,
                      curves=curves)

    return _lookup(read)
