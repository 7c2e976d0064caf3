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


# --- one plain line per record, for people (`exo audit show` without --json)

_SAY = {
    "session.started": "{actor} started a session on {ticket_id} (epoch {lease_epoch})",
    "session.heartbeat": "lease renewed (epoch {epoch}) until {expires_at}",
    "session.finished": "finished: {files} file(s), {lines} line(s), {violations} violation(s); checks {checks}",
    "session.handed_off": "handed off to {handoff_to}: {files} file(s), {lines} line(s)",
    "session.refused": "finish refused ({code}): violations {violations}; failed checks {failed_checks}",
    "session.abandoned": "abandoned at epoch {epoch}: {reason}",
    "commit.prepared": "{actor} committed tree {tree} on {head}",
    "audit.sealed": "stream sealed",
    "lock.takeover": "{holder} took {ticket_id} over from {previous_holder} (epoch {previous_epoch} -> {epoch})",
    "lock.repaired": "repaired the lease of {ticket_id}",
    "repo.frozen": "{actor} froze the repository: {reason}",
    "repo.unfrozen": "{actor} lifted the freeze ({reason})",
    "governance.compiled": "{actor} compiled the constitution: {rules} rule(s), lock {lock_sha256}",
    "drift.accepted": "{actor} accepted drift on {violations}: {reason}",
    "ticket.approved": "{actor} approved {ticket_id}",
    "actor.revoked": "{actor} revoked: {why}",
    "actor.restored": "{actor} restored",
    "sandbox.started": "{by} ran {command} in the sandbox",
    "sandbox.skipped": "{by} ran {command} without the sandbox",
    "sandbox.stopped": "the supervisor stopped the command: {why}",
    "sandbox.intrusion": "moved aside {path} (as {moved_to})",
}
_HEX_ID = re.compile(r"[0-9a-f]{40,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def describe(record: AuditRecord) -> str:
    """`record` as one plain line: when, what, and what it says in words for the events exo writes
    (any other event, or one missing a field, as `key: value` pairs). Control characters in the
    stream's text are shown escaped, never sent to the terminal."""
    when = record.ts[:19].replace("T", " ")
    data = {key: _plain(value) for key, value in record.data.items()}
    template = _SAY.get(record.event)
    try:
        said = template.format_map(data) if template else None
    except (KeyError, ValueError, IndexError):
        said = None
    if said is None:
        said = ", ".join(f"{_plain(key)}: {value}" for key, value in sorted(data.items())) or "(no data)"
    return f"{when}  {_plain(record.event):<20} {said}"


def _plain(value: object) -> str:
    if isinstance(value, dict):  # {check: passed}
        return "; ".join(f"{key} {_verdict(ok)}" for key, ok in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(_plain(item) for item in value) or "none"
    text = "" if value is None else str(value)
    text = text[:12] if _HEX_ID.fullmatch(text) else text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _verdict(value: object) -> str:
    return "ok" if value is True else "failed" if value is False else _plain(value)
