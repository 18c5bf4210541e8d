"""An estimate in words: the unit a person plans with ('about 3 min'), a range rounded outward so it still
holds, and why it is short when part of the work is already stored."""

from __future__ import annotations

import math


def describe_range(est: dict, *, stored: bool = True) -> str:
    """'about 3 min (2–5 min)': the estimate and its range, in the unit a person plans with; then, when part of
    the work is already stored (and `stored`), why it is short: '… — 12 of 16 models already stored'."""
    low, high = est["low"], est["high"]
    text = f"{describe(est['total'])} ({_span_text(low, high)})"
    note = stored_text(est.get("cached")) if stored else ""
    return f"{text} — {note}" if note else text


def stored_text(cached: dict | None) -> str:
    """'12 of 16 models and 3 of 6 trees already stored' for an estimate's "cached" (phases with nothing stored
    are left out); '' when nothing is."""
    parts = [f"{c['done']:,} of {c['total']:,} {c['unit']}" for c in (cached or {}).values() if c.get("done")]
    if not parts:
        return ""
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{listed} already stored"


def _span_text(low: float, high: float) -> str:
    """The range rounded outward (low down, high up), so what it shows still holds every time it holds."""
    if high < 90:
        return f"{max(1, math.floor(low))}–{max(1, math.ceil(high))} s"
    if high < 5400:
        return f"{math.floor(low / 60) if low >= 60 else '<1'}–{math.ceil(high / 60)} min"
    if high < 2 * 86400:
        return f"{math.floor(low / 360) / 10:.1f}–{math.ceil(high / 360) / 10:.1f} h"
    return f"{math.floor(low / 8640) / 10:.1f}–{math.ceil(high / 8640) / 10:.1f} days"


def describe(seconds: float) -> str:
    """'about 3 min', 'about 1.2 h', 'about 2.5 days' — what a person plans with."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    if seconds < 2 * 86400:
        return f"about {seconds / 3600:.1f} h"
    return f"about {seconds / 86400:.1f} days"
