"""The one way into DuckDB: short-lived connections under a cross-process file lock.

DuckDB lets a single process open a database file read-write, and a read-only open fails while a
writer holds it. The app, the workers and the CLI all run at once, so every access takes
`<home>/lab.lock` (filelock, polled with a timeout), attaches the file, does its few statements,
detaches it (which checkpoints and drops DuckDB's own file lock) and releases our lock. Nobody holds it
during compute, so waits are milliseconds; a process that dies holding it loses the flock with its file
descriptors, and DuckDB's WAL drops its uncommitted transaction, so the next process simply proceeds.

Each process keeps one in-memory DuckDB instance and ATTACHes the store file per access: creating a
DuckDB instance costs ~20 ms (registering every built-in function), an ATTACH/DETACH a few ms.

Nested `connect()` calls in one thread reuse the outer connection (no second lock, no deadlock), so a
caller can batch many store calls into one open:  `with connect(): a = get_model(1); b = get_model(2)`.

Timestamps: every TIMESTAMP column holds naive UTC (`utc_now()`), written from Python, never `now()`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from filelock import FileLock, Timeout

from store.migrations import migrate
from store.paths import db_path, home_dir

if TYPE_CHECKING:  # pandas/pyarrow load on the first DataFrame: `jobs list` and --help never pay for them
    import pandas as pd
    import pyarrow as pa

DEFAULT_TIMEOUT_S = 60.0  # how long a caller queues for the store before StoreBusy
_DUCKDB_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


class StoreBusy(RuntimeError):
    """The store stayed locked by another process for longer than the timeout."""


class StoreError(RuntimeError):
    """The store file cannot be used as it is (damaged, or its disk is full); the message says what to do."""


class StoreDamaged(StoreError):
    """lab.duckdb is not a readable DuckDB database (truncated, overwritten, checksum mismatch)."""


class StoreFull(StoreError):
    """A write to the store failed for lack of disk space; the transaction was not committed."""


class StoreReadOnly(StoreError):
    """The store is open read-only (its folder or file is not writable, or REBASIN_READ_ONLY is set): it can be
    browsed, but nothing can be written."""


# Everything a store call can raise that a page should show as a message (the driver's own errors included),
# so the app catches store trouble without importing the driver.
STORE_ERRORS: tuple[type[BaseException], ...] = (StoreBusy, StoreError, duckdb.Error)  # StoreReadOnly too


_DAMAGE_MARKERS = ("Corrupt database", "checksum", "not a valid DuckDB database", "database file is corrupt",
                   "Serialization Error", "INTERNAL Error")
_FULL_MARKERS = ("No space left on device", "Disk quota exceeded", "ENOSPC")


def _translate(err: Exception, path: Path) -> StoreError | None:
    """DuckDB's error as one readable sentence when the cause is the file or its disk, else None."""
    text = str(err)
    first = " ".join(text.split())[:200]
    if any(marker in text for marker in _FULL_MARKERS):
        return StoreFull(f"The disk holding the lab store ({path}) is full; nothing was committed. "
                         f"Free some space and run the command again.")
    if any(marker in text for marker in _DAMAGE_MARKERS):
        return StoreDamaged(
            f"The lab store file {path} is damaged and cannot be read ({first}). Move it aside "
            f"(mv '{path}' '{path}.damaged'): the next start creates an empty store, and the weights files in "
            f"{path.parent / 'weights'} are kept.")
    return None


@dataclass
class _Open:
    path: Path
    con: duckdb.DuckDBPyConnection
    tx_depth: int = 0


_local = threading.local()  # .open: _Open | None — the connection this thread holds, if any
_migrated: set[str] = set()  # db paths this process has already migrated
_migrate_guard = threading.Lock()
_swept: set[str] = set()  # db paths whose home this process has swept for orphaned temp files
_base: duckdb.DuckDBPyConnection | None = None  # this process's in-memory instance
_base_pid = 0
_base_guard = threading.Lock()
_attach_count = 0


