"""The governed session: start (with recovery of dead sessions), status, heartbeat, finish, handoff.

Every state change is an audit event in the session's own stream (`.exo/audit/<sid>.jsonl`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from exo.kernel import (
    Anchor,
    BudgetRule,
    ExoError,
    Fence,
    Governance,
    GovernanceError,
    InputError,
    Lease,
    LeaseStore,
    LocalLeaseStore,
    LockError,
    RequireChecksRule,
    StateError,
    acquire_lock,
    append_audit,
    ids,
    inspect_lock,
    load_governance,
    release_lock,
    renew_lock,
    seal_audit,
)
from exo.kernel.fs import file_lock
from exo.kernel.layout import AUDIT_DIR
from exo.kernel.state import State

from . import (
    authority,
    bootstrap,
    claims,
    dispatch,
    drift,
    git,
    keys,
    records,
    rules,
    runtime,
    sandbox,
    standing,
    tickets,
    worktree,
)
from .config import Config, load_config
from .freeze import state as freeze_state
from .runtime import Budget, OpenSession

Progress = Callable[[str], None]


class SessionView(BaseModel):
    """An open session as commands report it."""

    sid: str
    ticket_id: str
    actor: str
    worktree: str
    task: str
    base_commit: str
    started_at: datetime
    epoch: int = Field(description="Fencing epoch of the session's lease.")
    expires_at: datetime = Field(description="When the lease lapses unless renewed.")
    live: bool = Field(description="The lease is still held by this session and not expired.")
    scope_allow: list[str]
    scope_deny: list[str]


class StartResult(BaseModel):
    session: SessionView
    bootstrap: str = Field(description="The prompt to give the agent.")
    abandoned: list[str] = Field(description="Dead sessions this start recovered (sealed as abandoned).")
    found: list[str] = Field(
        default_factory=list,
        description="Paths already changed when the session started: not its work unless it changes them.",
    )


class StatusResult(BaseModel):
    frozen: str | None = Field(description="The freeze reason while `exo freeze` is in force.")
    current: SessionView | None = Field(description="The session open in this worktree.")
    sessions: list[SessionView] = Field(description="Every open session of the clone, all worktrees.")
    stale: list[str] = Field(description="Open sessions whose lease expired or was lost (recoverable).")
    git_settings: list[str] = Field(
        default_factory=list,
        description="Settings in this repository's git config (and files) that run code or redirect git.",
    )
    revoked: list[str] = Field(
        default_factory=list, description="Actors over their error budget, and why (a human restores them)."
    )
    claims_store: str = Field(default="local", description="Where ticket claims live: `local`, or `remote NAME`.")
    claims: list[Claim] = Field(
        default_factory=list, description="Live claims on the remote store, from every machine (remote store only)."
    )
    claims_unreachable: str | None = Field(
        default=None,
        description="Why the remote store could not be read (sessions are then shown from this clone's copy).",
    )


class Claim(BaseModel):
    ticket_id: str = Field(description="The claimed ticket.")
    holder: str = Field(description="Who holds it.")
    epoch: int = Field(description="Its fencing epoch.")
    expires_at: datetime = Field(
        description="When it lapses unless renewed (UTC; each machine also judges by its own clock)."
    )


def view(root: Path, session: OpenSession, now: datetime | None = None, store: LeaseStore | None = None) -> SessionView:
    stored = inspect_lock(root, session.ticket_id, store=store or claims.lease_store(root))
    live = stored is not None and stored.lease_id == session.lease.lease_id and stored.live(ids.moment(now))
    lease = stored if stored is not None and stored.lease_id == session.lease.lease_id else session.lease
    return SessionView(
        sid=session.sid,
        ticket_id=session.ticket_id,
        actor=session.actor,
        worktree=session.worktree,
        task=session.task,
        base_commit=session.base_commit,
        started_at=session.started_at,
        epoch=lease.epoch,
        expires_at=lease.expires_at,
        live=live,
        scope_allow=session.allow_globs,
        scope_deny=session.deny_globs,
    )


def start(
    root: Path, actor: str, *, ticket_id: str | None = None, task: str = "", now: datetime | None = None
) -> StartResult:
    """Open a session in this worktree and return its bootstrap prompt.

    Uses the lease `exo next` took, or acquires one (taking over an expired lease, whose dead
    session is sealed as abandoned). Raises GovernanceError (FROZEN, SESSION_OPEN, TICKET_NOT_FOUND,
    TICKET_BLOCKED, NO_TICKET, GOVERNANCE_STALE, ...), LockError(LOCK_HELD), InputError.
    """
    at = ids.moment(now)
    ids.actor(actor)
    if ticket_id is not None:
        ids.ticket_id(ticket_id)
    config = load_config(root)
    store = claims.lease_store(root, config)
    claims.refresh_freeze(root, store)
    gov = load_governance(root)
    if gov.frozen is not None:
        raise GovernanceError(f"the repository is frozen: {gov.frozen}", code="FROZEN")
    standing.require_standing(root, actor)
    base = git.head(root)
    abandoned: list[str] = []
    recovered: list[str] = []  # the dead sessions' records, written here for this session's closeout
    with file_lock(root, State(root).pointer):
        mine = runtime.current(root)
        if mine is not None:
            if view(root, mine, at).live:
                raise GovernanceError(
                    f"session {mine.sid} ({mine.actor} on {mine.ticket_id}) is open in this worktree",
                    code="SESSION_OPEN",
                )
            recovered += abandon(root, mine, "its lease lapsed and a new session started in its worktree", at)
            abandoned.append(mine.sid)
        ticket = tickets.read(root, ticket_id or _claimed(root, actor, at, store))
        _startable(root, ticket)
        pinned = _pinned(root, ticket, gov, config)  # before the lease: a lock it cannot read takes none
        lease, fresh = _lease_for(root, ticket, actor, config, at, store)
        for dead in runtime.all_open(root):
            if dead.ticket_id == ticket.id and dead.lease.lease_id != lease.lease_id:
                recovered += abandon(root, dead, f"ticket {ticket.id} was taken over by {actor}", at)
                abandoned.append(dead.sid)
        session = _open(root, ticket, actor, task, base, lease, gov.lock_sha256, pinned, at)
        session.exo_writes = {rel: hashlib.sha256((root / rel).read_bytes()).hexdigest() for rel in recovered}
        try:
            runtime.bind(root, session)
            sandbox.claude_enter(root, session)
        except BaseException:  # no session after all: nothing bound, and no lease this start took
            runtime.close(root, session)
            if fresh:
                release_lock(root, lease, store=store)
            raise
        append_audit(
            root,
            session.sid,
            "session.started",
            {
                "ticket_id": ticket.id,
                "actor": actor,
                "task": task,
                "base_commit": base,
                "lease_epoch": lease.epoch,
                "fence_sha256": session.fence_sha256,
                "ticket_sha256": session.ticket_sha256,
                "governance_sha256": gov.lock_sha256,
                "abandoned": abandoned,
                "found": sorted(session.found),
            },
            now=at,
        )
    prompt = _render(root, session, ticket, gov, config, at)
    return StartResult(
        session=view(root, session, at, store), bootstrap=prompt, abandoned=abandoned, found=sorted(session.found)
    )


def bootstrap_of(root: Path, *, now: datetime | None = None) -> str | None:
    """The bootstrap prompt of this worktree's open session (again, e.g. after a compaction), or None."""
    session = runtime.current(root)
    if session is None:
        return None
    ticket = tickets.read(root, session.ticket_id)
    return _render(root, session, ticket, load_governance(root), load_config(root), ids.moment(now))


