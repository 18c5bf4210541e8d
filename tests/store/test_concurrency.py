"""Several real processes on one store: no lock errors, no lost rows, no half-written transactions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store import db
from store.evaluations import evaluations
from store.jobs import list_jobs
from store.models import list_models
from store.weights import save_weights

SCRIPT = Path(__file__).with_name("store_proc.py")
REPO = Path(__file__).resolve().parents[2]


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=REPO, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise AssertionError(f"helper process did not start: {line!r} {proc.stderr.read()}")


@pytest.fixture
def weights(make_tiny_params):
    db.query_df("SELECT 1")  # create the schema before the crowd arrives
    return save_weights(make_tiny_params(0))


def test_three_writers_and_a_reader(weights, tmp_path):
    n = 25  # 25 models + 25 jobs (4 job updates each) per writer
    stop = tmp_path / "stop"
    reader = _spawn("read", str(stop))
    writers = [_spawn("write", tag, str(n), weights) for tag in ("a", "b", "c")]
    try:
        for w in writers:
            out, err = w.communicate(timeout=300)
            assert w.returncode == 0, err
            assert out.strip() == "done" and "Traceback" not in err
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert int(out.split()[1]) > 0
    models = list_models()
    assert sorted(models["key"]) == sorted(f"{t}-{i}" for t in "abc" for i in range(n))
    jobs = list_jobs(limit=1000)
    assert len(jobs) == 3 * n and set(jobs["status"]) == {"done"}
    assert models["id"].is_unique and jobs["id"].is_unique


def test_killed_mid_transaction_leaves_no_half_rows(weights):
    proc = _spawn("hold_tx", weights)
    _wait_ready(proc)  # it holds the lock with uncommitted rows
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with db.connect(timeout=30) as con:
        assert con.execute("SELECT count(*) FROM models").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM evaluations").fetchone()[0] == 0
    assert list_models().empty


def test_killed_while_holding_the_lock_does_not_block(weights):
    proc = _spawn("hold_lock")
    _wait_ready(proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    start = time.monotonic()
    assert list_jobs().empty
    assert time.monotonic() - start < 30


def test_killed_during_commits_keeps_every_transaction_whole(weights):
    proc = _spawn("churn", weights)
    _wait_ready(proc)
    deadline = time.monotonic() + 60
    while len(list_models()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # lands anywhere: between, inside or committing a transaction
    proc.wait(10)
    models = list_models()
    assert len(models) >= 3
    rows = evaluations()
    per_model = rows.groupby("model_id").size()
    assert set(per_model.index) == set(models["id"])  # every model came with its evaluations
    assert set(per_model) == {3}
