"""Pages browse a read-only store (REBASIN_READ_ONLY, or a folder without write access): no exception, no
error box, a sidebar note, and the store file left byte for byte as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

from streamlit.testing.v1 import AppTest

from store.paths import db_path, home_dir
from tests.app.conftest import AT_TIMEOUT

HOME = str(Path(__file__).resolve().parents[2] / "app" / "Home.py")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pages_browse_a_read_only_store(populated_store, monkeypatch):
    (home_dir() / "lab.lock").unlink(missing_ok=True)
    monkeypatch.setenv("REBASIN_READ_ONLY", "1")
    digest = _digest(db_path())
    at = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Read-only" in c.value for c in at.sidebar.caption), [c.value for c in at.sidebar.caption]
    for page in ("views/runs.py", "views/compare.py", "views/tree_view.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
    assert _digest(db_path()) == digest