def _render(
    root: Path, session: OpenSession, ticket: tickets.Ticket, gov: Governance, config: Config, at: datetime
) -> str:
    siblings = _siblings(root, session, at)
    history = records.load_all(root)
    return bootstrap.render(
        session, ticket, gov, session.budget, session.checks, siblings, history, config.bootstrap_max_chars
    )


def status(root: Path, *, now: datetime | None = None) -> StatusResult:
    """The freeze, this worktree's session and every open session (with stale ones flagged)."""
    at = ids.moment(now)
    config = load_config(root)
    store: LeaseStore = claims.lease_store(root, config)
    listed: list[Claim] = []
    unreachable = None
    if isinstance(store, claims.RemoteLeaseStore):
        try:
            claims.refresh_freeze(root, store)
            leases = [lease for lease in store.all() if lease.live(at)]
            listed = [Claim(**lease.model_dump(include=set(Claim.model_fields))) for lease in leases]
        except StateError as exc:
            if exc.code != "REMOTE_UNREACHABLE":
                raise
            unreachable, store = exc.message, LocalLeaseStore(root)  # the copy the broker keeps
    views = [view(root, s, at, store) for s in runtime.all_open(root)]
    mine = runtime.current(root)
    return StatusResult(
        claims_store="local" if config.claims.store == "local" else f"remote {config.claims.remote}",
        claims=listed,
        claims_unreachable=unreachable,
        frozen=freeze_state(root).reason,
        current=next((v for v in views if mine and v.sid == mine.sid), None),
        sessions=views,
        stale=[v.sid for v in views if not v.live],
        git_settings=drift.dangerous_settings(root),
        revoked=[
            f"{a}: {e.get('why', '')}" for a, e in sorted(standing.standings(root).items()) if e.get("revoked_at")
        ],
    )


