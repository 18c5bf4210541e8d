"""JSON columns (canonical text in, Python values out) and the small value checks the query modules share.

The store keeps JSON as TEXT (sorted keys, compact, no NaN) so equal values give equal text and
`key` hashes computed elsewhere stay stable. `get_*` functions return decoded values; `list_*`
DataFrames keep the text (decode a column with `decode_column`, a cell with `decoded`). Nobody outside the
store calls json.loads on a stored value: `decoded` is the one way back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:  # pandas is imported where a DataFrame is built: `jobs list` and --help stay light
    import pandas as pd


def dumps(value: Any) -> str:
    """Canonical JSON text; tuples become lists. Raises ValueError for values JSON cannot hold."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Value cannot be stored as JSON: {err}.") from err


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def decoded(value: Any, default: Any = None) -> Any:
    """A stored JSON value as a Python value, whichever way it arrived: text from a list_* DataFrame is
    decoded, a value a get_* function decoded already is returned as is, NULL (None/NaN/NA) gives `default`.
    Damaged text raises ValueError (json.JSONDecodeError)."""
    if value is None or type(value).__name__ == "NAType" or (isinstance(value, float) and math.isnan(value)):
        return default
    return json.loads(value) if isinstance(value, str) else value


def decode_column(df: pd.DataFrame, column: str) -> pd.Series:
    """The JSON text column of a list_* DataFrame, decoded to Python values."""
    return df[column].map(loads)


def fetch_dict(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any], json_fields: Iterable[str] = ()
) -> dict[str, Any] | None:
    """First row of a query as a dict (JSON fields decoded), or None when there is none."""
    cursor = con.execute(sql, list(params))
    row = cursor.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cursor.description]
    out = dict(zip(names, row, strict=True))
    for field in json_fields:
        out[field] = loads(out[field])
    return out


def finite_or_none(value: Any, what: str) -> float | None:
    """A plain float (finite) or None, for optional numeric columns."""
    if value is None:
        return None
    number = as_float(value, what)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}.")
    return number


def as_float(value: Any, what: str) -> float:
    """A plain float from a real number (not bool, not str); NaN/inf allowed."""
    if isinstance(value, bool) or isinstance(value, str | bytes) or value is None:
        raise ValueError(f"{what} must be a number, got {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be a number, got {value!r}.") from err


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"A cache key must be a non-empty string, got {key!r}.")
    return key


def check_id(value: Any, what: str) -> int:
    """An integer id (numpy ints welcome; bool and float refused)."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"{what} must be an integer id, got {value!r}.")
    return int(value.__index__())


def check_choice(value: Any, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def before_clause(column: str, before: Any, params: list) -> str:
    """' AND <column> < ?' (its value appended to params) when `before` is a time, else '': the cache checks'
    "stored before this job started". `before`: a datetime (naive = UTC, as the store keeps them) or None."""
    if before is None:
        return ""
    if not isinstance(before, datetime):
        raise ValueError(f"before must be a datetime, got {before!r}.")
    params.append(before.astimezone(UTC).replace(tzinfo=None) if before.tzinfo is not None else before)
    return f" AND {column} < ?"
