"""Training curves: loss and accuracy of every trained model, written while it trains.

Two kinds of points: after every epoch the epoch's mean (`step` NULL, `epoch` 1.0, 2.0, …), and, when a
training job asks for them (TrainSpec.curve_every), every N training steps the mean over the steps since
the previous such point (`step` = the model's step count, `epoch` = epochs done as a fraction, e.g. 0.25).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from store.db import connect, fetch_df, transaction, utc_now
from store.jsonutil import check_key

_INSERT = ("INSERT INTO train_curves (model_key, zoo_id, seed, job_id, epoch, loss, acc, created_at, step) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def start_curve(model_key: str) -> None:
    """Forget a previous (interrupted) run's points of this model before it trains again."""
    with transaction() as con:
        con.execute("DELETE FROM train_curves WHERE model_key = ?", [check_key(model_key)])


def add_point(model_key: str, epoch: float, loss: float, acc: float, *, zoo_id: int | None = None,
              seed: int | None = None, job_id: int | None = None, step: int | None = None) -> None:
    """One point: an epoch's mean (step None, epoch 1-based) or the mean over the steps up to `step`."""
    add_points([(model_key, epoch, loss, acc, zoo_id, seed, step)], job_id=job_id)


def add_points(points: Iterable[tuple], *, job_id: int | None = None) -> None:
    """Many points in one transaction: (model_key, epoch, loss, acc, zoo_id, seed, step) each."""
    now = utc_now()
    rows = [[check_key(key), zoo_id, seed, job_id, float(epoch), float(loss), float(acc), now,
             None if step is None else int(step)] for key, epoch, loss, acc, zoo_id, seed, step in points]
    if rows:
        with transaction() as con:
            con.executemany(_INSERT, rows)


def curves(*, job_id: int | None = None, zoo_ids: Sequence[int] = (), model_ids: Sequence[int] = ()
           ) -> pd.DataFrame:
    """Points of the curves of a job's models, of zoos, or of models: model_key, model_id (None while
    the model trains), zoo_id, zoo_name, zoo_kind, seed, epoch, step (None for epoch means), loss, acc;
    ordered by model and epoch."""
    where, params = [], []
    if job_id is not None:
        where.append("c.job_id = ?")
        params.append(int(job_id))
    if zoo_ids:
        where.append("list_contains(?, c.zoo_id)")
        params.append([int(z) for z in zoo_ids])
    if model_ids:
        where.append("list_contains(?, m.id)")
        params.append([int(m) for m in model_ids])
    if not where:
        raise ValueError("choose a job, zoos or models whose training curves to read")
    with connect() as con:
        return fetch_df(con,
            "SELECT c.model_key, m.id AS model_id, c.zoo_id, z.name AS zoo_name, z.kind AS zoo_kind, c.seed, "
            "c.epoch, c.step, c.loss, c.acc FROM train_curves c LEFT JOIN models m ON m.key = c.model_key "
            "LEFT JOIN zoos z ON z.id = c.zoo_id WHERE " + " OR ".join(where)
            + " ORDER BY c.zoo_id, c.model_key, c.epoch, c.step NULLS LAST", params)
