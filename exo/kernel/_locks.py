"""Ticket locks: leases with a TTL and a fencing epoch, behind a compare-and-swap store interface.

Every grant (first acquire or takeover of an expired lease) increments the epoch; renew and release
name the epoch and lease id they hold, so a stale holder is refused with LOCK_LOST. The local store
keeps one JSON file per ticket under the git common dir (shared by all worktrees of a clone); a git
remote store implements the same two methods with ref compare-and-swap.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import ids
from ._errors import InputError, LockError
from .fs import atomic_write, file_lock, remove_leftovers, state_dir
from .layout import REPO_STREAM

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
        """Held and not yet expired at `now`."""
        return self.state == "held" and self.expires_at > (now or _now())


class LeaseStore(Protocol):
    """Where leases live. `swap` is a compare-and-swap: it writes `new` only if the stored lease
    still equals `expected` (None: no lease stored yet) and says whether it did."""

    def read(self, ticket_id: str) -> Lease | None: ...

    def swap(self, ticket_id: str, expected: Lease | None, new: Lease) -> bool: ...


class LocalLeaseStore:
    """Leases as `<git common dir>/exo/leases/<ticket>.json`, swapped under a file lock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.directory = state_dir(self.root) / "leases"

    def path(self, ticket_id: str) -> Path:
        return self.directory / f"{ids.ticket_id(ticket_id)}.json"

    def read(self, ticket_id: str) -> Lease | None:
        path = self.path(ticket_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return Lease.model_validate_json(raw)
        except ValidationError as exc:
            raise LockError(f"lease file {path} is corrupt", code="LOCK_CORRUPT") from exc

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


def _now() -> datetime:
    return datetime.now(UTC)


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

    An expired lease is taken over, and the takeover is recorded in the `repo` audit stream.
    Raises LockError(LOCK_HELD) while another live lease exists (including the caller's own),
    InputError(INVALID_ID / INVALID_ARGUMENT) for bad input, LockError(LOCK_CORRUPT / LOCK_BUSY).
    """
    ids.ticket_id(ticket_id)
    ids.holder(holder)
    seconds = _ttl(ttl)
    leases = store if store is not None else LocalLeaseStore(root)
    for _ in range(_CAS_ATTEMPTS):
        at = now or _now()
        current = leases.read(ticket_id)
        if current is not None and current.live(at):
            raise LockError(
                f"ticket {ticket_id} is leased to {current.holder} until "
                f"{current.expires_at.isoformat(timespec='seconds')} (epoch {current.epoch})",
                code="LOCK_HELD",
            )
        lease = Lease(
            ticket_id=ticket_id,
            holder=holder,
            epoch=(current.epoch if current else 0) + 1,
            lease_id=secrets.token_hex(8),
            state="held",
            acquired_at=at,
            expires_at=at + timedelta(seconds=seconds),
            ttl_seconds=seconds,
        )
        if leases.swap(ticket_id, current, lease):
            if current is not None and current.state == "held":
                _audit_takeover(root, current, lease)
            return lease
    raise LockError(f"ticket {ticket_id}: too much contention on the lease", code="LOCK_BUSY")


def renew_lock(
    root: str | os.PathLike[str],
    lease: Lease,
    *,
    now: datetime | None = None,
    store: LeaseStore | None = None,
) -> Lease:
    """Extend `lease` by its TTL from now. Raises LockError(LOCK_LOST) if it expired, was released
    or was granted to someone else (a newer epoch) in the meantime."""
    leases = store if store is not None else LocalLeaseStore(root)
    for _ in range(_CAS_ATTEMPTS):
        at = now or _now()
        current = _current(leases, lease)
        if current.state != "held" or current.expires_at <= at:
            raise LockError(f"lease on {lease.ticket_id} (epoch {lease.epoch}) has expired", code="LOCK_LOST")
        renewed = current.model_copy(
            update={"expires_at": at + timedelta(seconds=current.ttl_seconds), "renewals": current.renewals + 1}
        )
        if leases.swap(lease.ticket_id, current, renewed):
            return renewed
    raise LockError(f"ticket {lease.ticket_id}: too much contention on the lease", code="LOCK_BUSY")


def release_lock(
    root: str | os.PathLike[str],
    lease: Lease,
    *,
    store: LeaseStore | None = None,
) -> Lease:
    """Let `lease` go (idempotent for its holder). Raises LockError(LOCK_LOST) if the ticket was
    granted to someone else since."""
    leases = store if store is not None else LocalLeaseStore(root)
    for _ in range(_CAS_ATTEMPTS):
        current = _current(leases, lease)
        if current.state == "released":
            return current
        released = current.model_copy(update={"state": "released"})
        if leases.swap(lease.ticket_id, current, released):
            return released
    raise LockError(f"ticket {lease.ticket_id}: too much contention on the lease", code="LOCK_BUSY")


def inspect_lock(root: str | os.PathLike[str], ticket_id: str, *, store: LeaseStore | None = None) -> Lease | None:
    """The stored lease of `ticket_id` (live, expired or released), or None if it was never leased."""
    ids.ticket_id(ticket_id)
    return (store if store is not None else LocalLeaseStore(root)).read(ticket_id)


def _current(leases: LeaseStore, lease: Lease) -> Lease:
    current = leases.read(lease.ticket_id)
    if current is None or current.epoch != lease.epoch or current.lease_id != lease.lease_id:
        newer = f"; now epoch {current.epoch} held by {current.holder}" if current else ""
        raise LockError(f"lease on {lease.ticket_id} (epoch {lease.epoch}) was lost{newer}", code="LOCK_LOST")
    return current


def _audit(root: str | os.PathLike[str], event: str, data: dict[str, object]) -> None:
    from ._audit import append_audit  # lazily: leases must not pay for the audit module unless needed

    append_audit(root, REPO_STREAM, event, data)


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
