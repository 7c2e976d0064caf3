"""Reading the audit log for humans and CI: `exo audit verify` and `exo audit show`."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from exo.kernel import Anchor, AuditRecord, AuditReport, InputError, ids, verify_audit
from exo.kernel.fs import audit_path, read_file
from exo.kernel.layout import AUDIT_DIR, REPO_STREAM
from exo.kernel.state import read_bytes

from .events import PREFIX

EVENTS = "events"  # what `show` calls the repository's events: every one-event stream, merged

_ANCHOR = re.compile(r"([^:]+):([0-9]+):([0-9a-f]{64})")


class AuditShow(BaseModel):
    """Records of one stream, oldest first (the last `limit` when limited)."""

    stream: str = Field(description="Stream shown.")
    total: int = Field(description="Records in the stream.")
    records: list[AuditRecord] = Field(description="The records shown.")
    unreadable: int = Field(description="Lines that are not valid records (run `exo audit verify`).")


def parse_anchor(text: str) -> Anchor:
    """`STREAM:SEQ:HASH` as typed on the command line. Raises InputError(INVALID_ARGUMENT)."""
    match = _ANCHOR.fullmatch(text.strip())
    if not match:
        raise InputError(f"bad anchor {text!r}", code="INVALID_ARGUMENT", hint="anchors are STREAM:SEQ:SHA256HEX")
    stream, seq, digest = match.groups()
    return Anchor(stream=ids.stream_id(stream), seq=int(seq), h=digest, source="command line")


def verify(root: Path, anchors: list[str]) -> AuditReport:
    """Verify every audit stream against the given anchors and those of every committed session
    record (so a truncated or rewritten session stream is caught). See kernel `verify_audit`."""
    from . import records

    recorded = [record.audit for record in records.load_all(root)]
    return verify_audit(root, [parse_anchor(a) for a in anchors] + recorded)


def show(root: Path, stream: str | None = None, limit: int = 50, event: str | None = None) -> AuditShow:
    """The last `limit` records (0: all) of `stream` — a session id, or `local` for this clone's own
    events — or, without one, of the repository's events (every one-event stream, and the shared
    `repo` stream of earlier versions), oldest first; optionally only events starting with `event`.

    Raises InputError(INVALID_ID) for a bad stream id, INVALID_ARGUMENT for a negative limit.
    """
    if limit < 0:
        raise InputError("--limit must be 0 (all) or more", code="INVALID_ARGUMENT")
    if stream is None:
        directory = root / AUDIT_DIR
        names = [REPO_STREAM, *sorted(p.stem for p in directory.glob(f"{PREFIX}*.jsonl"))] if directory.is_dir() else []
        lines = [line for name in names for line in (read_file(directory / f"{name}.jsonl") or b"").splitlines()]
    else:
        lines = (read_bytes(str(audit_path(root, ids.stream_id(stream)))) or b"").splitlines()
    records, unreadable = [], 0
    for line in lines:
        try:
            record = AuditRecord.model_validate_json(line)
        except ValidationError:
            unreadable += 1
            continue
        if (event is None or record.event.startswith(event)) and not (
            stream is None and record.event == "audit.sealed"
        ):
            records.append(record)
    return AuditShow(
        stream=stream or EVENTS, total=len(lines), records=records[-limit:] if limit else records, unreadable=unreadable
    )