def heartbeat(root: Path, actor: str, *, now: datetime | None = None) -> SessionView:
    """Renew this worktree's session lease (and, with claims on a remote, bring its freeze here, so
    a running session's hooks deny once a human froze another machine). Raises LockError(LOCK_LOST)
    once it expired or was taken."""
    at = ids.moment(now)
    session = own_session(root, actor)
    store = claims.lease_store(root)
    renewed = renew_lock(root, session.lease, now=at, store=store)
    claims.refresh_freeze(root, store)
    session.lease = renewed
    runtime.save(root, session)
    append_audit(
        root,
        session.sid,
        "session.heartbeat",
        {"epoch": renewed.epoch, "expires_at": renewed.expires_at.isoformat()},
        now=at,
    )
    return view(root, session, at, store)


def abandon(root: Path, session: OpenSession, reason: str, at: datetime) -> list[str]:
    """Close a dead session as abandoned: seal its audit stream, write its record (with what it had
    changed by then, measured in its own worktree) and memento into this worktree, and forget it.

    Returns the repo-relative files written here, for the closeout of the session that recovers it.
    """
    from .closeout import abandoned_record

    try:
        append_audit(root, session.sid, "session.abandoned", {"reason": reason, "epoch": session.lease.epoch}, now=at)
        seq, head = seal_audit(root, session.sid, now=at)
        record = abandoned_record(root, session, reason, Anchor(stream=session.sid, seq=seq, h=head), at)
        written = [*records.write(root, record, keys.broker()), f"{AUDIT_DIR}/{session.sid}.jsonl"]
    except ExoError:
        written = []  # its stream is damaged: audit verify reports it; the lease is what matters
    with contextlib.suppress(ExoError, OSError):  # the dead session's worktree may be gone
        sandbox.claude_leave(Path(session.worktree), session)
    runtime.close(root, session)
    return written


# --- internals


def own_session(root: Path, actor: str) -> OpenSession:
    session = runtime.current(root)
    if session is None:
        raise GovernanceError("no session is open in this worktree", code="SESSION_NOT_FOUND")
    if actor != session.actor:
        try:
            authority.require_human(actor, "other_session")
        except GovernanceError:
            raise GovernanceError(
                f"session {session.sid} belongs to {session.actor}, not {actor}", code="NOT_ALLOWED"
            ) from None
    return session


def _claimed(root: Path, actor: str, at: datetime, store: LocalLeaseStore | claims.RemoteLeaseStore) -> str:
    """The ticket `actor` claimed with `exo next` (a live lease no open session uses)."""
    used = {s.lease.lease_id for s in runtime.all_open(root)}
    held = sorted(
        t
        for t, lease in dispatch.live_leases(root, at, store).items()
        if lease.holder == actor and lease.lease_id not in used
    )
    if len(held) == 1:
        return held[0]
    if not held:
        raise GovernanceError(
            f"{actor} holds no claimed ticket", code="NO_TICKET", hint="run `exo next`, or pass --ticket-id"
        )
    raise InputError(f"{actor} holds leases on {', '.join(held)}", code="INVALID_ARGUMENT", hint="pass --ticket-id")


