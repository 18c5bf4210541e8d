"""Executors: where a job's work units run — in the job's own process, or as tasks on a Ray cluster.

A step (backend/jobs/*_step.py) splits its work into units (backend/jobs/units.py: pure functions of configs,
weights and data that return weights bytes and rows) and hands them to `ctx.executor.run(units, on_result)`.
`on_result(i, result)` runs in the job's process — the driver — as each unit's result arrives, and only it
writes the store (DuckDB allows one writing process; the weights files are content-addressed), so nothing on a
Ray worker touches DuckDB or REBASIN_HOME.

- `LocalExecutor` runs the units one after another in this process and gives each its live callbacks
  (progress, per-epoch training curves): the behaviour jobs had before executors existed.
- `RayExecutor` submits every unit as one Ray task (`num_cpus` / fractional `num_gpus` per unit), large inputs
  (the dataset tensors, the leaves of a tree) go once into Ray's object store (`share`), results come back
  through it, and a `ray.wait` loop stores them in unit order (so the store's rows and ids are the ones the
  local executor writes) while checking the job's cancel flag and keeping a bounded window in flight; cancel
  force-cancels the outstanding tasks. A task whose worker process dies is retried by Ray (`max_retries`,
  env REBASIN_RAY_RETRIES, default 3); past that the job fails with one readable sentence, and the units
  already stored stay stored (a rerun resumes from them).

The job's executor is recorded in its spec JSON (`spec.with_executor`), never in its key: the same work on
another executor is the same cached result.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EXECUTORS = ("local", "ray")
RAY_EXTRA_HINT = "install the lab's ray extra (pip install -e '.[ray]')"
UNITS_MODULE = "backend.jobs.units"


class ExecutorError(RuntimeError):
    """The executor cannot run the work (Ray missing or unreachable, a worker died past its retries)."""


@dataclass
class Unit:
    """One independent piece of a job: `fn(**kwargs, **shared, **local)` -> a picklable result."""

    fn: Callable  # a module-level function of backend.jobs.units (pure: no store, no files)
    kwargs: dict  # small picklable arguments (configs, seeds, weights bytes)
    label: str  # what progress lines and errors call it ("model 3 of 12")
    shared: dict = field(default_factory=dict)  # name -> executor.share(value): large read-only inputs
    local: dict = field(default_factory=dict)  # callbacks only an in-process run gets (progress, on_epoch)
    # called just before the unit runs or is submitted: more kwargs (e.g. weights read from the store, so a
    # long job never holds every model in memory at once), or None to skip the unit
    prepare: Callable[[], dict | None] | None = None

    def arguments(self) -> dict | None:
        """kwargs + what prepare() adds; None when prepare says skip."""
        extra = self.prepare() if self.prepare is not None else {}
        return None if extra is None else {**self.kwargs, **extra}


OnResult = Callable[[int, Any], None]


def ray_available() -> bool:
    """Whether Ray is installed (without importing it: the UI asks this on every render)."""
    return importlib.util.find_spec("ray") is not None


def _torch_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class LocalExecutor:
    """Units run in this process, in order, with their live callbacks."""

    kind = "local"
    in_process = True

    def __init__(self):
        self.device = _torch_device()  # where units compute
        self.data_device = self.device  # shared data is loaded straight onto it

    def share(self, value):
        return value

    def run(self, units: list[Unit], on_result: OnResult, *, check_cancel: Callable[[], None] | None = None) -> None:
        for i, unit in enumerate(units):
            if check_cancel is not None:
                check_cancel()
            kwargs = unit.arguments()
            if kwargs is not None:
                on_result(i, unit.fn(**kwargs, **unit.shared, **unit.local))

    def describe(self) -> dict:
        return {"kind": "local", "host": socket.gethostname(), "device": self.device.type}

    def close(self) -> None:
        pass


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {raw!r}")
    return value


def split_address(address: str) -> tuple[str, int]:
    """'host:port' or 'ray://host:port' -> (host, port); ValueError naming the expected form."""
    text = address.strip()
    for prefix in ("ray://", "http://", "https://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad Ray address {address!r}: expected HOST:PORT (the head node's GCS address, "
                         "as `ray start --head` prints it), 'auto' or nothing")
    return host.strip("[]"), int(port)


def probe_address(address: str, timeout: float = 3.0) -> None:
    """Fail fast when nothing listens at a cluster address (ray.init itself retries for minutes)."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ExecutorError(f"cannot reach the Ray cluster at {address} ({reason}); start one with "
                            "`ray start --head` or fix --ray-address / RAY_ADDRESS") from None


