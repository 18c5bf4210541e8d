"""Executors without a cluster: the executor is recorded beside a spec (never in its key), addresses are
checked before anything runs, the local executor runs units in order, and Runs says where a job ran."""

from __future__ import annotations

import pytest

from backend.jobs.executors import (
    ExecutorError,
    LocalExecutor,
    Unit,
    check_executor,
    describe_text,
    split_address,
)
from backend.jobs.spec import TrainSpec, executor_settings, spec_from_dict, with_executor


def _double(x, offset=0, progress=None):
    return 2 * x + offset


def test_the_executor_travels_with_the_spec_but_not_in_its_key():
    spec = TrainSpec(name="z", train={"dataset": "fashion_mnist"}, n_models=2)
    stored = with_executor(spec.to_dict(), {"kind": "ray", "address": "10.0.0.1:6379"})
    assert stored["executor"] == {"kind": "ray", "address": "10.0.0.1:6379"}
    assert spec_from_dict(stored) == spec and spec_from_dict(stored).key() == spec.key()
    assert executor_settings(stored) == {"kind": "ray", "address": "10.0.0.1:6379"}
    assert with_executor(spec.to_dict(), {"kind": "local"}) == spec.to_dict()  # local: nothing recorded
    assert with_executor(spec.to_dict(), {"kind": "ray", "address": None}) == {**spec.to_dict(),
                                                                                "executor": {"kind": "ray"}}
    assert executor_settings(spec.to_dict()) == {"kind": "local"}
    assert executor_settings("not json") == {"kind": "local"}


def test_local_executor_runs_units_in_order_and_skips_what_prepare_drops():
    seen = []
    units = [Unit(_double, {"x": 1}, "one"), Unit(_double, {"x": 2}, "two", prepare=lambda: None),
             Unit(_double, {"x": 3}, "three", shared={"offset": 10}, prepare=lambda: {"x": 4})]
    LocalExecutor().run(units, lambda i, r: seen.append((i, r)))
    assert seen == [(0, 2), (2, 18)]


@pytest.mark.parametrize("address, host, port", [("10.0.0.1:6379", "10.0.0.1", 6379),
                                                 ("ray://head.example:10001", "head.example", 10001),
                                                 ("[::1]:6379", "::1", 6379)])
def test_split_address(address, host, port):
    assert split_address(address) == (host, port)


@pytest.mark.parametrize("address", ["head", "head:", "head:99999", ":6379"])
def test_a_malformed_address_says_what_is_expected(address):
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        split_address(address)


def test_check_executor():
    check_executor("local")
    with pytest.raises(ValueError, match="unknown executor"):
        check_executor("slurm")
    with pytest.raises(ValueError, match="only applies to --executor ray"):
        check_executor("local", "10.0.0.1:6379")


def test_an_address_where_nothing_listens_fails_fast(monkeypatch):
    import socket

    import backend.jobs.executors as executors

    monkeypatch.setattr(executors, "ray_available", lambda: True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # a port nothing listens on
    with pytest.raises(ExecutorError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        check_executor("ray", f"127.0.0.1:{port}")


def test_ray_missing_is_one_sentence(monkeypatch):
    import backend.jobs.executors as executors

    monkeypatch.setattr(executors, "ray_available", lambda: False)
    with pytest.raises(ExecutorError, match=r"Ray is not installed here; install the lab's ray extra"):
        check_executor("ray")


def test_runs_say_where_a_job_ran():
    from backend.runs import executor_label

    assert describe_text({"kind": "local", "host": "h"}) == "local"
    ran = {"kind": "ray", "nodes": 3, "resources": {"CPU": 96.0, "GPU": 4.0}}
    assert describe_text(ran) == "ray · 3 nodes · 96 CPU, 4 GPU"
    assert executor_label({"executor": {"kind": "ray", "address": "10.0.0.1:6379"}}, {}) == "ray · 10.0.0.1:6379"
    assert executor_label({"executor": {"kind": "ray"}}, {"executor": ran}) == "ray · 3 nodes · 96 CPU, 4 GPU"
    assert executor_label({}, {}) == "local"
