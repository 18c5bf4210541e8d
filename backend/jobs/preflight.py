"""A job's whole input checked against the store and this machine before anything is written.

spec.validate() checks a spec on its own (types, ranges, option values); check_inputs() adds what only the
store and the machine can say: the models and trees it names exist (trees complete), models merged or
interpolated together share dataset and widths, the leaves' weights files are intact, and every dataset the
job will load is on this machine or downloadable, and the store is writable. The UI (queue.submit_job) and the CLI (run_spec, the
experiment command) call it before they record the job, so bad input is one readable message and leaves
no job row, zoo, config row or file behind. Every failure is a ValueError (InputError) with one sentence.
"""

from __future__ import annotations

from collections.abc import Iterable

from backend.leaves import compatibility_problem


class InputError(ValueError):
    """A job's input does not fit the store or this machine; the message says what and what to do."""


def check_inputs(spec, *, writes: bool = True) -> None:
    """Raise InputError (or the spec's own ValueError) unless the whole job can start. `writes=False` (only an
    estimate is asked for) checks the input without requiring a writable store."""
    spec.validate()
    from store.db import read_only_error, read_only_reason

    reason = read_only_reason() if writes else None
    if reason is not None:  # say so now, not as a failed write halfway through
        raise InputError(str(read_only_error(reason)))
    check = _CHECKS.get(spec.kind)
    if check is not None:
        check(spec)


def _models(model_ids: Iterable[int]) -> list[dict]:
    """The rows of these models, in order; InputError naming every id that does not exist."""
    from store import models as store_models
    from store.db import connect

    ids = [int(m) for m in model_ids]
    with connect():
        rows = {m: store_models.get_model(m) for m in ids}
    missing = [m for m in ids if rows[m] is None]
    if missing:
        which = "model" if len(missing) == 1 else "models"
        raise InputError(f"{which} {', '.join(map(str, missing))} {'does' if len(missing) == 1 else 'do'} not exist")
    return [rows[m] for m in ids]


def _compatible(rows: list[dict], verb: str) -> None:
    problem = compatibility_problem(rows, verb)
    if problem is not None:
        raise InputError(problem)


def _intact(rows: list[dict]) -> None:
    from store import weights as store_weights

    damaged = [(int(r["id"]), problem) for r in rows
               if (problem := store_weights.verify_weights(r["weights"])) is not None]
    if damaged:
        listed = ", ".join(f"{mid} ({problem})" for mid, problem in damaged)
        raise InputError(f"the weights file of model {listed} is damaged; repair it with "
                         "`python -m backend store verify --repair`, then try again")


def _datasets(names: Iterable[str]) -> None:
    """Every dataset is on this machine or downloadable now; else the data module's message says what to do."""
    from backend.data import _unavailable_message, dataset_status

    for name in sorted(set(names)):
        if dataset_status(name) == "missing":
            raise InputError(_unavailable_message(name, True))


def _train(spec) -> None:
    _datasets([spec.train_config().dataset])


def _merge(spec) -> None:
    from backend.merge.registry import get_method, needs_images

    rows = _models(spec.model_ids)
    _compatible(rows, "merge")
    _intact(rows)
    images = needs_images(spec.option_values()) and any(
        {"matcher", "repair"} & set(get_method(m).options) for m in spec.methods)
    if spec.evaluate is not None or images:
        _datasets([rows[0]["dataset"]])


def _evaluate(spec) -> None:
    _datasets(r["dataset"] for r in _models(spec.model_ids))


def _interpolate(spec) -> None:
    from store import trees as store_trees

    rows = []
    for a, b in spec.pairs:
        pair = _models((a, b))
        _compatible(pair, "interpolate between")
        rows += pair
    for tree_id in spec.tree_ids:
        tree = store_trees.get_tree(int(tree_id))
        if tree is None:
            raise InputError(f"tree {tree_id} does not exist")
        if tree.get("root_model_id") is None:
            raise InputError(f"tree {tree_id} is incomplete (no root yet): its merge is still running or was "
                             "interrupted; rerun the same merge to finish it first")
        rows += _models(tree["leaves"][:1])
    _datasets(r["dataset"] for r in rows)


def _experiment(spec) -> None:
    from backend.experiment import spec_plan

    plan = spec_plan(spec)  # the whole plan: train configs, merge settings, evaluation config
    _datasets([plan.dataset])


_CHECKS = {"train": _train, "merge": _merge, "evaluate": _evaluate, "interpolate": _interpolate,
           "experiment": _experiment}
