"""store.db + store.migrations: schema from an empty file, lock behaviour, transactions."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from store import db
from store.migrations import LATEST_VERSION, MIGRATIONS, current_version, migrate
from store.paths import db_path

TABLES = {"schema_version", "zoos", "models", "trees", "merges", "eval_configs", "evaluations", "jobs",
          "experiments", "curves", "curve_configs", "work_rates", "train_curves"}


def _tables(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_migrations_create_every_table_once():
    assert not db_path().exists()
    with db.connect() as con:
        assert _tables(con) == TABLES
        rows = con.execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(m.version,) for m in MIGRATIONS]
    db._migrated.clear()  # as if a new process connected
    with db.connect() as con:
        assert migrate(con) == []  # idempotent: nothing pending
        assert current_version(con) == LATEST_VERSION
        assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)


def test_a_version_4_store_keeps_its_training_curves_through_migration_5(monkeypatch):
    """Curves recorded per epoch before step points existed read back as epoch means (step NULL)."""
    import store.migrations as migrations
    from store import train_curves

    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", MIGRATIONS[:4])
        m.setattr(migrations, "LATEST_VERSION", 4)
        with db.connect() as con:
            assert current_version(con) == 4
            con.execute("INSERT INTO train_curves VALUES ('m1', 1, 0, 7, 2, 0.5, 0.8, now())")
    db._migrated.clear()  # as if a newer lab opened the store
    train_curves.add_point("m1", 2.25, 0.4, 0.85, zoo_id=1, seed=0, job_id=7, step=9)
    points = train_curves.curves(job_id=7)
    assert list(points["epoch"]) == [2.0, 2.25] and points["step"].isna().tolist() == [True, False]
    assert list(points["loss"]) == [0.5, 0.4]


def test_ids_come_from_sequences():
    with db.connect() as con:
        ids = [con.execute("INSERT INTO jobs (kind, spec, key, status, created_at) VALUES "
                           "('t', '{}', 'k', 'queued', now()) RETURNING id").fetchone()[0] for _ in range(3)]
    assert ids == [1, 2, 3]


def test_newer_schema_is_refused():
    with db.connect() as con:
        con.execute("INSERT INTO schema_version VALUES (?, now())", [LATEST_VERSION + 1])
    db._migrated.clear()
    with pytest.raises(RuntimeError, match="newer"), db.connect():
        pass


def test_nested_connect_reuses_the_connection_and_transaction_rolls_back():
    with db.connect() as outer:
        with db.connect() as inner:
            assert inner is outer
        with pytest.raises(KeyError), db.transaction(outer):
            outer.execute("INSERT INTO eval_configs VALUES ('a', '{}')")
            with db.transaction(outer):  # nested joins the outer transaction
                outer.execute("INSERT INTO eval_configs VALUES ('b', '{}')")
            raise KeyError("boom")
        assert outer.execute("SELECT count(*) FROM eval_configs").fetchone()[0] == 0
    with db.transaction() as con:
        con.execute("INSERT INTO eval_configs VALUES ('c', '{}')")
    assert db.query_df("SELECT key FROM eval_configs")["key"].tolist() == ["c"]


def test_exception_inside_connect_discards_open_transaction_and_releases_lock():
    with pytest.raises(ValueError), db.connect() as con, db.transaction(con):
        con.execute("INSERT INTO eval_configs VALUES ('x', '{}')")
        raise ValueError("fail")
    with db.connect() as con:  # a transaction begun by hand and never committed is discarded too
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO eval_configs VALUES ('y', '{}')")
    assert db.query_df("SELECT count(*) AS n FROM eval_configs")["n"][0] == 0
    lock = FileLock(str(db.lock_path()))
    lock.acquire(timeout=0)  # nobody holds it any more
    lock.release()


def test_lock_held_elsewhere_waits_then_raises_store_busy():
    db.query_df("SELECT 1")  # create + migrate
    held, release = threading.Event(), threading.Event()

    def holder():
        with FileLock(str(db.lock_path())):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    start = time.monotonic()
    with pytest.raises(db.StoreBusy, match="busy") as info:
        with db.connect(timeout=0.3):
            pass
    assert time.monotonic() - start >= 0.3
    assert "Could not set lock" not in str(info.value)
    release.set()
    t.join()
    with db.connect(timeout=1) as con:
        assert con.execute("SELECT 42").fetchone()[0] == 42


def test_foreign_duckdb_holder_gives_store_busy_then_recovers(tmp_path):
    db.query_df("SELECT 1")
    script = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db_path())!r})
        print("open", flush=True)
        time.sleep(float(sys.argv[1]))
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "open"
        with pytest.raises(db.StoreBusy, match="another program") as info:
            with db.connect(timeout=0.3):
                pass
        assert "Could not set lock" not in str(info.value)
        with db.connect(timeout=20) as con:  # retried with backoff until the other program let go
            assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] >= 1
    finally:
        proc.wait(20)


def test_bad_lock_timeout_env_is_a_readable_error(monkeypatch):
    monkeypatch.setenv("REBASIN_LOCK_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="REBASIN_LOCK_TIMEOUT"), db.connect():
        pass


def test_query_df_and_utc_timestamps():
    before = db.utc_now()
    with db.connect() as con:
        con.execute("INSERT INTO schema_version VALUES (0, ?)", [db.utc_now()])
    df = db.query_df("SELECT applied_at FROM schema_version WHERE version = ?", [0])
    stamp = df["applied_at"][0].to_pydatetime()
    assert stamp.tzinfo is None and before <= stamp <= db.utc_now()


def test_threads_in_one_process_take_turns():
    """Streamlit serves sessions from threads of one process: they must queue like processes do."""
    from store.jobs import create_job, list_jobs

    db.query_df("SELECT 1")
    errors: list[BaseException] = []

    def work(tag: int) -> None:
        try:
            for i in range(8):
                create_job("t", {"tag": tag}, f"{tag}-{i}")
                list_jobs(limit=5)
        except BaseException as err:  # collected and re-raised below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(list_jobs(limit=100)) == 32


def test_store_imports_neither_backend_nor_app():
    import store

    root = Path(store.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text()
        for banned in ("import backend", "from backend", "import app", "from app"):
            assert banned not in text, f"{path.name} must not {banned!r}"
