"""A read-only store can still be read (listings, pages, CLI), with its lock outside the store folder and the
file left byte for byte as it was; a write or a job start is one clear message, not DuckDB's error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from store import db
from store import jobs as store_jobs
from store import models as store_models
from store import weights as store_weights
from store.paths import db_path, home_dir


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def frozen(make_tiny_params, monkeypatch):
    """A store with a model and a finished job, then opened read-only (as a folder without write access is)."""
    mid = store_models.add_model(kind="trained", dataset="fashion_mnist", widths=[8, 6], config={},
                                 weights=store_weights.save_weights(make_tiny_params(0)), key="m", seed=0)
    job = store_jobs.create_job("train", {"kind": "train", "name": "z"}, "k")
    store_jobs.finish_job(job, "done", result={"zoo_id": 1})
    (home_dir() / "lab.lock").unlink()
    monkeypatch.setenv("REBASIN_READ_ONLY", "1")
    return {"model": mid, "job": job, "digest": _digest(db_path()),
            "files": sorted(p.name for p in home_dir().iterdir())}


def test_a_read_only_store_is_read_and_left_untouched(frozen, capsys):
    from backend.cli import main

    assert list(store_models.list_models()["id"]) == [frozen["model"]]
    assert main(["jobs", "list"]) == 0 and "done" in capsys.readouterr().out  # listing (no reap write)
    assert main(["jobs", "show", str(frozen["job"])]) == 0
    with pytest.raises(db.StoreReadOnly, match="read-only .*REBASIN_READ_ONLY is set"):
        store_jobs.create_job("train", {"kind": "train"}, "x")
    assert main(["train", "--dataset", "fashion_mnist", "--n", "1", "--epochs", "1", "--widths", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: The lab store") and "read-only" in err and "\n" not in err
    assert _digest(db_path()) == frozen["digest"]
    assert sorted(p.name for p in home_dir().iterdir()) == frozen["files"]  # no lab.lock beside the store
    assert db.lock_path(read_only=True).parent != home_dir()


def test_an_estimate_reads_a_read_only_store_and_writes_nothing(frozen, capsys):
    """`experiment --estimate` only reads: it works on a read-only store, and the machine's calibration it
    times stays in memory (no calibration.json in the home)."""
    from backend.cli import main
    from backend.estimate import forget_calibration

    forget_calibration()
    assert main(["experiment", "--preset", "demo", "--dataset", "fashion_mnist", "--widths", "8,6",
                 "--estimate"]) == 0
    assert "estimate about" in capsys.readouterr().out
    assert _digest(db_path()) == frozen["digest"]
    assert sorted(p.name for p in home_dir().iterdir()) == frozen["files"]
    assert main(["experiment", "--preset", "demo", "--dataset", "fashion_mnist", "--widths", "8,6"]) == 2
    assert "read-only" in capsys.readouterr().err  # starting it is still refused


def test_an_unwritable_folder_opens_read_only_by_itself(frozen, monkeypatch):
    monkeypatch.delenv("REBASIN_READ_ONLY")
    assert db.read_only_reason() is None
    home = home_dir()
    monkeypatch.setattr(db, "_writable", lambda path: Path(path) != home)  # as for a user without write access
    assert db.read_only_reason() == f"its folder {home} is not writable"
    assert len(store_models.list_models()) == 1
    with pytest.raises(db.StoreReadOnly, match="not writable"):
        store_jobs.create_job("train", {"kind": "train"}, "y")


def test_no_store_and_no_write_access_is_one_sentence(monkeypatch):
    monkeypatch.setenv("REBASIN_READ_ONLY", "1")
    with pytest.raises(db.StoreReadOnly, match="There is no lab store at"):
        store_models.list_models()
