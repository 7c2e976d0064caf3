"""Editing a JSON config that belongs partly to the user (hook configs, MCP configs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exo.kernel import StateError
from exo.kernel.fs import atomic_write, read_file


def edit(path: Path, change: Callable[[dict[str, Any]], None], *, create: bool = True) -> bool:
    """Apply `change` to the JSON object in `path` and write it back only if its bytes change.

    A missing file starts as `{}` (or is left missing when `create` is false). Returns whether the
    file was written. Raises StateError(IO_ERROR), touching nothing, when the file is not a JSON
    object or `change` finds it in an unexpected shape (by raising ValueError).
    """
    raw = read_file(path)
    if raw is None and not create:
        return False
    try:
        doc = json.loads(raw) if raw else {}
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        change(doc)
    except ValueError as exc:
        raise StateError(
            f"{path} is not in the expected shape ({exc}); not touching it",
            code="IO_ERROR",
            hint="fix the file by hand first",
        ) from exc
    text = (json.dumps(doc, indent=2) + "\n").encode()
    if raw == text:
        return False
    atomic_write(path, text)
    return True
