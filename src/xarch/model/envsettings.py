"""Settings read from environment variables, validated the same way everywhere."""

from __future__ import annotations

import math
import os

from xarch.errors import BadInput


def seconds_from_env(name: str, default: float, *, allow_zero: bool, example: str) -> float:
    """``$name`` as a finite number of seconds (``default`` when unset or empty).

    BadInput (exit 2) for anything else: not a number, nan, infinite, negative, or zero
    where zero is not allowed; ``example`` is what the message suggests instead."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and math.isfinite(value)):
        bound = ">= 0" if allow_zero else "> 0"
        raise BadInput(f"{name}={raw!r} is not a number of seconds {bound}; set it to {example}")
    return value
