"""The start forms offer 'Run on: this machine / Ray cluster' when Ray is installed; the choice is recorded
with the job (not in its key), and an unreachable cluster is one error with nothing recorded."""

from __future__ import annotations

import json

import pytest

from tests.app.test_pages import _app, _jobs, _ok, _texts
from tests.jobs.test_ray import _require_ray


@pytest.fixture(autouse=True)
def _ray_installed(monkeypatch):
    _require_ray()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def test_zoo_form_records_the_ray_executor_with_the_job(no_workers):
    at = _ok(_app("views/zoo.py"))
    at.text_input[0].set_value("on-ray")
    at.text_input[1].set_value("16, 8")
    at.radio(key="train_zoo-executor").set_value("ray")
    at.button[0].click().run()
    _ok(at)
    jobs = _jobs()
    assert len(jobs) == 1 and no_workers == [int(jobs["id"].iloc[0])]
    spec = json.loads(jobs["spec"].iloc[0])
    assert spec["executor"] == {"kind": "ray"} and spec["name"] == "on-ray"
    from backend.jobs.spec import TrainSpec, spec_from_dict

    assert isinstance(spec_from_dict(spec), TrainSpec)
    assert jobs["key"].iloc[0] == spec_from_dict(spec).key()  # same work, same key, whatever runs it


def test_an_unreachable_cluster_is_one_error_and_no_job(no_workers):
    at = _ok(_app("views/zoo.py"))
    at.radio(key="train_zoo-executor").set_value("ray")
    at.text_input(key="train_zoo-ray-address").set_value("127.0.0.1:1")
    at.button[0].click().run()
    _ok(at)
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in _texts(at.error)
    assert _jobs().empty and no_workers == []


def test_home_presets_and_merge_builder_offer_the_choice(populated_store):
    at = _ok(_app())
    assert at.radio(key="presets-executor").value == "local"
    at.switch_page("views/merge_builder.py").run()
    _ok(at)
    assert at.radio(key="merge-executor").value == "local"
