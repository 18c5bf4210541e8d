"""The Ray executor on a real local Ray cluster (2 CPUs, no dashboard, one per test session) and real
Fashion-MNIST: the same specs store the same models, trees, evaluation rows and training curves as the local
executor; cancel stops the cluster's tasks; a killed Ray worker's unit is retried; a bad address fails fast
with one line and leaves the store alone."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.realdata

TRAIN = {"dataset": "fashion_mnist", "widths": [32, 16], "epochs": 1, "train_subset": 1000}
EVAL = {"metrics": ["accuracy", "fgsm", "noise", "weight_norm", "lipschitz_global", "lipschitz_local"],
        "subset": 200, "lipschitz_points": 8}
LONG_TRAIN = {"dataset": "fashion_mnist", "widths": [128], "epochs": 40}  # a unit that runs for seconds


def _require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        if IN_CI:
            pytest.fail("Python package ray is missing; the test command installs the 'ray' extra (CI must not "
                        "skip the Ray tests)")
        pytest.skip("Python package ray is missing (pip install -e '.[ray]')")


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the session, this process its driver; yields its GCS address."""
    _require_ray()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _run(spec, executor: dict | None) -> tuple[str, dict]:
    from backend.jobs.runner import run_job
    from backend.jobs.spec import with_executor
    from store import jobs as store_jobs

    job_id = store_jobs.create_job(spec.kind, with_executor(spec.to_dict(), executor), spec.key())
    status = run_job(job_id)
    job = store_jobs.get_job(job_id)
    result = job.get("result")
    return status, {"job_id": job_id, "error": job.get("error"),
                    **(json.loads(result) if isinstance(result, str) else result or {})}


def _study(executor: dict | None) -> tuple[dict, object]:
    """Train a 4-model zoo, merge it (hierarchical tree of 4 leaves + MergeMany) and evaluate every node."""
    from backend.jobs.spec import MergeSpec, TrainSpec

    status, trained = _run(TrainSpec(name="zoo", train=TRAIN, n_models=4), executor)
    assert status == "done", trained
    spec = MergeSpec(model_ids=tuple(trained["model_ids"]), methods=("hierarchical", "merge_many"), evaluate=EVAL)
    status, merged = _run(spec, executor)
    assert status == "done", merged
    return merged, spec


def _snapshot() -> dict:
    """Everything the study stored, named by keys (ids may differ between runs)."""
    from store.db import query_df

    models = query_df("SELECT id, key, kind, level, node_index, weights, parents, carried, seed FROM models")
    key_of = dict(zip(models["id"], models["key"], strict=True))
    snap = {"models": {r.key: (r.kind, int(r.level), r.node_index, r.weights, r.carried, r.seed,
                               tuple(key_of[p] for p in json.loads(r.parents)))
                       for r in models.itertuples()}}
    merges = query_df("SELECT model_id, method, lam, sweeps, objective FROM merges")
    snap["merges"] = {key_of[r.model_id]: (r.method, None if r.lam != r.lam else r.lam, int(r.sweeps), r.objective)
                      for r in merges.itertuples()}
    evals = query_df("SELECT model_id, eval_key, metric, param, value FROM evaluations")
    snap["evaluations"] = {(key_of[r.model_id], r.eval_key, r.metric, None if r.param != r.param else r.param): r.value
                           for r in evals.itertuples()}
    curves = query_df("SELECT model_key, epoch, loss, acc FROM train_curves")
    snap["curves"] = {(r.model_key, int(r.epoch)): (r.loss, r.acc) for r in curves.itertuples()}
    return snap


def _leftover_temps(home: Path) -> list[Path]:
    return [p for p in home.rglob("*.tmp")]


