"""Closing a session: `session-finish` and `session-handoff`.

Drift against the pinned fence, the pinned checks (with progress), the sealed audit segment, the
session record and memento, a closeout commit of those records only, and the lease released or
passed on. Any violation (unless a human accepts it) or failed check leaves the session open.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Literal, NoReturn

from pydantic import BaseModel, Field

from exo.kernel import (
    Anchor,
    AuditError,
    ExoError,
    Governance,
    GovernanceError,
    InputError,
    Lease,
    LeaseStore,
    LockError,
    acquire_lock,
    append_audit,
    ids,
    load_governance,
    seal_audit,
)
from exo.kernel.fs import audit_path, file_lock
from exo.kernel.layout import LOCK
from exo.kernel.state import State, read_bytes

from . import (
    approvals,
    authority,
    checks,
    claims,
    drift,
    events,
    git,
    history,
    keys,
    records,
    runtime,
    sandbox,
    signing,
    standing,
    tickets,
    worktree,
)
from .checks import CheckRun
from .drift import DriftReport
from .githooks import claim_stamp
from .records import Handoff, SessionRecord
from .runtime import OpenSession
from .sessions import Progress, SessionView, own_session, view


class Closing(BaseModel):
    """How a session is being closed: by finish or by handoff, with what it says about itself."""

    outcome: Literal["finished", "handed_off", "abandoned"]
    summary: str = ""
    follow_ups: list[str] = Field(default_factory=list)
    accept_drift: str | None = None
    note: Handoff | None = None
    set_status: str | None = None


class FinishResult(BaseModel):
    """A closed session: finished or handed off, with what closing measured and committed."""

    session: SessionView
    outcome: Literal["finished", "handed_off", "abandoned"]
    drift: DriftReport
    checks: list[CheckRun]
    commit: str | None = Field(description="The closeout commit (records only).")
    audit: Anchor | None = Field(description="Sealed head of the session's audit stream.")
    lease: Lease | None = Field(default=None, description="After a handoff: the lease granted to the next actor.")


class Refusal(BaseModel):
    """What a refused finish or handoff found; the session stays open."""

    session: SessionView
    drift: DriftReport
    checks: list[CheckRun] = Field(description="The checks run before the refusal (none for drift).")


class Refused(GovernanceError):
    """A finish or handoff refused, with its evidence: DRIFT (every violation is named) or
    CHECKS_FAILED (every failing check, with the tail of its output). The session stays open."""

    def __init__(self, message: str, *, code: str, refusal: Refusal) -> None:
        super().__init__(message, code=code)
        self.refusal = refusal

    def details(self) -> dict[str, object]:
        return self.refusal.model_dump(mode="json")


def finish(
    root: Path,
    actor: str,
    *,
    summary: str = "",
    set_status: str = "review",
    accept_drift: str | None = None,
    follow_ups: list[str] | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> FinishResult:
    """Check drift, run the checks, write and commit the records, release the lease.

    Any violation (unless a human accepts it with a reason) or failed check raises Refused (DRIFT,
    CHECKS_FAILED) with the session left open. Also raises SESSION_NOT_FOUND, LOCK_LOST,
    NOT_ALLOWED, INVALID_ARGUMENT.
    """
    if set_status not in ("review", "done"):
        raise InputError("--set-status takes review or done", code="INVALID_ARGUMENT")
    closing = Closing(
        outcome="finished",
        summary=summary,
        follow_ups=follow_ups or [],
        accept_drift=accept_drift,
        set_status=set_status,
    )
    return _close(root, actor, closing, now, progress)


def handoff(
    root: Path,
    actor: str,
    *,
    to: str,
    summary: str,
    next_steps: list[str] | None = None,
    tried: list[str] | None = None,
    accept_drift: str | None = None,
    now: datetime | None = None,
) -> FinishResult:
    """Close the session with a handoff record and transfer the lease to `to`.

    Drift is checked as at finish, refused as Refused(DRIFT); no checks are run: the work is
    unfinished by nature.
    """
    if not summary.strip():
        raise InputError("a handoff needs a summary", code="INVALID_ARGUMENT")
    note = Handoff(to=ids.actor(to), summary=summary, next_steps=next_steps or [], tried=tried or [])
    closing = Closing(outcome="handed_off", summary=summary, accept_drift=accept_drift, note=note)
    return _close(root, actor, closing, now, None)


# --- internals


def _close(root: Path, actor: str, closing: Closing, now: datetime | None, progress: Progress | None) -> FinishResult:
    at = ids.moment(now)
    say = progress or (lambda _line: None)
    with file_lock(root, State(root).pointer):
        session = own_session(root, actor)
        accept_drift = closing.accept_drift
        acceptor = authority.human_act(root, actor, "accept_drift") if accept_drift is not None else None
        store = claims.lease_store(root)
        here = view(root, session, at, store)
        if not here.live:
            raise LockError(
                f"the lease of session {session.sid} on {session.ticket_id} expired or was taken over",
                code="LOCK_LOST",
            )
        git.can_commit(root)  # before anything is sealed: a failed closeout must stay retryable
        if isinstance(store, claims.RemoteLeaseStore):
            store.landing(git.head(root))  # the work must be able to land on the remote branch
        stream = _own_stream(root, session)
        gov = load_governance(root)
        if closing.set_status == "done":
            approvals.require_approver(gov, actor)
        signer = record_signer(gov)
        done = records.load(root, session.sid)
        if done is not None:  # an earlier attempt sealed and wrote the records but did not commit
            if not (root / records.signature_path(session.sid)).exists():
                records.sign(root, session.sid, (root / records.SESSIONS / f"{session.sid}.json").read_bytes(), signer)
            return _commit_and_release(root, session, here, done, say, store)
        say("measuring drift")
        measured = drift.measure(root, session, gov, runtime.fence_of(session), session.budget)
        report = measured.report
        if not report.ok and not accept_drift:
            _refuse(root, session, Refusal(session=here, drift=report, checks=[]), at)
        finishing = closing.outcome == "finished"
        ran = checks.run_all(root, session.checks, session.check_timeout_seconds, say) if finishing else []
        if any(not c.passed for c in ran):
            _refuse(root, session, Refusal(session=here, drift=report, checks=ran), at)
        if accept_drift and not report.ok:
            accepted = {"actor": actor, "reason": accept_drift, "violations": [v.path for v in report.violations]}
            append_audit(root, session.sid, "drift.accepted", accepted, now=at)
            events.record(root, "drift.accepted", {**accepted, "sid": session.sid}, now=at, signer=acceptor)
        event = "session.finished" if finishing else "session.handed_off"
        if not _closed_already(stream, event):  # a retry after a crash past the seal
            append_audit(root, session.sid, event, _close_data(report, ran, closing), now=at)
        seq, head = seal_audit(root, session.sid, now=at)  # idempotent: a sealed stream gives its anchor
        anchor = Anchor(stream=session.sid, seq=seq, h=head, source=f".exo/sessions/{session.sid}.json")
        if closing.set_status is not None:
            tickets.update(root, session.ticket_id, {"status": closing.set_status})
        closed = Closed(report=report, products=measured.products, checks=ran, anchor=anchor, at=at)
        record = _record(session, closing, closed, writes(root, session))
        records.write(root, record, signer)
        return _commit_and_release(root, session, here, record, say, store)


def record_signer(gov: Governance) -> keys.Key | None:
    """This machine's broker key, which signs the records it closes. Where the constitution requires
    signed records and there is none, GovernanceError(SIGNING_KEY_MISSING) before anything is sealed."""
    key = keys.broker()
    if key is None and signing.required(gov, "session_records"):
        raise GovernanceError(
            "the constitution requires session records signed by a broker, and this machine has no broker key",
            code="SIGNING_KEY_MISSING",
            hint="a human runs `exo keys create` and lists the key (`exo keys add --broker`), then finish again",
        )
    return key


def _own_stream(root: Path, session: OpenSession) -> bytes:
    """The session's audit stream as it stands, refused unless it still opens with the session's
    own session.started record: sealing a stream that lost its start would publish a record CI
    rejects, and the history it lost would be gone for good. Raises AuditError(AUDIT_CORRUPT),
    StateError(STATE_CORRUPT) for a stream that is not a regular file."""
    path = audit_path(root, session.sid)
    stream = read_bytes(str(path)) or b""
    if not records.starts_as(stream, session):
        raise AuditError(
            f"the audit stream of session {session.sid} ({path}) no longer opens with its session.started record",
            code="AUDIT_CORRUPT",
            hint="put the stream back from a backup and retry; nothing was sealed or committed",
        )
    return stream


def _closed_already(stream: bytes, event: str) -> bool:
    """Whether an earlier attempt already closed `stream` with `event` and sealed it."""
    tail = stream.rstrip(b"\n").rsplit(b"\n", 2)[-2:]
    try:
        events = [json.loads(line).get("event") for line in tail]
    except (ValueError, AttributeError, RecursionError):
        return False
    return events == [event, "audit.sealed"]


def _commit_and_release(
    root: Path, session: OpenSession, here: SessionView, record: SessionRecord, say: Progress, store: LeaseStore
) -> FinishResult:
    """The closeout commit (records only), the lease released (with claims on a remote, in the push
    that lands the work) or passed on, the session closed. A retry after the commit does not commit
    again."""
    trailers = _trailers(session, record.audit)
    commit = git.head(root)
    if history.trailers_of(root, commit) != trailers:
        paths = [p for p in records.own_paths(session.sid) if (root / p).exists()]  # record, memento, audit
        paths += [w.path for w in record.writes if w.path not in paths]
        say("committing the session records")
        commit = git.commit_only(root, paths, _message(session, record.outcome), trailers)
    if isinstance(store, claims.RemoteLeaseStore):
        say(f"landing the work on {store.remote} with the claim's release")
    claims.finish_claim(root, store, session.lease, commit)
    passed_on = _pass_on(root, session, record.handoff, record.ended_at, store)
    sandbox.claude_leave(root, session)
    runtime.close(root, session)
    return FinishResult(
        session=here,
        outcome=record.outcome,
        drift=record.drift,
        checks=record.checks,
        commit=commit,
        audit=record.audit,
        lease=passed_on,
    )


def _refuse(root: Path, session: OpenSession, refusal: Refusal, at: datetime) -> NoReturn:
    """Count the refusal against the actor's error budget, audit it, and raise it with its evidence."""
    report, failed = refusal.drift, [c for c in refusal.checks if not c.passed]
    standing.note(root, load_governance(root), session.actor, "refused_finishes")
    append_audit(
        root,
        session.sid,
        "session.refused",
        {
            "code": "CHECKS_FAILED" if failed else "DRIFT",
            "violations": [f"{v.kind}:{v.path}" for v in report.violations],
            "failed_checks": [c.command for c in failed],
        },
        now=at,
    )
    stays = f"session {session.sid} stays open"
    if failed:
        lines = [f"{len(failed)} check(s) failed; {stays}:"]
        lines += [f"  {c.command} (exit {c.exit_code}):\n{_indent(c.output)}" for c in failed]
        raise Refused("\n".join(lines), code="CHECKS_FAILED", refusal=refusal)
    lines = [f"{len(report.violations)} violation(s); {stays}:"]
    lines += [f"  {v.kind}: {v.path} - {v.reason}" for v in report.violations]
    raise Refused("\n".join(lines), code="DRIFT", refusal=refusal)


