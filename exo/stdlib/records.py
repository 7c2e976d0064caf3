"""Durable session records: `.exo/sessions/<sid>.json` and `.exo/mementos/<sid>.md`, write-once.

A record (format 2) is the session's attestation: besides what it was fenced by and how it closed,
it lists its *products* — every state the session gave each path it changed, as git blob ids —
and the `.exo/` files exo wrote for it, so doctor can tell its content anywhere in history
(amended, rebased, cherry-picked, squashed) from content nobody accounts for. Format-1 records
(no products) keep verifying the way they were written: by their commits' trailers.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from exo.kernel import Anchor
from exo.kernel.fs import atomic_write
from exo.kernel.layout import AUDIT_DIR

from . import signing
from .checks import CheckRun
from .drift import DriftReport, Product
from .keys import Key

SESSIONS = ".exo/sessions"
MEMENTOS = ".exo/mementos"
STARTED_CLAIMS = ("ticket_id", "actor", "base_commit", "fence_sha256")  # what session.started pins


def starts_as(stream: bytes, owner: object) -> bool:
    """Whether the audit stream `stream` opens with the session.started record of `owner` (an open
    session or its record: same ticket, actor, base commit and pinned fence); a stream emptied, cut
    at the front or swapped for another is not the session's own."""
    claims = {key: getattr(owner, key) for key in STARTED_CLAIMS}
    first = stream.split(b"\n", 1)[0]
    try:
        started = json.loads(first)
        data = started["data"] if started.get("event") == "session.started" else {}
        return isinstance(data, dict) and all(data.get(key) == value for key, value in claims.items())
    except (ValueError, AttributeError, KeyError, TypeError, RecursionError):  # not a record at all
        return False


class Handoff(BaseModel):
    to: str = Field(description="Actor the ticket was handed to.")
    summary: str = Field(description="Where the work stands.")
    next_steps: list[str] = Field(description="What the next session should do.")
    tried: list[str] = Field(description="What was tried and did not work.")


class SessionRecord(BaseModel):
    """What a closed session did, committed with its sealed audit segment."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1, 2] = 2
    sid: str
    ticket_id: str
    actor: str
    outcome: Literal["finished", "handed_off", "abandoned"]
    task: str
    started_at: datetime
    ended_at: datetime
    base_commit: str
    scope_allow: list[str]
    scope_deny: list[str]
    fence_sha256: str
    ticket_sha256: str
    governance_sha256: str
    lease_epoch: int
    drift: DriftReport
    accepted_drift: str | None = Field(default=None, description="A human's reason for accepting drift.")
    checks: list[CheckRun]
    summary: str
    follow_ups: list[str]
    status_set: str | None = Field(description="Ticket status written at closeout.")
    handoff: Handoff | None = None
    audit: Anchor = Field(description="The sealed head of the session's audit stream.")
    fence: dict[str, Any] | None = Field(default=None, description="The pinned fence snapshot (fence_sha256 pins it).")
    head_commit: str | None = Field(default=None, description="HEAD when the session closed (before its closeout).")
    found: list[str] = Field(default_factory=list, description="Paths already changed when it started (not its work).")
    products: list[Product] | None = Field(default=None, description="Every path it changed (null in format 1).")
    writes: list[Product] = Field(default_factory=list, description=".exo/ files exo wrote for it and committed.")


def own_paths(sid: str) -> list[str]:
    """The `.exo/` files exo writes for session `sid` (the only protected paths its fence allows):
    record, memento, audit stream and the broker's signature of the record."""
    return [f"{SESSIONS}/{sid}.json", f"{MEMENTOS}/{sid}.md", f"{AUDIT_DIR}/{sid}.jsonl", signature_path(sid)]


def signature_path(sid: str) -> str:
    """Where the broker's signature of session `sid`'s record is kept (SPEC §14)."""
    return f"{SESSIONS}/{sid}.sig"


def sid_of(path: str) -> str:
    """The session id a record's, memento's or stream's path names (its file name, less the extension)."""
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def write(root: Path, record: SessionRecord, signer: Key | None) -> list[str]:
    """Write the session record and memento, and the record's signature by `signer` (this machine's
    broker key) when there is one; return their repo-relative paths."""
    record_path = f"{SESSIONS}/{record.sid}.json"
    memento_path = f"{MEMENTOS}/{record.sid}.md"
    data = record.model_dump_json(indent=2).encode() + b"\n"
    atomic_write(root / record_path, data)
    atomic_write(root / memento_path, memento(record).encode())
    return [record_path, memento_path, *sign(root, record.sid, data, signer)]


def sign(root: Path, sid: str, data: bytes, signer: Key | None) -> list[str]:
    """The broker's signature of a record's bytes, written beside it (nothing without a key)."""
    if signer is None:
        return []
    path = signature_path(sid)
    atomic_write(root / path, signer.sign(signing.RECORD, data))
    return [path]


def parse(raw: bytes) -> SessionRecord:
    """A record from its file's bytes. Raises ValueError (a ValidationError included) when it is not one."""
    import json

    try:
        json.loads(raw)  # refuses non-UTF-8 and absurd nesting with a plain error before pydantic sees it
    except RecursionError:
        raise ValueError("nested too deeply to be a session record") from None
    return SessionRecord.model_validate_json(raw)


def load(root: Path, sid: str) -> SessionRecord | None:
    """The record of session `sid`, if it was written (and is readable)."""
    try:
        return parse((root / SESSIONS / f"{sid}.json").read_bytes())
    except (OSError, ValueError):
        return None


def load_all(root: Path) -> list[SessionRecord]:
    """Every readable session record, oldest first (unreadable ones are doctor's business)."""
    directory = root / SESSIONS
    out = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            out.append(parse(path.read_bytes()))
        except (OSError, ValueError):
            continue
    out.sort(key=lambda r: (r.ended_at, r.sid))
    return out


def memento(record: SessionRecord) -> str:
    """The human-readable closeout: what was done, files touched, drift, checks, follow-ups."""
    drift = record.drift
    lines = [
        f"# Session {record.sid}",
        "",
        f"- ticket: {record.ticket_id}",
        f"- actor: {record.actor}",
        f"- outcome: {record.outcome.replace('_', ' ')}",
        f"- started: {record.started_at.isoformat()}  ended: {record.ended_at.isoformat()}",
        f"- base commit: {record.base_commit}",
        "",
        "## What was done",
        "",
        record.summary or "(no summary given)",
        "",
        f"## Files touched ({len(drift.files)}, +{drift.lines_added} -{drift.lines_removed})",
        "",
        *[f"- {path}" for path in drift.files],
        "",
        f"## Drift (score {drift.score})",
        "",
        *([f"- {v.kind}: {v.path} - {v.reason}" for v in drift.violations] or ["- none"]),
    ]
    if record.accepted_drift:
        lines += ["", f"Drift accepted by a human: {record.accepted_drift}"]
    if record.found:
        lines += ["", f"## Already changed when it started ({len(record.found)}, not its work)", ""]
        lines += [f"- {path}" for path in record.found]
    lines += ["", "## Checks", ""]
    lines += [f"- {'passed' if c.passed else 'FAILED'}: `{c.command}`" for c in record.checks] or ["- none"]
    if record.handoff:
        lines += ["", f"## Handoff to {record.handoff.to}", "", record.handoff.summary, ""]
        lines += [f"- next: {step}" for step in record.handoff.next_steps]
        lines += [f"- tried: {item}" for item in record.handoff.tried]
    lines += ["", "## Follow-ups", ""]
    lines += [f"- {item}" for item in record.follow_ups] or ["- none"]
    return "\n".join(lines) + "\n"
