"""Ticket locks: leases with a TTL and a fencing epoch, behind a compare-and-swap store interface.

Every grant (first acquire or takeover of an expired lease) increments the epoch; renew and release
name the epoch and lease id they hold, so a stale holder is refused with LOCK_LOST. The local store
keeps one JSON file per ticket under the git common dir (shared by all worktrees of a clone); a git
remote store implements the same two methods with ref compare-and-swap.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import ids
from ._errors import InputError, LockError, StateError
from .fs import atomic_write, file_lock, read_file, remove_leftovers
from .layout import LOCAL_STREAM
from .state import State

MAX_TTL_S = 7 * 24 * 3600
_CAS_ATTEMPTS = 64


class Lease(BaseModel):
    """One ticket's lease as the store holds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str = Field(description="The leased ticket.")
    holder: str = Field(description="Who holds it (an actor or session id).")
    epoch: int = Field(ge=1, description="Fencing token: +1 on every grant, never reused.")
    lease_id: str = Field(description="Random id of this grant; renew and release must name it.")
    state: Literal["held", "released"] = Field(description="`released` once the holder let it go.")
    acquired_at: datetime = Field(description="When this grant was made (UTC).")
    expires_at: datetime = Field(description="When it lapses unless renewed (UTC).")
    ttl_seconds: int = Field(ge=1, le=MAX_TTL_S, description="Lease length used by renewals.")
    renewals: int = Field(default=0, ge=0, description="How many times this grant was renewed.")

    def live(self, now: datetime | None = None) -> bool:
        """Held and not yet expired at `now` (default: the current time)."""
        return self.state == "held" and self.expires_at > ids.moment(now)


class LeaseStore(Protocol):
    """Where leases live. `swap` is a compare-and-swap: it writes `new` only if the stored lease
    still equals `expected` (None: no lease stored yet) and says whether it did."""

    def read(self, ticket_id: str) -> Lease | None: ...

    def swap(self, ticket_id: str, expected: Lease | None, new: Lease) -> bool: ...