def _startable(root: Path, ticket: tickets.Ticket) -> None:
    if ticket.status in ("done", "cancelled"):
        raise GovernanceError(f"ticket {ticket.id} is {ticket.status}", code="TICKET_BLOCKED")
    if ticket.status == "proposed":
        raise GovernanceError(
            f"ticket {ticket.id} is proposed: it waits for a human's approval",
            code="TICKET_BLOCKED",
            hint=f"a human approves it (exo ticket approve {ticket.id}), or pick another ticket (exo next)",
        )
    everything = tickets.load_all(root)
    waiting = [d for d in ticket.depends_on if d not in everything or everything[d].status != "done"]
    if waiting:
        raise GovernanceError(f"ticket {ticket.id} waits on {', '.join(waiting)}", code="TICKET_BLOCKED")


def _lease_for(
    root: Path, ticket: tickets.Ticket, actor: str, config: Config, at: datetime, store: LeaseStore
) -> tuple[Lease, bool]:
    """The lease to work under, and whether it was taken now (else it is the one `exo next` took)."""
    stored = inspect_lock(root, ticket.id, store=store)
    if stored is not None and stored.live(at):
        if stored.holder != actor:
            until = stored.expires_at.isoformat(timespec="seconds")
            raise LockError(f"ticket {ticket.id} is leased to {stored.holder} until {until}", code="LOCK_HELD")
        busy = [s for s in runtime.all_open(root) if s.lease.lease_id == stored.lease_id]
        if busy:
            raise GovernanceError(
                f"ticket {ticket.id} already has open session {busy[0].sid} in {busy[0].worktree}",
                code="SESSION_OPEN",
            )
        return stored, False
    return acquire_lock(root, ticket.id, actor, config.lease_ttl_seconds, now=at, store=store), True


def _pinned(root: Path, ticket: tickets.Ticket, gov: Governance, config: Config) -> tuple[list[str], int, Budget]:
    """Checks and budget, fixed at start so that editing the ticket mid-session changes nothing."""
    commands = list(ticket.checks)
    required = rules.of(gov, RequireChecksRule)
    for rule in required:
        commands += rule.commands
    commands += config.checks
    ruled = rules.first(gov, BudgetRule) or BudgetRule.model_construct()  # no rule: no limits of its own
    budget = Budget(
        max_files=ticket.budget.max_files or ruled.max_files or config.budget.max_files,
        max_lines=ticket.budget.max_lines or ruled.max_lines or config.budget.max_lines,
    )
    timeouts = [rule.timeout_seconds for rule in required]
    return list(dict.fromkeys(commands)), max([config.check_timeout_seconds, *timeouts]), budget


def _open(
    root: Path,
    ticket: tickets.Ticket,
    actor: str,
    task: str,
    base: str,
    lease: Lease,
    governance_sha256: str,
    pinned: tuple[list[str], int, Budget],
    at: datetime,
) -> OpenSession:
    sid = runtime.new_sid(at)
    fence = Fence.from_globs(ticket.scope.allow, ticket.scope.deny, exo_paths=records.own_paths(sid)).to_dict()
    commands, timeout, budget = pinned
    state = worktree.state(root)
    sandbox.prepare(root)
    return OpenSession(
        sid=sid,
        ticket_id=ticket.id,
        actor=actor,
        worktree=str(root),
        task=task,
        base_commit=base,
        started_at=at,
        lease=lease,
        fence=fence,
        fence_sha256=runtime.fence_sha256(fence),
        ticket_sha256=hashlib.sha256(tickets.path_of(root, ticket.id).read_bytes()).hexdigest(),
        governance_sha256=governance_sha256,
        hooks=drift.hooks_fingerprint(root),
        checks=commands,
        check_timeout_seconds=timeout,
        budget=budget,
        found={path: state.pair(path) for path in state.paths()},
    )


def _siblings(root: Path, session: OpenSession, at: datetime) -> list[bootstrap.Sibling]:
    others = [s for s in runtime.all_open(root) if s.sid != session.sid]
    if not others:
        return []
    mine = runtime.fence_of(session)
    samples = git.paths_z(root, "ls-files", "-z")
    return [
        bootstrap.Sibling(
            sid=other.sid,
            actor=other.actor,
            ticket_id=other.ticket_id,
            scope=other.allow_globs,
            overlap=dispatch.overlap(mine, Fence.from_dict(other.fence), samples),
            live=view(root, other, at).live,
        )
        for other in others
    ]
