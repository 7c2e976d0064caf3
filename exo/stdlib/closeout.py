"""Closing a session: `session-finish` and `session-handoff`.

Drift against the pinned fence, the pinned checks (with progress), the sealed audit segment, the
session record and memento, a closeout commit of those records only, and the lease released or
passed on. Any violation (unless a human accepts it) or failed check leaves the session open.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from exo.kernel import (
    Anchor,
    GovernanceError,
    InputError,
    Lease,
    LockError,
    acquire_lock,
    append_audit,
    ids,
    load_governance,
    release_lock,
    seal_audit,
)
from exo.kernel.fs import file_lock

from . import checks, drift, git, records, runtime, tickets
from .records import Handoff, SessionRecord
from .runtime import OpenSession
from .sessions import Progress, SessionView, own_session, view


class Closing(BaseModel):
    """How a session is being closed: by finish or by handoff, with what it says about itself."""

    outcome: Literal["finished", "handed_off"]
    summary: str = ""
    follow_ups: list[str] = Field(default_factory=list)
    accept_drift: str | None = None
    note: Handoff | None = None
    set_status: str | None = None


class FinishResult(BaseModel):
    """`ok` when the session is closed; otherwise it stays open and `error` says why."""

    ok: bool
    session: SessionView
    outcome: Literal["finished", "handed_off", "refused"]
    drift: drift.DriftReport
    checks: list[checks.CheckRun]
    commit: str | None = Field(description="The closeout commit (records only).")
    audit: Anchor | None = Field(description="Sealed head of the session's audit stream.")
    lease: Lease | None = Field(default=None, description="After a handoff: the lease granted to the next actor.")
    error: dict[str, str] | None = Field(default=None, description="code, message, hint when refused.")


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

    Any violation (unless a human accepts it with a reason) or failed check returns ok=false with
    the session left open. Raises SESSION_NOT_FOUND, LOCK_LOST, NOT_ALLOWED, INVALID_ARGUMENT.
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

    Drift is checked as at finish (no checks are run: the work is unfinished by nature).
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
    with file_lock(root, runtime.pointer(root)):
        session = own_session(root, actor)
        accept_drift = closing.accept_drift
        if accept_drift is not None and not actor.startswith("human:"):
            raise GovernanceError(f"{actor} may not accept drift: only a human can", code="NOT_ALLOWED")
        here = view(root, session, at)
        if not here.live:
            raise LockError(
                f"the lease of session {session.sid} on {session.ticket_id} expired or was taken over",
                code="LOCK_LOST",
            )
        git.can_commit(root)  # before anything is sealed: a failed closeout must stay retryable
        done = records.load(root, session.sid)
        if done is not None:  # an earlier attempt sealed and wrote the records but did not commit
            return _commit_and_release(root, session, here, done, say)
        gov = load_governance(root)
        say("measuring drift")
        report = drift.compute(root, session, gov, runtime.fence_of(session), session.budget)
        if not report.ok and not accept_drift:
            return _refuse(root, session, here, report, [], at, "DRIFT", _drift_message(report))
        finishing = closing.outcome == "finished"
        ran = checks.run_all(root, session.checks, session.check_timeout_seconds, say) if finishing else []
        failed = [c.command for c in ran if not c.passed]
        if failed:
            return _refuse(
                root, session, here, report, ran, at, "CHECKS_FAILED", "failing checks: " + ", ".join(failed)
            )
        if accept_drift and not report.ok:
            append_audit(
                root,
                session.sid,
                "drift.accepted",
                {"actor": actor, "reason": accept_drift, "violations": [v.path for v in report.violations]},
                now=at,
            )
        event = "session.finished" if finishing else "session.handed_off"
        append_audit(root, session.sid, event, _close_data(report, ran, closing), now=at)
        seq, head = seal_audit(root, session.sid, now=at)
        anchor = Anchor(stream=session.sid, seq=seq, h=head, source=f".exo/sessions/{session.sid}.json")
        record = _record(session, closing, report, ran, anchor, at)
        records.write(root, record)
        if closing.set_status is not None:
            tickets.update(root, session.ticket_id, {"status": closing.set_status})
        return _commit_and_release(root, session, here, record, say)


def _commit_and_release(
    root: Path, session: OpenSession, here: SessionView, record: SessionRecord, say: Progress
) -> FinishResult:
    """The closeout commit (records only), the lease released or passed on, the session closed."""
    paths = [p for p in records.own_paths(session.sid) if (root / p).exists()]  # record, memento, audit
    if record.status_set is not None:
        paths.append(f"{tickets.TICKETS}/{session.ticket_id}.yaml")
    paths += [p for p in runtime.current_writes(root, session) if p not in paths]
    say("committing the session records")
    commit = git.commit_only(root, paths, _message(session, record.outcome), _trailers(session, record.audit))
    release_lock(root, session.lease)
    passed_on = _pass_on(root, session, record.handoff, record.ended_at)
    runtime.close(root, session)
    return FinishResult(
        ok=True,
        session=here,
        outcome=record.outcome,
        drift=record.drift,
        checks=record.checks,
        commit=commit,
        audit=record.audit,
        lease=passed_on,
    )


def _refuse(
    root: Path,
    session: OpenSession,
    here: SessionView,
    report: drift.DriftReport,
    ran: list[checks.CheckRun],
    at: datetime,
    code: str,
    message: str,
) -> FinishResult:
    append_audit(
        root,
        session.sid,
        "session.refused",
        {
            "code": code,
            "violations": [f"{v.kind}:{v.path}" for v in report.violations],
            "failed_checks": [c.command for c in ran if not c.passed],
        },
        now=at,
    )
    error = GovernanceError(message, code=code)
    return FinishResult(
        ok=False,
        session=here,
        outcome="refused",
        drift=report,
        checks=ran,
        commit=None,
        audit=None,
        error=error.to_dict(),
    )


def _drift_message(report: drift.DriftReport) -> str:
    lines = [f"{len(report.violations)} violation(s); the session stays open:"]
    lines += [f"  {v.kind}: {v.path} - {v.reason}" for v in report.violations]
    return "\n".join(lines)


def _close_data(report: drift.DriftReport, ran: list[checks.CheckRun], closing: Closing) -> dict[str, object]:
    data: dict[str, object] = {
        "files": len(report.files),
        "lines": report.lines_added + report.lines_removed,
        "violations": len(report.violations),
        "drift_score_bp": round(report.score * 10000),  # basis points: hashed records hold no floats
        "checks": {c.command: c.passed for c in ran},
        "status": closing.set_status or "",
    }
    if closing.note is not None:
        data["handoff_to"] = closing.note.to
    return data


def _record(
    session: OpenSession,
    closing: Closing,
    report: drift.DriftReport,
    ran: list[checks.CheckRun],
    anchor: Anchor,
    at: datetime,
) -> SessionRecord:
    return SessionRecord(
        sid=session.sid,
        ticket_id=session.ticket_id,
        actor=session.actor,
        outcome=closing.outcome,
        task=session.task,
        started_at=session.started_at,
        ended_at=at,
        base_commit=session.base_commit,
        scope_allow=session.allow_globs,
        scope_deny=session.deny_globs,
        fence_sha256=session.fence_sha256,
        ticket_sha256=session.ticket_sha256,
        governance_sha256=session.governance_sha256,
        lease_epoch=session.lease.epoch,
        drift=report,
        accepted_drift=closing.accept_drift if not report.ok else None,
        checks=ran,
        summary=closing.summary,
        follow_ups=closing.follow_ups,
        status_set=closing.set_status,
        handoff=closing.note,
        audit=anchor,
    )


def _message(session: OpenSession, outcome: str) -> str:
    verb = "finish" if outcome == "finished" else "hand off"
    return f"exo: {verb} session on {session.ticket_id}\n\nSession {session.sid} by {session.actor}."


def _trailers(session: OpenSession, anchor: Anchor) -> dict[str, str]:
    return {
        "Exo-Session": session.sid,
        "Exo-Ticket": session.ticket_id,
        "Exo-Actor": session.actor,
        "Exo-Audit": f"{anchor.seq}:{anchor.h}",
    }


def _pass_on(root: Path, session: OpenSession, note: Handoff | None, at: datetime) -> Lease | None:
    if note is None:
        return None
    try:
        return acquire_lock(root, session.ticket_id, note.to, session.lease.ttl_seconds, now=at)
    except LockError:
        return None  # someone claimed it in between: the handoff record still tells the story
