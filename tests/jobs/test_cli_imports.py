"""The CLI imports torch only where it computes: help, usage errors, `jobs` and `export` never load it
(torch costs seconds; these must answer in well under one). Checked by module presence, not by timing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from backend.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = [m for m in ("torch", "scipy", "streamlit", "safetensors.torch") if m in sys.modules]
print("HEAVY=" + ",".join(heavy), "CODE=" + str(code))
"""


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["experiment", "--help"], ["merge", "--help"],
                                  ["train", "--nope"], ["jobs", "list"], ["jobs", "show", "7"],
                                  ["export", "--help"], ["evaluate", "--models", "x"]])
def test_light_commands_never_import_torch(argv):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("HEAVY= "), (argv, last, out.stderr[-2000:])


TABLES_PROBE = """
import sys
from backend.cli import main
from store import jobs
jobs.create_job("train", {"kind": "train", "name": "z"}, "k")  # a queued job: listing also looks at the queue
for module in ("pandas", "pyarrow", "numpy"):  # importing store.jobs alone must not load them either
    assert module not in sys.modules, module
code = main(sys.argv[1:])
heavy = [m for m in ("torch", "pandas", "pyarrow", "numpy") if m in sys.modules]
print("HEAVY=" + ",".join(heavy), "CODE=" + str(code))
"""


@pytest.mark.parametrize("argv", [["jobs", "list"], ["jobs", "show", "1"], ["jobs", "reap"]])
def test_job_listings_load_no_data_frame_library(argv):
    """`jobs list/show/reap` (the first store open and a reap included) print plain rows: no pandas/pyarrow."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", TABLES_PROBE, *argv], env=env, capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-2000:]
    assert last == "HEAVY= CODE=0", (argv, last, out.stderr[-2000:])
