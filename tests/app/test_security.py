"""Nobody let in: the dashboard listens on 127.0.0.1 only, shares no usage statistics, shows no Deploy
button; names typed by a user render as text on every page that shows them."""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AT_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
HOME = str(ROOT / "app" / "Home.py")
PIXEL = "x ![p](http://host/pixel.png) **b** [l](http://host) <img src=y> $x^2$"
MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def _inert(markdown: str) -> None:
    """The crafted name renders as its own characters: no image, link or raw HTML, `**b**` and `$x^2$` literal."""
    out = MD.render(markdown)
    assert "<img" not in out and "<a " not in out, markdown
    assert PIXEL in html.unescape(re.sub(r"<[^>]+>", "", out)), out
    assert "\\$x" in markdown, "Streamlit renders $…$ as LaTeX unless the dollars are escaped"


def test_streamlit_config_keeps_the_dashboard_private(monkeypatch):
    from streamlit import config

    monkeypatch.chdir(ROOT)  # scripts/run starts streamlit from the repository root
    config.get_config_options(force_reparse=True)
    try:
        assert config.get_option("server.address") == "127.0.0.1"
        assert config.get_option("browser.gatherUsageStats") is False
        assert config.get_option("client.toolbarMode") == "viewer"  # hides Deploy and the developer menu
    finally:
        monkeypatch.undo()
        config.get_config_options(force_reparse=True)


def _listening(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on `port`, read from /proc/net/tcp{,6} (IPv4 as dotted quad)."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{name}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:
                continue
            if len(address) == 8:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
            else:
                found.add("ipv6:" + address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from /proc")
def test_server_binds_loopback_by_default(tmp_path, lab_home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("STREAMLIT_")}
    log = tmp_path / "streamlit.log"
    with open(log, "wb") as out:  # no --server.address: the repository's config decides
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", HOME, "--server.headless", "true",
                                 "--server.port", str(port), "--server.fileWatcherType", "none"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("streamlit did not start: " + log.read_text()[-2000:])
                time.sleep(0.3)
        assert _listening(port) == {"127.0.0.1"}
        assert "Network URL" not in log.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_crafted_names_render_as_text_on_runs(no_workers):
    from store import jobs

    train = {"dataset": "fashion_mnist", "widths": [8]}
    jid = jobs.create_job("train", {"kind": "train", "name": PIXEL, "n_models": 2, "train": train}, "job-crafted")
    jobs.finish_job(jid, "failed", error=f"zoo '{PIXEL}' failed")
    running = jobs.create_job("train", {"kind": "train", "name": PIXEL, "n_models": 2, "train": train}, "job-2")
    jobs.start_job(running, os.getpid())
    jobs.update_progress(running, 0.5, "train", PIXEL)
    at = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    at.run()
    at.switch_page("views/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    titles = [m.value for m in at.markdown if "pixel" in m.value]
    assert titles, [m.value for m in at.markdown]  # the running job's card
    for title in titles:
        _inert(title)
    bars = [p.proto.text for p in at.get("progress")]
    assert bars and all("pixel" in b for b in bars)
    _inert(bars[0])
    jobs.finish_job(running, "cancelled")


def test_started_message_escapes_the_zoo_name(no_workers):
    at = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    at.run()
    at.switch_page("views/zoo.py").run()
    at.text_input[0].set_value(PIXEL)
    submit = [b for b in at.button if b.label == "Train zoo"]
    submit[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    messages = [s.value for s in at.success if "Started" in s.value]
    assert messages, [e.value for e in at.error]
    _inert(messages[0])