def check_executor(kind: str, address: str | None = None) -> None:
    """What the CLI and the UI check before recording a job: the executor exists, Ray is installed and the
    cluster address answers. Touches neither the store nor the cluster's state."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
    if kind == "local":
        if address:
            raise ValueError("a Ray address only applies to --executor ray")
        return
    if not ray_available():
        raise ExecutorError(f"Ray is not installed here; {RAY_EXTRA_HINT}")
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address not in ("auto", "local"):
        probe_address(address)


def _ship_code() -> list[str]:
    """The lab's own packages, sent with the job so cluster workers run exactly the driver's code."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    return [str(root / "backend"), str(root / "store")]


def run_unit(path: str, kwargs: dict, names: list[str], *shared):
    """The Ray task body: resolve a units function by name and call it (top-level ObjectRef arguments in
    `shared` arrive already fetched from the object store)."""
    module, _, name = path.partition(":")
    if module != UNITS_MODULE:
        raise ValueError(f"only {UNITS_MODULE} functions run as units, not {path!r}")
    fn = getattr(importlib.import_module(module), name)
    return fn(**kwargs, **dict(zip(names, shared, strict=True)))


class RayExecutor:
    """Units run as Ray tasks on the cluster at `address` (None: RAY_ADDRESS, else a local cluster)."""

    kind = "ray"
    in_process = False

    def __init__(self, address: str | None = None, *, cpus_per_unit: float | None = None,
                 gpus_per_unit: float | None = None, retries: int | None = None):
        check_executor("ray", address)
        import ray

        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self._started = False
        if not ray.is_initialized():
            kwargs: dict = {"log_to_driver": False, "configure_logging": False}
            if self.address:
                if os.environ.get("REBASIN_RAY_SHIP_CODE", "1") != "0":
                    kwargs["runtime_env"] = {"py_modules": _ship_code(), "excludes": ["__pycache__"]}
            else:
                kwargs["include_dashboard"] = False
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError) as err:
                raise ExecutorError(f"could not connect to the Ray cluster at {self.address or 'a local one'}: "
                                    f"{' '.join(str(err).split())[:300]}") from None
            self._started = True
        resources = ray.cluster_resources()
        self.resources = {k: float(v) for k, v in resources.items() if k in ("CPU", "GPU")}
        self.nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        self.cpus_per_unit = cpus_per_unit if cpus_per_unit is not None else \
            _env_float("REBASIN_RAY_CPUS_PER_UNIT", 1.0)
        has_gpu = self.resources.get("GPU", 0.0) > 0
        self.gpus_per_unit = gpus_per_unit if gpus_per_unit is not None else \
            (_env_float("REBASIN_RAY_GPUS_PER_UNIT", 0.25) if has_gpu else 0.0)
        self.retries = retries if retries is not None else int(_env_float("REBASIN_RAY_RETRIES", 3))
        import torch

        # where units compute: a task with GPUs sees CUDA; shared data stays on the CPU until a unit moves it
        self.device = torch.device("cuda" if self.gpus_per_unit > 0 else "cpu")
        self.data_device = torch.device("cpu")
        # units in flight (running or done, waiting for their turn to be stored): four times what the cluster
        # runs side by side, so workers rarely wait for a slow unit ahead of them in the order
        slots = self.resources.get("GPU", 0.0) / self.gpus_per_unit if self.gpus_per_unit > 0 else \
            self.resources.get("CPU", 1.0) / max(self.cpus_per_unit, 1e-3)
        self.window = max(4, int(4 * slots))
        self._remote = ray.remote(run_unit)

    def share(self, value):
        import ray

        return ray.put(value)

    def run(self, units: list[Unit], on_result: OnResult, *, check_cancel: Callable[[], None] | None = None) -> None:
        import ray

        if not units:
            return
        options = {"num_cpus": self.cpus_per_unit, "num_gpus": self.gpus_per_unit, "max_retries": self.retries,
                   "retry_exceptions": False}
        index: dict = {}
        pending: list = []
        arrived: dict = {}  # finished refs waiting for their turn: results are delivered in unit order
        order: list[int] = []  # submitted unit positions, in order
        todo = iter(enumerate(units))

        def submit_more() -> None:  # keep the cluster busy with a bounded window of tasks in flight
            while len(pending) + len(arrived) < self.window:
                item = next(todo, None)
                if item is None:
                    return
                i, unit = item
                kwargs = unit.arguments()
                if kwargs is None:
                    continue
                names = list(unit.shared)
                ref = self._remote.options(**options).remote(f"{unit.fn.__module__}:{unit.fn.__name__}", kwargs,
                                                             names, *[unit.shared[n] for n in names])
                index[i] = ref
                order.append(i)
                pending.append(ref)

        try:
            submit_more()
            while pending or arrived:
                if check_cancel is not None:
                    check_cancel()
                if pending:
                    ready, rest = ray.wait(pending, num_returns=1, timeout=0.5)
                    pending[:] = rest
                    for ref in ready:
                        arrived[ref] = True
                # deliver in order, so the store gets the same rows (and ids) as the local executor
                while order and index[order[0]] in arrived:
                    i = order.pop(0)
                    ref = index.pop(i)
                    del arrived[ref]
                    on_result(i, self._get(ref, units[i]))
                submit_more()
        except BaseException:
            for ref in pending:  # cancel, an error, a failed store write: stop the cluster's work too
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - a task that just finished cannot be cancelled
                    pass
            raise

    def _get(self, ref, unit: Unit):
        import ray
        from ray import exceptions as rex

        try:
            return ray.get(ref)
        except rex.RayTaskError as err:  # the unit raised: raise its own exception (ValueError etc.)
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception) and not isinstance(cause, rex.RayError):
                raise cause from None
            raise ExecutorError(f"{unit.label} failed on the Ray cluster: {' '.join(str(err).split())[:300]}") \
                from None
        except rex.RayError as err:  # worker or node died past its retries, object lost, ...
            raise ExecutorError(f"the Ray worker running {unit.label} died ({type(err).__name__}; "
                                f"tried {self.retries + 1} time(s)); the units already stored are kept, "
                                "a rerun resumes from them") from None

    def describe(self) -> dict:
        return {"kind": "ray", "address": self.address or "local cluster", "nodes": self.nodes,
                "resources": self.resources, "cpus_per_unit": self.cpus_per_unit,
                "gpus_per_unit": self.gpus_per_unit}

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def make_executor(settings: dict | None = None):
    """The executor a job's settings ask for ({"kind": "local"} or {"kind": "ray", "address": ...})."""
    settings = dict(settings or {})
    kind = settings.get("kind", "local")
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        return RayExecutor(settings.get("address") or None)
    raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")


def describe_text(info: dict | None) -> str:
    """'local' / 'ray · 3 nodes · 48 CPU, 4 GPU': where a job ran, for Runs and `jobs show`."""
    info = dict(info or {})
    if info.get("kind", "local") == "local":
        return "local"
    parts = ["ray"]
    if info.get("nodes"):
        parts.append(f"{info['nodes']} node{'s' if info['nodes'] != 1 else ''}")
    res = info.get("resources") or {}
    have = [f"{res[k]:g} {k}" for k in ("CPU", "GPU") if res.get(k)]
    if have:
        parts.append(", ".join(have))
    elif info.get("address"):
        parts.append(str(info["address"]))
    return " · ".join(parts)
