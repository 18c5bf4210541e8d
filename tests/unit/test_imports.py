"""Imports point one way (app → backend → store), the app writes to the store only through the backend,
and modules import each other without circles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WRITE_PREFIXES = ("add_", "save_", "create_", "update_", "delete_", "remove_", "set_", "register_", "finish_",
                  "mark_", "request_", "claim_", "insert_", "write_", "transaction", "reap", "sweep")


def _modules(*packages: str) -> dict[str, Path]:
    out = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path, *, top_level_only: bool = False) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import statement (only the module's own body if top_level_only)."""
    tree = ast.parse(path.read_text())
    out = []
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
    return out


def _roots(path: Path) -> set[str]:
    return {module.split(".")[0] for module, _ in _imports(path)}


@pytest.mark.parametrize("name, path", sorted(_modules("store").items()))
def test_store_never_imports_backend_or_app(name, path):
    assert not _roots(path) & {"backend", "app", "streamlit"}, name


@pytest.mark.parametrize("name, path", sorted(_modules("backend").items()))
def test_backend_never_imports_the_app(name, path):
    assert not _roots(path) & {"app", "streamlit", "altair"}, name


@pytest.mark.parametrize("name, path", sorted(_modules("app").items()))
def test_app_never_touches_the_driver_or_writes_to_the_store(name, path):
    assert "duckdb" not in _roots(path), f"{name} imports duckdb: go through store/backend"
    tree = ast.parse(path.read_text())
    store_aliases, writes = set(), []
    for module, names in _imports(path):
        if module == "store" or module.startswith("store."):
            store_aliases.update(names)
            writes += [n for n in names if n.startswith(WRITE_PREFIXES)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            store_aliases.update(a.asname or a.name for a in node.names if a.name.startswith("store"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("store"):
            store_aliases.update(a.asname or a.name for a in node.names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in store_aliases:
            if node.attr.startswith(WRITE_PREFIXES):
                writes.append(f"{node.value.id}.{node.attr}")
    assert not writes, f"{name} writes to the store directly ({writes}); call the backend instead"


def _cycles(modules: dict[str, Path], *, top_level_only: bool) -> list[list[str]]:
    edges = {m: set() for m in modules}
    for m, path in modules.items():
        for module, names in _imports(path, top_level_only=top_level_only):
            for target in (module, *(f"{module}.{n}" for n in names)):
                if target in modules and target != m and not m.startswith(f"{target}."):
                    edges[m].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in modules:
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_at_module_level():
    assert _cycles(_modules("app", "backend", "store"), top_level_only=True) == []


def test_the_store_has_no_circles_at_all():
    assert _cycles(_modules("store"), top_level_only=False) == []


def _status_literals(path: Path) -> list[str]:
    """Job status names spelled out as string constants in comparisons (==, !=, in) or status= arguments."""
    from store.jobs import JOB_STATUSES

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        constants = []
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                constants += [c for c in ast.walk(side) if isinstance(c, ast.Constant)]
        elif isinstance(node, ast.keyword) and node.arg == "status":
            constants += [c for c in ast.walk(node.value) if isinstance(c, ast.Constant)]
        found += [f"line {c.lineno}: {c.value!r}" for c in constants if c.value in JOB_STATUSES]
    return found


@pytest.mark.parametrize("name, path", sorted({**_modules("backend"), **_modules("app")}.items()))
def test_job_statuses_are_declared_once(name, path):
    """store.jobs.JobStatus is the one vocabulary: backend and app compare with its members, never with text."""
    assert not _status_literals(path), f"{name} spells job statuses out: {_status_literals(path)}; use JobStatus"


@pytest.mark.parametrize("name, path", sorted({**_modules("backend"), **_modules("app")}.items()))
def test_stored_json_is_decoded_by_the_store(name, path):
    """No `json.loads(x) if isinstance(x, str) else x` outside the store: store.jsonutil.decoded is the one way."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.IfExp) and isinstance(node.body, ast.Call) and isinstance(node.test, ast.Call):
            func = node.body.func
            loads = isinstance(func, ast.Attribute) and func.attr == "loads"
            test = node.test.func
            of_str = len(node.test.args) == 2 and isinstance(node.test.args[1], ast.Name) and node.test.args[1].id == "str"
            assert not (loads and of_str and isinstance(test, ast.Name) and test.id == "isinstance"), \
                f"{name} line {node.lineno} decodes a stored JSON value itself; use store.jsonutil.decoded"


def test_every_declared_dependency_is_imported():
    """pyproject's runtime dependencies are each imported by backend, store or app (none declared for nothing)."""
    import re
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    modules = {re.split(r"[<>=!~\[ ]", d)[0].lower().replace("-python", "").replace("-py", "").replace("-", "_")
               for d in deps}
    paths = _modules("backend", "store", "app").values()
    imported = {module.split(".")[0] for path in paths for module, _ in _imports(path)}
    # libraries that another library imports for a call of ours: declared because that call needs them
    through = {"tabulate": ".to_markdown("}  # pandas' DataFrame.to_markdown lays tables out with tabulate
    source = "".join(path.read_text() for path in paths)
    imported |= {module for module, call in through.items() if call in source}
    assert not modules - imported, f"declared but never imported: {sorted(modules - imported)}"