class LocalLeaseStore:
    """Leases as `<git common dir>/exo/leases/<ticket>.json`, swapped under a file lock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.state = State(self.root)

    def path(self, ticket_id: str) -> Path:
        return Path(self.state.lease(ticket_id))

    def read(self, ticket_id: str) -> Lease | None:
        path = self.path(ticket_id)
        try:
            raw = read_file(path)
        except StateError as exc:
            raise LockError(f"lease file {path} is unreadable: {exc.message}", code="LOCK_CORRUPT") from exc
        if raw is None:
            return None
        try:
            return Lease.model_validate_json(raw)
        except ValidationError as exc:
            raise LockError(f"lease file {path} is corrupt", code="LOCK_CORRUPT") from exc

    def all(self) -> list[Lease]:
        """Every stored lease (one directory listing; files not named for a ticket are ignored)."""
        directory = self.state.leases
        names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
        stems = [name.removesuffix(".json") for name in names if name.endswith(".json")]
        return [lease for stem in stems if ids.ID_RE.fullmatch(stem) and (lease := self.read(stem)) is not None]

    def swap(self, ticket_id: str, expected: Lease | None, new: Lease) -> bool:
        path = self.path(ticket_id)
        with file_lock(self.root, path):
            if self.read(ticket_id) != expected:
                return False
            removed = remove_leftovers(path)
            atomic_write(path, new.model_dump_json(indent=2).encode() + b"\n")
        if removed:
            _audit(self.root, "lock.repaired", {"ticket_id": ticket_id, "removed_temp_files": removed})
        return True


def _ttl(ttl: object) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL_S:
        raise InputError(f"ttl must be whole seconds between 1 and {MAX_TTL_S}, got {ttl!r}", code="INVALID_ARGUMENT")
    return ttl


def acquire_lock(
    root: str | os.PathLike[str],
    ticket_id: str,
    holder: str,
    ttl: int,
    *,
    now: datetime | None = None,
    store: LeaseStore | None = None,
) -> Lease:
    """Grant `holder` a lease of `ttl` seconds on `ticket_id`; the epoch goes up by one.

    An expired lease is taken over, and the takeover is recorded in the clone's `local` audit stream.
    Raises LockError(LOCK_HELD) while another live lease exists (including the caller's own),
    InputError(INVALID_ID / INVALID_ARGUMENT) for bad input, LockError(LOCK_CORRUPT / LOCK_BUSY).
    """
    ids.ticket_id(ticket_id)
    ids.holder(holder)
    seconds = _ttl(ttl)

    def grant(current: Lease | None, at: datetime) -> Lease:
        if current is not None and current.live(at):
            raise LockError(
                f"ticket {ticket_id} is leased to {current.holder} until "
                f"{current.expires_at.isoformat(timespec='seconds')} (epoch {current.epoch})",
                code="LOCK_HELD",
            )
        return Lease(
            ticket_id=ticket_id,
            holder=holder,
            epoch=(current.epoch if current else 0) + 1,
            lease_id=secrets.token_hex(8),
            state="held",
            acquired_at=at,
            expires_at=at + timedelta(seconds=seconds),
            ttl_seconds=seconds,
        )

    previous, lease = _update(_store(root, store), ticket_id, grant, now)
    if previous is not None and previous.state == "held":
        _audit_takeover(root, previous, lease)
    return lease


def renew_lock(
    root: str | os.PathLike[str],
    lease: Lease,
    *,
    now: datetime | None = None,
    store: LeaseStore | None = None,
) -> Lease:
    """Extend `lease` by its TTL from now. Raises LockError(LOCK_LOST) if it expired, was released
    or was granted to someone else (a newer epoch) in the meantime."""

    def extend(current: Lease | None, at: datetime) -> Lease:
        held = _same_grant(current, lease)
        if held.state != "held" or held.expires_at <= at:
            raise LockError(f"lease on {lease.ticket_id} (epoch {lease.epoch}) has expired", code="LOCK_LOST")
        return held.model_copy(
            update={"expires_at": at + timedelta(seconds=held.ttl_seconds), "renewals": held.renewals + 1}
        )

    return _update(_store(root, store), lease.ticket_id, extend, now)[1]


def release_lock(
    root: str | os.PathLike[str],
    lease: Lease,
    *,
    store: LeaseStore | None = None,
) -> Lease:
    """Let `lease` go (idempotent for its holder). Raises LockError(LOCK_LOST) if the ticket was
    granted to someone else since."""

    def let_go(current: Lease | None, _at: datetime) -> Lease:
        held = _same_grant(current, lease)
        return held if held.state == "released" else held.model_copy(update={"state": "released"})

    return _update(_store(root, store), lease.ticket_id, let_go, None)[1]


def inspect_lock(root: str | os.PathLike[str], ticket_id: str, *, store: LeaseStore | None = None) -> Lease | None:
    """The stored lease of `ticket_id` (live, expired or released), or None if it was never leased."""
    ids.ticket_id(ticket_id)
    return _store(root, store).read(ticket_id)


def _store(root: str | os.PathLike[str], store: LeaseStore | None) -> LeaseStore:
    return store if store is not None else LocalLeaseStore(root)


def _update(
    leases: LeaseStore,
    ticket_id: str,
    change: Callable[[Lease | None, datetime], Lease],
    now: datetime | None,
) -> tuple[Lease | None, Lease]:
    """Compare-and-swap loop: apply `change` to the stored lease until the swap wins.

    Returns (previous, stored). `change` raises to refuse; returning the lease unchanged writes
    nothing. Raises LockError(LOCK_BUSY) if other writers keep winning.
    """
    for _ in range(_CAS_ATTEMPTS):
        current = leases.read(ticket_id)
        new = change(current, ids.moment(now))
        if new == current or leases.swap(ticket_id, current, new):
            return current, new
    raise LockError(f"ticket {ticket_id}: too much contention on the lease", code="LOCK_BUSY")


def _same_grant(current: Lease | None, lease: Lease) -> Lease:
    """`current` if it is still the grant `lease` names; raise LockError(LOCK_LOST) otherwise."""
    if current is None or current.epoch != lease.epoch or current.lease_id != lease.lease_id:
        newer = f"; now epoch {current.epoch} held by {current.holder}" if current else ""
        raise LockError(f"lease on {lease.ticket_id} (epoch {lease.epoch}) was lost{newer}", code="LOCK_LOST")
    return current


def _audit(root: str | os.PathLike[str], event: str, data: dict[str, object]) -> None:
    from ._audit import append_audit  # lazily: leases must not pay for the audit module unless needed

    append_audit(root, LOCAL_STREAM, event, data)


def _audit_takeover(root: str | os.PathLike[str], old: Lease, new: Lease) -> None:
    _audit(
        root,
        "lock.takeover",
        {
            "ticket_id": new.ticket_id,
            "holder": new.holder,
            "epoch": new.epoch,
            "previous_holder": old.holder,
            "previous_epoch": old.epoch,
            "previous_expired_at": old.expires_at.isoformat(),
        },
    )
