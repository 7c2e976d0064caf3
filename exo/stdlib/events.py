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

from exo.kernel import ExoError, append_audit, ids, seal_audit
from exo.kernel.fs import atomic_write
from exo.kernel.layout import AUDIT_DIR

from . import runtime, signing
from .keys import Key

PREFIX = "ev-"


def record(
    root: Path, event: str, data: dict[str, Any], *, now: datetime | None = None, signer: Key | None = None
) -> str:
    """Write `event` as a new sealed stream in this worktree, signed by `signer` (a human act's own
    key) when given; return the stream's repo-relative path.

    Raises what `append_audit` raises (INVALID_ARGUMENT for bad data, IO_ERROR), SIGNING_FAILED."""
    at = ids.moment(now)
    stream = f"{PREFIX}{at.strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(10)}"  # names sort by time
    append_audit(root, stream, event, data, now=at)
    seal_audit(root, stream, now=at)
    rel = f"{AUDIT_DIR}/{stream}.jsonl"
    sealed = (root / rel).read_bytes()
    if signer is not None:
        try:
            signature = signer.sign(signing.ACT, sealed)
        except ExoError:
            (root / rel).unlink()  # never committed: an act that could not be signed did not happen
            raise
        atomic_write(root / signature_path(rel), signature)
        runtime.note_exo_write(root, signature_path(rel), signature)
    runtime.note_exo_write(root, rel, sealed)
    return rel


def signature_path(stream: str) -> str:
    """Where the signature of the event stream `stream` (repo-relative) is kept."""
    return stream.removesuffix(".jsonl") + ".sig"