def _indent(output: str) -> str:
    return "\n".join("    " + line for line in output.rstrip("\n").splitlines()) or "    (no output)"


def _close_data(report: DriftReport, ran: list[CheckRun], closing: Closing) -> dict[str, object]:
    data: dict[str, object] = {
        "files": len(report.files),
        "lines": report.lines_added + report.lines_removed,
        "violations": len(report.violations),
        "drift_score_bp": report.score_bp,  # basis points: hashed records hold no floats
        "checks": {c.command: c.passed for c in ran},
        "status": closing.set_status or "",
    }
    if closing.note is not None:
        data["handoff_to"] = closing.note.to
    return data


class Closed(BaseModel):
    """What closing measured and sealed."""

    report: DriftReport
    products: list[drift.Product]
    checks: list[CheckRun]
    anchor: Anchor
    at: datetime


def _record(session: OpenSession, closing: Closing, closed: Closed, written: list[drift.Product]) -> SessionRecord:
    report = closed.report
    return SessionRecord(
        sid=session.sid,
        ticket_id=session.ticket_id,
        actor=session.actor,
        outcome=closing.outcome,
        task=session.task,
        started_at=session.started_at,
        ended_at=closed.at,
        base_commit=session.base_commit,
        head_commit=report.head_commit,
        scope_allow=session.allow_globs,
        scope_deny=session.deny_globs,
        fence=session.fence,
        fence_sha256=session.fence_sha256,
        ticket_sha256=session.ticket_sha256,
        governance_sha256=session.governance_sha256,
        lease_epoch=session.lease.epoch,
        drift=report,
        accepted_drift=closing.accept_drift if not report.ok else None,
        checks=closed.checks,
        summary=closing.summary,
        follow_ups=closing.follow_ups,
        status_set=closing.set_status,
        handoff=closing.note,
        audit=closed.anchor,
        found=sorted(set(session.found) - {p.path for p in closed.products}),
        products=closed.products,
        writes=written,
    )


