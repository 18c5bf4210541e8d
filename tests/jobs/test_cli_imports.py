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
