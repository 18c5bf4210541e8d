"""A damaged lab.duckdb or a full disk is one readable line (CLI) or message (pages), never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from store import db
from store import jobs as store_jobs
from store.paths import db_path
from tests.app.conftest import AT_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]


def _damage(kind: str) -> None:
    store_jobs.create_job("train", {"kind": "train"}, "k")  # a real store first
    path = db_path()
    if kind == "garbage":
        path.write_bytes(b"not a database " * 100)
    else:  # flipped blocks: DuckDB's checksums catch them
        data = bytearray(path.read_bytes())
        for i in range(0, len(data), 4096):
            data[i + 100:i + 300] = os.urandom(200)
        path.write_bytes(bytes(data))
    db._migrated.clear()


@pytest.mark.parametrize("kind", ["garbage", "flipped"])
def test_cli_says_the_store_is_damaged_in_one_line(kind, capsys):
    from backend.cli import main

    _damage(kind)
    assert main(["jobs", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: The lab store file")
    assert str(db_path()) in err and "damaged" in err and "Move it aside" in err


def test_pages_show_the_damage_instead_of_an_exception():
    _damage("garbage")
    at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=AT_TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("damaged" in e.value for e in at.error) or any("damaged" in w.value for w in at.warning)


def test_a_full_disk_at_commit_is_one_readable_error():
    store_jobs.create_job("train", {"kind": "train"}, "k")
    with pytest.raises(db.StoreFull, match="is full; nothing was committed"):
        with db.connect() as con, db.transaction(con):
            con.execute("INSERT INTO jobs (kind, spec, key, status, created_at) VALUES ('t', '{}', 'x', "
                        "'queued', ?)", [db.utc_now()])
            raise duckdb.IOException("IO Error: Could not write file \"lab.duckdb.wal\": No space left on device")
    assert len(store_jobs.list_jobs()) == 1  # rolled back


def test_other_duckdb_errors_are_not_disguised():
    with pytest.raises(duckdb.Error), db.connect() as con:
        con.execute("SELECT * FROM no_such_table")
