"""Issue 10's message nits: a failed write names its target (never the hidden temp file) without an
'[Errno N]' or 'OSError:' prefix, in the CLI and on a job row; a cancelled job shows no 'nan' on Runs."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from backend.jobs import runner
from store import files
from store import jobs as store_jobs
from tests.app.conftest import AT_TIMEOUT

HOME = str(Path(__file__).resolve().parents[2] / "app" / "Home.py")


def _disk_full(monkeypatch):
    real = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: Full(real(fd, mode)))


def test_a_failed_write_names_its_target_not_the_temp_file(tmp_path, monkeypatch):
    _disk_full(monkeypatch)
    target = tmp_path / "report.md"
    try:
        files.atomic_write_bytes(target, b"x")
    except OSError as err:
        text = files.os_error_text(err)
    assert text == f"{target}: No space left on device"
    assert [p.name for p in tmp_path.iterdir()] == []  # the temp file is gone too
    assert runner.one_line_error(OSError(errno.ENOSPC, "No space left on device", str(target))) == text


def test_the_cli_prints_an_os_error_as_one_plain_line(tmp_path, monkeypatch, capsys, make_tiny_params):
    from backend.cli import main
    from store import curves, models, weights

    mid = models.add_model(kind="trained", dataset="fashion_mnist", widths=[8, 6], config={},
                           weights=weights.save_weights(make_tiny_params(0)), key="m", seed=0)
    curves.register_curve_config("c" * 16, {})
    curves.save_curves(mid, mid, "c" * 16, [("none", False, "test", 0.0, "accuracy", 0.5)])
    _disk_full(monkeypatch)
    out = tmp_path / "rows.csv"
    assert main(["export", "--table", "curves", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {out}: No space left on device", err
    assert ".tmp" not in err and "Errno" not in err and "OSError" not in err


def test_a_cancelled_job_shows_no_nan_on_runs():
    from backend.runs import runs_table

    job_id = store_jobs.create_job("train", {"kind": "train", "name": "z", "n_models": 2,
                                             "train": {"dataset": "fashion_mnist", "widths": [8]}}, "k")
    store_jobs.start_job(job_id, os.getpid())
    store_jobs.finish_job(job_id, "cancelled")  # cancelled with no error text (NULL)
    table = runs_table(store_jobs.list_jobs())
    assert table["error"].iloc[0] is None and not isinstance(table["error"].iloc[0], float)
    at = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    at.query_params.update({"jobs": str(job_id)})
    at.run()
    at.switch_page("views/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    texts = [str(e.value) for e in (*at.warning, *at.error, *at.caption, *at.markdown)]
    assert any(f"#{job_id}: cancelled" in t for t in texts), texts
    assert not any("nan" in t.split() or t.endswith("nan") for t in texts), texts
    assert not pd.isna(table["progress"].iloc[0])
