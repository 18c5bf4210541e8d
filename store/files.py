"""Atomic file writes: readers (and a process killed mid-write) never see half a file.

A write goes to `.<name>.<pid>.<random>.tmp` beside the target, then `os.replace`s it into place. A writer
killed between the two leaves that temp file behind (up to a whole weights file, hidden from `ls`), so
orphans are swept: a temp file whose writer pid is gone, or that is older than `ORPHAN_AGE_S`, is removed
when the store is first opened in a process (weights, dataset cache, reports, the home folder), when
dead jobs are reaped, and before any write to the same target (exports and reports anywhere).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ORPHAN_AGE_S = 3600.0  # a temp file this old is an orphan even if its pid now names another process
_TEMP = re.compile(r"^\.(?P<target>.+?)\.(?:(?P<pid>\d+)\.)?[A-Za-z0-9_]{8}\.tmp$")


def temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def atomic_write_bytes(path: str | Path, data: bytes, *, durable: bool = False) -> Path:
    """Write `data` to a temp file beside `path`, then `os.replace` it into place.

    durable=True also fsyncs the file and its folder, for files the store points at (weights).
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_orphans(path.parent, target=path.name)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # name the file the caller asked for, never the hidden temp file
        raise type(err)(err.errno, err.strerror or str(err), str(path)) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    if durable:
        _fsync_dir(path.parent)
    return path


def os_error_text(err: OSError) -> str:
    """An OSError as one readable line without its '[Errno N]' prefix: '<file>: <what went wrong>'."""
    what = err.strerror or " ".join(str(err).split()) or type(err).__name__
    if err.filename is None:
        return what
    target = f"{err.filename} -> {err.filename2}" if err.filename2 else str(err.filename)
    return f"{target}: {what}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie) on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def is_orphan(path: Path, *, now: float | None = None, max_age: float = ORPHAN_AGE_S) -> bool:
    """A temp file of atomic_write_bytes whose writer is gone (pid dead) or that is older than max_age."""
    match = _TEMP.match(path.name)
    if match is None:
        return False
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    pid = match.group("pid")
    if age >= max_age:
        return True
    return pid is not None and int(pid) != os.getpid() and not pid_alive(int(pid))


def sweep_orphans(folder: str | Path, *, target: str | None = None, recursive: bool = False,
                  max_age: float = ORPHAN_AGE_S) -> list[Path]:
    """Remove orphaned temp files in `folder` (one level of subfolders with recursive=True); only those
    for `target` when given. Returns what was removed. Never raises for a missing folder or a race."""
    removed = []
    for path in _temp_candidates(Path(folder), recursive):
        if target is not None and not path.name.startswith(f".{target}."):
            continue
        if is_orphan(path, max_age=max_age):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def _temp_candidates(folder: Path, recursive: bool) -> Iterable[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            yield Path(entry.path)
        elif recursive and entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
            yield from _temp_candidates(Path(entry.path), False)


def sweep_store_orphans() -> list[Path]:
    """Sweep every folder the lab writes atomically: home, weights/*, reports, checkpoints, the dataset cache."""
    from store.paths import data_dir, home_dir

    home = home_dir()
    removed = sweep_orphans(home)
    removed += sweep_orphans(home / "weights", recursive=True)
    removed += sweep_orphans(home / "reports")
    removed += sweep_orphans(home / "checkpoints")
    removed += sweep_orphans(data_dir() / "cache")
    return removed


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort: not every filesystem allows opening a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
