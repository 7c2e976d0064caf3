"""Canonical JSON: the one byte encoding that every hash in exo is computed over."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._errors import InputError

MAX_DEPTH = 32


def canonical(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, no floats: equal data always gives equal bytes.

    Raises InputError(INVALID_ARGUMENT) for floats, non-string keys or non-JSON values.
    """
    _check(value, 0)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InputError("data nested too deeply", code="INVALID_ARGUMENT")
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        raise InputError(
            "floats are not allowed in hashed records (encode as an integer or string)",
            code="INVALID_ARGUMENT",
        )
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"non-string key {key!r} in record data", code="INVALID_ARGUMENT")
            _check(item, depth + 1)
        return
    raise InputError(f"{type(value).__name__} is not JSON data", code="INVALID_ARGUMENT")


def reject_float(text: str) -> Any:
    """`json.loads(parse_float=...)` hook: hashed records never contain floats."""
    raise ValueError(f"float {text} in canonical record")
