"""`exo next`: pick the next ticket and claim it in one atomic step, and scope-overlap detection.

Order among `todo` tickets whose dependencies are all `done` and that hold no live lease: higher
priority first (1 before 5), then tickets that unblock more others, then older, then by id. A
ticket whose scope overlaps the scope of a live lease (an active or just-claimed session) is
skipped, and the result says which and why. Claiming is `acquire_lock`: its compare-and-swap makes
pick-and-claim atomic, so agents calling `next` at once get different tickets.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from exo.kernel import Fence, GovernanceError, Lease, LocalLeaseStore, LockError, acquire_lock, ids, load_governance

from . import claims, git, standing, tickets
from .claims import RemoteLeaseStore
from .config import load_config
from .tickets import Ticket

_WILDCARDS = "*?["


class Skip(BaseModel):
    ticket_id: str
    reason: str


class NextResult(BaseModel):
    """The claimed ticket and its lease, and what was passed over."""

    ticket: Ticket
    lease: Lease
    skipped: list[Skip] = Field(description="Candidates passed over, with the reason.")


def live_leases(root: Path, now: datetime, store: LocalLeaseStore | RemoteLeaseStore | None = None) -> dict[str, Lease]:
    """Live leases by ticket id (one listing, not one read per ticket)."""
    leases = (store or claims.lease_store(root)).all()
    return {lease.ticket_id: lease for lease in leases if lease.live(now)}


def overlap(a: Fence, b: Fence, samples: list[str]) -> str | None:
    """A path both fences allow, or None. Checked over `samples` (tracked files) plus a sample path
    under each glob's literal prefix, so two scopes over a directory with no files yet still meet."""
    candidates = list(samples)
    for glob in (*a.allow_globs, *b.allow_globs):
        prefix = glob.removeprefix("!")
        for mark in _WILDCARDS:
            prefix = prefix.split(mark, 1)[0]
        candidates.append(prefix + "x" if not prefix or prefix.endswith("/") else prefix)
    return next((path for path in candidates if a.covers(path) and b.covers(path)), None)


def scope_fence(ticket: Ticket) -> Fence:
    return Fence.from_globs(ticket.scope.allow, ticket.scope.deny)


def next_ticket(root: Path, actor: str, *, now: datetime | None = None) -> NextResult:
    """Claim the first eligible ticket for `actor`.

    Raises GovernanceError (FROZEN, NO_TICKET listing what was skipped, GOVERNANCE_STALE, ...).
    """
    at = ids.moment(now)
    config = load_config(root)
    store = claims.lease_store(root, config)
    claims.refresh_freeze(root, store)
    gov = load_governance(root)
    if gov.frozen is not None:
        raise GovernanceError(f"the repository is frozen: {gov.frozen}", code="FROZEN")
    standing.require_standing(root, actor)
    everything = tickets.load_all(root)
    leases = live_leases(root, at, store)
    unblocks: dict[str, int] = {}
    for ticket in everything.values():
        if ticket.status not in ("done", "cancelled"):
            for dep in ticket.depends_on:
                unblocks[dep] = unblocks.get(dep, 0) + 1
    candidates = [
        t
        for t in everything.values()
        if t.status == "todo"
        and t.id not in leases
        and all(everything.get(d) is not None and everything[d].status == "done" for d in t.depends_on)
    ]
    candidates.sort(key=lambda t: (t.priority, -unblocks.get(t.id, 0), t.created_at, t.id))
    active = [(tid, scope_fence(everything[tid])) for tid in sorted(leases) if tid in everything]
    samples = git.paths_z(root, "ls-files", "-z") if active else []
    skipped: list[Skip] = []
    for ticket in candidates:
        fence = scope_fence(ticket) if active else None
        clash = next(((tid, p) for tid, other in active if fence and (p := overlap(fence, other, samples))), None)
        if clash:
            skipped.append(
                Skip(ticket_id=ticket.id, reason=f"scope overlaps active ticket {clash[0]} (e.g. {clash[1]})")
            )
            continue
        try:
            lease = acquire_lock(root, ticket.id, actor, config.lease_ttl_seconds, now=at, store=store)
        except LockError as exc:
            if exc.code != "LOCK_HELD":
                raise
            skipped.append(Skip(ticket_id=ticket.id, reason="claimed by another agent a moment ago"))
            continue
        return NextResult(ticket=ticket, lease=lease, skipped=skipped)
    why = "; ".join(f"{s.ticket_id}: {s.reason}" for s in skipped[:10])
    raise GovernanceError(
        "no ticket is available" + (f" (skipped {why})" if why else ": no todo ticket with its dependencies done"),
        code="NO_TICKET",
    )