def writes(root: Path, session: OpenSession) -> list[drift.Product]:
    """The `.exo/` files the closeout commits besides the session's own record, memento and stream:
    those exo wrote during the session (tickets, events, recovered sessions' records) and still holds
    as written — and, the first time exo is committed at all (no lock at HEAD), the exo files that
    were already there, uncommitted, when the session started and are still as they were then."""
    wanted = runtime.current_writes(root, session)
    if not history.at(root, "HEAD", [LOCK]):
        found = {p: on_disk for p, (_staged, on_disk) in session.found.items() if p.startswith(".exo/") and on_disk}
        now = worktree.entries(root, sorted(found))
        wanted += [p for p, entry in found.items() if now[p] == entry and p not in wanted]
    now = worktree.entries(root, sorted(wanted))
    before = history.at(root, "HEAD", sorted(wanted))
    return [
        drift.Product(path=p, versions=[drift.Version.of(before.get(p)), drift.Version.of(now[p])])
        for p in sorted(wanted)
        if now[p] is not None
    ]


def abandoned_record(root: Path, session: OpenSession, reason: str, anchor: Anchor, at: datetime) -> SessionRecord:
    """The record of a session nobody finished: what it had changed by `at`, measured in its own
    worktree where that still exists (so its commits can be told from anyone else's)."""
    where = Path(session.worktree)
    try:
        measured = drift.measure(where, session, load_governance(where), runtime.fence_of(session), session.budget)
    except ExoError:
        measured = drift.Measured(report=drift.empty(session.base_commit, session.budget), products=[])
    closed = Closed(report=measured.report, products=measured.products, checks=[], anchor=anchor, at=at)
    return _record(session, Closing(outcome="abandoned", summary=reason), closed, [])


def _message(session: OpenSession, outcome: str) -> str:
    verb = "finish" if outcome == "finished" else "hand off"
    return f"exo: {verb} session on {session.ticket_id}\n\nSession {session.sid} by {session.actor}."


def _trailers(session: OpenSession, anchor: Anchor) -> dict[str, str]:
    return {
        "Exo-Policy": session.governance_sha256,
        "Exo-Session": session.sid,
        "Exo-Ticket": session.ticket_id,
        "Exo-Actor": session.actor,
        "Exo-Audit": f"{anchor.seq}:{anchor.h}",
        "Exo-Claim": claim_stamp(session.ticket_id, session.lease.epoch),
    }


def _pass_on(root: Path, session: OpenSession, note: Handoff | None, at: datetime, store: LeaseStore) -> Lease | None:
    if note is None:
        return None
    try:
        return acquire_lock(root, session.ticket_id, note.to, session.lease.ttl_seconds, now=at, store=store)
    except LockError:
        return None  # someone claimed it in between: the handoff record still tells the story
