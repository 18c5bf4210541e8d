"""A separate process that uses the store, for tests/store/test_concurrency.py.

python tests/store/store_proc.py write TAG N WEIGHTS  -> N models and N jobs (each created, then done)
python tests/store/store_proc.py read STOPFILE         -> polls list_jobs until STOPFILE exists
python tests/store/store_proc.py hold_tx WEIGHTS       -> inserts rows in an open transaction, then sleeps
python tests/store/store_proc.py hold_lock             -> holds the store lock, then sleeps
python tests/store/store_proc.py churn WEIGHTS         -> endless transactions: 1 model + 3 eval rows each
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from store import db
from store.evaluations import save_evaluations
from store.jobs import create_job, finish_job, list_jobs
from store.models import add_model


def _model(tag: str, i: int, weights: str) -> int:
    return add_model(kind="trained", dataset="fashion_mnist", widths=(8, 6), config={"tag": tag},
                     weights=weights, key=f"{tag}-{i}", seed=i)


def write(tag: str, n: int, weights: str) -> None:
    for i in range(n):
        _model(tag, i, weights)
        job = create_job("train", {"tag": tag, "i": i}, f"{tag}-job-{i}")
        finish_job(job, "done", result={"i": i})
    print("done", flush=True)


def read(stop_file: str) -> None:
    polls = 0
    while not Path(stop_file).exists():
        list_jobs(limit=50)
        polls += 1
        time.sleep(0.05)  # as the UI does: poll, don't spin
    print(f"polls {polls}", flush=True)


def hold_tx(weights: str) -> None:
    with db.connect() as con, db.transaction(con):
        _model("half", 0, weights)
        con.execute("INSERT INTO evaluations VALUES (1, 'ek', 'accuracy', NULL, 0.5, ?)", [db.utc_now()])
        print("ready", flush=True)
        time.sleep(600)


def hold_lock() -> None:
    with db.connect():
        print("ready", flush=True)
        time.sleep(600)


def churn(weights: str) -> None:
    i = 0
    print("ready", flush=True)
    while True:
        with db.transaction():
            mid = _model("churn", i, weights)
            save_evaluations(mid, "ek", [("accuracy", None, 0.5), ("loss", None, 1.0), ("fgsm_acc", 0.01, 0.4)])
        i += 1


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "write":
        write(args[0], int(args[1]), args[2])
    elif mode == "read":
        read(args[0])
    elif mode == "hold_tx":
        hold_tx(args[0])
    elif mode == "hold_lock":
        hold_lock()
    elif mode == "churn":
        churn(args[0])
    else:
        raise SystemExit(f"unknown mode {mode}")
