"""Canonical JSON: the one byte encoding that every hash in exo is computed over."""

from __future__ import annotations

import json

from ._errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _builtin_sha256() -> Callable[[bytes], Any]:
    """CPython's builtin sha256 rather than hashlib's: hashlib loads OpenSSL first (~2.5 ms per hook
    run) and what the hot path hashes is small. Same digest either way."""
    for name in ("_sha2", "_sha256"):  # CPython >= 3.12, 3.11
        try:
            found: Callable[[bytes], Any] = __import__(name).sha256
            return found
        except (ImportError, AttributeError):
            continue
    from hashlib import sha256

    return sha256


_sha256 = _builtin_sha256()

MAX_DEPTH = 32


def canonical(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, no floats: equal data always gives equal bytes.

    Raises InputError(INVALID_ARGUMENT) for floats, non-string keys or non-JSON values.
    """
    _check(value, 0)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    digest: str = _sha256(data).hexdigest()
    return digest


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