def utc_now() -> datetime:
    """Naive UTC: what every TIMESTAMP column stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def read_only_reason() -> str | None:
    """Why this process opens the store read-only, or None when it can write: REBASIN_READ_ONLY is set, or
    the home folder, the store file or its lock file is not writable by this user."""
    if os.environ.get("REBASIN_READ_ONLY", "").strip().lower() in ("1", "true", "yes", "on"):
        return "REBASIN_READ_ONLY is set"
    home = home_dir()
    if not _writable(home):
        return f"its folder {home} is not writable"
    for path in (db_path(), home / "lab.lock"):
        if path.exists() and not _writable(path):
            return f"{path} is not writable"
    return None


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def read_only_error(reason: str | None = None) -> StoreReadOnly:
    path = db_path()
    reason = reason or read_only_reason() or "it is open read-only"
    return StoreReadOnly(
        f"The lab store {path} is read-only ({reason}): results can be browsed, but nothing can be written "
        f"or started. Make {path.parent} writable (or unset REBASIN_READ_ONLY), or point REBASIN_HOME at a "
        "writable copy of it.")


def lock_path(read_only: bool = False) -> Path:
    """The cross-process lock: `<home>/lab.lock`; for a read-only store (whose folder may not be writable)
    a lock named after the store in the system's temp folder, so nothing is written beside the store."""
    if not read_only:
        return home_dir() / "lab.lock"
    import hashlib
    import tempfile

    tag = hashlib.sha256(str(db_path().resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"rebasin-lab-{tag}.lock"


def _timeout_from_env() -> float:
    raw = os.environ.get("REBASIN_LOCK_TIMEOUT")
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        return max(0.0, float(raw))
    except ValueError as err:
        raise ValueError(f"REBASIN_LOCK_TIMEOUT must be a number of seconds, got {raw!r}.") from err


def _busy(path: Path, timeout: float, why: str) -> StoreBusy:
    return StoreBusy(
        f"The lab store ({path}) is busy: {why} for more than {timeout:g} s. "
        "Wait for the running step to finish and try again; if it persists, look for a stuck process "
        "that has the store open."
    )


def _is_duckdb_lock_error(err: Exception) -> bool:
    return any(marker in str(err) for marker in _DUCKDB_LOCK_MARKERS)


def _base_connection() -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB instance (re-created after a fork: instances are not fork-safe)."""
    global _base, _base_pid
    with _base_guard:
        if _base is None or _base_pid != os.getpid():
            _base, _base_pid = duckdb.connect(":memory:"), os.getpid()
        return _base


def _attach(path: Path, deadline: float, timeout: float, read_only: bool = False
            ) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A cursor with the store file attached and selected; if some other program (outside our lock)
    has the file open, back off and retry until the deadline."""
    global _attach_count
    base = _base_connection()
    with _base_guard:
        cursor = base.cursor()
        _attach_count += 1
        alias = f"lab_{_attach_count}"
    quoted = str(path).replace("'", "''")
    if read_only and not path.exists():
        cursor.close()
        raise StoreReadOnly(f"There is no lab store at {path}, and it cannot be created: "
                            f"{read_only_reason() or 'it is open read-only'}. Point REBASIN_HOME at a writable "
                            "folder (or unset REBASIN_READ_ONLY).")
    delay = 0.02
    while True:
        try:
            cursor.execute(f"ATTACH '{quoted}' AS {alias}" + (" (READ_ONLY)" if read_only else ""))
            break
        except duckdb.Error as err:
            if not _is_duckdb_lock_error(err):
                cursor.close()
                translated = _translate(err, path)
                if translated is not None:
                    raise translated from None
                raise
            if time.monotonic() >= deadline:
                cursor.close()
                raise _busy(path, timeout, "another program has the database file open") from None
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.5)
    cursor.execute(f"USE {alias}")
    return cursor, alias


def _detach(cursor: duckdb.DuckDBPyConnection, alias: str) -> None:
    """Detach (checkpoint + drop DuckDB's file lock). Work left uncommitted is rolled back; if the file
    still will not detach, drop the whole in-memory instance so the file is never left locked."""
    global _base
    try:
        for attempt in range(2):
            try:
                cursor.execute("USE memory")
                cursor.execute(f"DETACH {alias}")
                return
            except duckdb.Error:
                if attempt:
                    raise
                _quiet_rollback(cursor)
    except duckdb.Error:
        with _base_guard:
            if _base is not None:
                _base.close()
                _base = None
    finally:
        cursor.close()


def _ensure_migrated(con: duckdb.DuckDBPyConnection, path: Path, read_only: bool = False) -> None:
    key = str(path.resolve())
    if key in _migrated:
        return
    with _migrate_guard:
        if read_only:  # nothing can be migrated: an up-to-date store is readable, an older one is not
            from store.migrations import LATEST_VERSION

            try:
                (version,) = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
            except duckdb.Error:
                version = 0
            if int(version) < LATEST_VERSION:
                raise StoreReadOnly(
                    f"The lab store {path} has schema version {version}, older than this code's {LATEST_VERSION}, "
                    f"and it is read-only ({read_only_reason() or 'open read-only'}); open it once with write "
                    "access to upgrade it.")
        else:
            migrate(con)
        _migrated.add(key)


def _sweep_once(path: Path) -> None:
    """At the first store open in a process: remove temp files that killed writers left behind."""
    key = str(path)
    if key in _swept:
        return
    _swept.add(key)
    from store.files import sweep_store_orphans

    try:
        sweep_store_orphans()
    except OSError:  # a sweep is housekeeping: it never stops the store from opening
        pass


@contextmanager
def connect(*, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a DuckDB connection held under the store lock; always closes it and releases the lock.

    An exception inside rolls back an open transaction. Waits up to `timeout` seconds
    (default: env REBASIN_LOCK_TIMEOUT or 60) for other processes, then raises StoreBusy.
    """
    try:
        path = db_path()
    except PermissionError as err:  # the home folder does not exist and cannot be created
        raise StoreReadOnly(f"The lab home {err.filename} cannot be created ({err.strerror}); point REBASIN_HOME "
                            "at a writable folder.") from None
    current: _Open | None = getattr(_local, "open", None)
    if current is not None and current.path == path:
        yield current.con  # nested: the outer connect() owns lock, commit and close
        return
    read_only = read_only_reason() is not None
    if not read_only:
        _sweep_once(path)
    timeout = _timeout_from_env() if timeout is None else float(timeout)
    deadline = time.monotonic() + timeout
    lock = FileLock(str(lock_path(read_only)))
    try:
        lock.acquire(timeout=timeout, poll_interval=0.01)
    except Timeout:
        raise _busy(path, timeout, "another lab process has held its lock") from None
    try:
        con, alias = _attach(path, deadline, timeout, read_only)
        state = _Open(path, con)
        previous, _local.open = current, state
        try:
            _ensure_migrated(con, path, read_only)
            yield con
        except duckdb.Error as err:
            if read_only and "read-only" in str(err):
                raise read_only_error() from None
            translated = _translate(err, path)
            if translated is not None:
                raise translated from None
            raise
        finally:
            _local.open = previous
            if state.tx_depth:  # left open by an exception (or by hand): discard it
                _quiet_rollback(con)
            _detach(con, alias)
    finally:
        lock.release()


def _quiet_rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # nothing open (DuckDB already aborted it): nothing to undo


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, ROLLBACK on any exception. Nested calls join the outermost transaction.

    With no connection given, opens one with `connect()` for the duration.
    """
    if con is None:
        with connect() as own, transaction(own) as tx:
            yield tx
        return
    state: _Open | None = getattr(_local, "open", None)
    if state is None or state.con is not con:
        state = _Open(Path(""), con)  # a connection from outside connect(): track depth locally
    if state.tx_depth:
        state.tx_depth += 1
        try:
            yield con
        finally:
            state.tx_depth -= 1
        return
    con.execute("BEGIN TRANSACTION")  # a hand-made BEGIN is not tracked: always use transaction()
    state.tx_depth = 1
    try:
        yield con
    except BaseException:
        state.tx_depth = 0
        _quiet_rollback(con)
        raise
    state.tx_depth = 0
    con.execute("COMMIT")


def _nullable_mapper(arrow_type: pa.DataType) -> Any:
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def fetch_df(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> pd.DataFrame:
    """A read query's result as a DataFrame, via Arrow (about twice as fast as `.df()` on 100k rows).

    Integer and boolean columns are numpy int64/bool, or pandas nullable Int64/boolean when they hold
    NULLs (as DuckDB's `.df()` does); strings are pandas `str`; timestamps datetime64 (naive UTC).
    """
    import pandas as pd

    con.complete()  # finish any earlier execute() on this connection, as con.sql requires
    df = con.sql(sql, params=params or None).to_arrow_table().to_pandas(types_mapper=_nullable_mapper)
    for column in df.columns:
        dtype = df[column].dtype
        if isinstance(dtype, pd.Int64Dtype | pd.BooleanDtype) and not df[column].hasnans:
            df[column] = df[column].astype("int64" if isinstance(dtype, pd.Int64Dtype) else "bool")
    return df


def query_df(sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
    """Run one read query under the lock and return its result as a pandas DataFrame (see fetch_df)."""
    with connect() as con:
        return fetch_df(con, sql, params)
