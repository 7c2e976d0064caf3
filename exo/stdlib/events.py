"""Repository events (`governance.compiled`, `repo.frozen`, `repo.unfrozen`): one sealed stream each.

Each event is its own write-once stream `.exo/audit/ev-<time>-<random>.jsonl` (the event and its
seal), so two branches that both compiled the constitution or froze the repository add two files
and merge without a conflict and without losing either. Deleting or editing one after it was
committed is a change doctor refuses (`RECORD_REWRITTEN`). Events of this clone alone (lease
takeovers, repairs) go to the runtime `local` stream instead and are never committed.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from exo.kernel import append_audit, ids, seal_audit
from exo.kernel.layout import AUDIT_DIR

from . import runtime

PREFIX = "ev-"


def record(root: Path, event: str, data: dict[str, Any], *, now: datetime | None = None) -> str:
    """Write `event` as a new sealed stream in this worktree; return its repo-relative path.

    Raises what `append_audit` raises (INVALID_ARGUMENT for bad data, IO_ERROR)."""
    at = ids.moment(now)
    stream = f"{PREFIX}{at.strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(10)}"  # names sort by time
    append_audit(root, stream, event, data, now=at)
    seal_audit(root, stream, now=at)
    rel = f"{AUDIT_DIR}/{stream}.jsonl"
    runtime.note_exo_write(root, rel, (root / rel).read_bytes())
    return rel