def test_the_same_study_on_ray_stores_exactly_what_the_local_executor_stores(ray_cluster, tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a Ray unit with 1 CPU computes with 1 thread; same thread count, same floats
    try:
        monkeypatch.setenv("REBASIN_HOME", str(tmp_path / "local"))
        local_result, local_spec = _study(None)
        local = _snapshot()
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setenv("REBASIN_HOME", str(tmp_path / "ray"))
    ray_result, _ = _study({"kind": "ray"})
    remote = _snapshot()

    assert ray_result["executor"]["kind"] == "ray" and ray_result["executor"]["resources"]["CPU"] == 2
    assert local_result["executor"]["kind"] == "local"
    assert len(local["models"]) == 4 + 3 + 1  # leaves, hierarchical nodes, MergeMany root
    assert len(local["evaluations"]) > 0 and len(local["curves"]) == 4
    for part in ("models", "merges", "evaluations", "curves"):
        assert remote[part] == local[part], part  # same keys, same weights hashes, same values bit for bit
    assert not _leftover_temps(tmp_path)

    # the job row records the executor; a rerun on the other executor is all cache hits
    from backend.jobs.spec import executor_settings
    from store import jobs as store_jobs

    assert executor_settings(store_jobs.get_job(ray_result["job_id"])["spec"]) == {"kind": "ray"}
    monkeypatch.setenv("REBASIN_HOME", str(tmp_path / "local"))
    status, again = _run(local_spec, {"kind": "ray"})
    assert status == "done" and again["cache_hits"] == 2 + 8  # two trees, eight evaluations
    assert _snapshot() == local


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _ours(pid: int) -> bool:
    """Whether the process descends from this test process (the session's cluster, not another one)."""
    while pid > 1:
        pid = _parent(pid)
        if pid == os.getpid():
            return True
    return False


def _unit_pids() -> list[int]:
    """Workers of this session's Ray cluster running a lab unit right now (their title is ray::run_unit)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"ray::run_unit") and _ours(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _wait_for(predicate, timeout: float = 120.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def _train_in_thread(spec, executor):
    from backend.jobs.runner import run_job
    from backend.jobs.spec import with_executor
    from store import jobs as store_jobs

    job_id = store_jobs.create_job(spec.kind, with_executor(spec.to_dict(), executor), spec.key())
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("status", run_job(job_id)), daemon=True)
    thread.start()
    return job_id, thread, out


def test_cancel_stops_the_tasks_on_the_cluster(ray_cluster, lab_home):
    from backend.jobs.spec import TrainSpec
    from store import jobs as store_jobs
    from store.db import query_df

    job_id, thread, out = _train_in_thread(TrainSpec(name="long", train=LONG_TRAIN, n_models=2), {"kind": "ray"})
    assert _wait_for(_unit_pids), "no unit started on the cluster"
    store_jobs.request_cancel(job_id)
    thread.join(timeout=120)
    assert out.get("status") == "cancelled"
    assert store_jobs.get_job(job_id)["status"] == "cancelled"
    assert _wait_for(lambda: not _unit_pids(), timeout=30), "the cluster still runs the job's units"
    assert query_df("SELECT count(*) AS n FROM models")["n"][0] == 0  # nothing half-done reached the store
    assert not _leftover_temps(lab_home)


def test_a_killed_ray_worker_is_retried_and_the_job_finishes(ray_cluster, lab_home):
    from backend.jobs.spec import TrainSpec
    from store import jobs as store_jobs
    from store import weights as store_weights
    from store.db import query_df

    train = {**LONG_TRAIN, "epochs": 3, "train_subset": 20000}  # long enough to be caught running
    job_id, thread, out = _train_in_thread(TrainSpec(name="killed", train=train, n_models=1), {"kind": "ray"})
    victims = _wait_for(_unit_pids)
    assert victims, "no unit started on the cluster"
    os.kill(victims[0], signal.SIGKILL)  # a worker dies mid-unit
    thread.join(timeout=300)
    assert out.get("status") == "done", store_jobs.get_job(job_id)["error"]
    models = query_df("SELECT key, weights FROM models")
    assert len(models) == 1
    assert all(store_weights.verify_weights(h) is None for h in models["weights"])
    assert not _leftover_temps(lab_home)


def test_a_worker_dying_past_its_retries_fails_the_job_with_one_line(ray_cluster, lab_home, monkeypatch):
    from backend.jobs.spec import TrainSpec
    from store import jobs as store_jobs

    monkeypatch.setenv("REBASIN_RAY_RETRIES", "0")
    job_id, thread, out = _train_in_thread(TrainSpec(name="dies", train=LONG_TRAIN, n_models=1), {"kind": "ray"})
    victims = _wait_for(_unit_pids)
    assert victims, "no unit started on the cluster"
    os.kill(victims[0], signal.SIGKILL)
    thread.join(timeout=120)
    assert out.get("status") == "failed"
    error = store_jobs.get_job(job_id)["error"]
    assert "\n" not in error and "Ray worker running model 1 of 1 died" in error and "rerun" in error


def _cli(*args: str, env_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "REBASIN_HOME": str(env_home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_cli_runs_a_job_on_a_cluster_by_address(ray_cluster, lab_home):
    """The user's path: `--executor ray --ray-address HOST:PORT` connects to a running cluster (the code
    travels with the job) and `jobs show` says where it ran."""
    proc = _cli("train", "--dataset", "fashion_mnist", "--n", "2", "--epochs", "1", "--widths", "16",
                "--train-subset", "500", "--quiet", "--executor", "ray", "--ray-address", ray_cluster,
                env_home=lab_home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "models " in proc.stdout
    from backend.runs import runs_table
    from store import jobs as store_jobs

    table = runs_table(store_jobs.list_jobs())
    assert table["executor"].tolist() == ["ray · 1 node · 2 CPU"]


@pytest.mark.parametrize("address", ["127.0.0.1:1", "no-port-here"])
def test_a_bad_ray_address_is_one_error_line_and_leaves_the_store_alone(address, lab_home, capsys):
    _require_ray()
    from backend.cli import main

    code = main(["train", "--dataset", "fashion_mnist", "--n", "1", "--epochs", "1", "--executor", "ray",
                 "--ray-address", address])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("error: ") and "\n" not in err and address in err
    assert not lab_home.exists()  # no store, no job row, no logs
