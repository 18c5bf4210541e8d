"""A writer killed between creating its temp file and renaming it leaves an orphan; nothing may keep it.

The kill lands at a known point: the child process replaces os.replace with SIGKILL, so it dies with the
whole temp file written and not yet renamed, every time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store import db
from store.files import atomic_write_bytes, is_orphan, sweep_orphans
from store.paths import data_dir, home_dir, weights_dir

ROOT = Path(__file__).resolve().parents[2]
KILL_AT_RENAME = "import os, signal; os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"


def _killed_writer(body: str) -> None:
    """Run `body` in a child whose os.replace kills it (with its temp file complete)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILL_AT_RENAME + body], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


def _temps(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".*.tmp") if p.is_file())


SAVE_WEIGHTS = ("import torch; from store.weights import save_weights\n"
                "save_weights({'w': torch.arange(1000, dtype=torch.float32)})\n")


def test_weights_write_killed_before_rename_is_swept_at_store_open():
    _killed_writer(SAVE_WEIGHTS)
    orphans = _temps(weights_dir())
    assert len(orphans) == 1 and orphans[0].stat().st_size > 4000, "the kill point leaves the whole temp file"
    assert ".safetensors." in orphans[0].name
    db._swept.clear()  # as in a fresh process
    with db.connect():
        pass
    assert _temps(weights_dir()) == []


def test_reap_sweeps_orphans_of_dead_workers():
    from backend.jobs import queue

    with db.connect():  # this process has opened the store already: only reap can sweep now
        pass
    _killed_writer(SAVE_WEIGHTS)
    _killed_writer("from store.files import atomic_write_bytes; from store.paths import data_dir\n"
                   "atomic_write_bytes(data_dir() / 'cache' / 'mnist-test.safetensors', b'x' * 100)\n")
    _killed_writer("from store.files import atomic_write_bytes; from store.paths import home_dir\n"
                   "atomic_write_bytes(home_dir() / 'reports' / 'experiment-1.md', b'# r')\n")
    assert len(_temps(home_dir())) + len(_temps(data_dir())) == 3
    assert queue.reap() == []
    assert _temps(home_dir()) == [] and _temps(data_dir()) == []


def test_export_anywhere_sweeps_its_own_orphans(tmp_path):
    out = tmp_path / "exports" / "table.csv"
    _killed_writer(f"from store.files import atomic_write_bytes\natomic_write_bytes({str(out)!r}, b'a,b')\n")
    assert len(_temps(out.parent)) == 1
    atomic_write_bytes(out, b"a,b\n1,2\n")
    assert _temps(out.parent) == [] and out.read_bytes() == b"a,b\n1,2\n"


def test_a_live_writers_temp_file_is_kept_until_it_is_old(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".w.safetensors.{sleeper.pid}.abcd1234.tmp"
        mine = tmp_path / f".w.safetensors.{os.getpid()}.abcd5678.tmp"
        legacy = tmp_path / ".w.safetensors.k2j4h5g6.tmp"  # an old-style name without a pid
        unrelated = tmp_path / ".hidden.tmp"
        for p in (live, mine, legacy, unrelated):
            p.write_bytes(b"partial")
        assert sweep_orphans(tmp_path) == []
        old = time.time() - 7200
        for p in (live, legacy, unrelated):
            os.utime(p, (old, old))
        assert sorted(sweep_orphans(tmp_path)) == sorted([live, legacy])
        assert mine.exists() and unrelated.exists() and not is_orphan(mine)
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("target", ["a.csv", "lab.duckdb"])
def test_sweep_for_one_target_leaves_other_targets(tmp_path, target):
    other = tmp_path / ".other.csv.1.abcd1234.tmp"
    mine = tmp_path / f".{target}.1.abcd1234.tmp"  # pid 1 is alive (init) but the files are old
    for p in (other, mine):
        p.write_bytes(b"x")
        os.utime(p, (0, 0))
    assert sweep_orphans(tmp_path, target=target) == [mine]
    assert other.exists()
