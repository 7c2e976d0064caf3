"""The kill switch: `exo freeze` stops new sessions and makes every fence check deny until `exo unfreeze`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from exo.kernel import InputError, StateError, ids
from exo.kernel.state import State, remove, write_doc

from . import authority, claims, events


class FreezeState(BaseModel):
    frozen: bool = Field(description="Whether a freeze is in force.")
    reason: str | None = Field(default=None, description="Why it was frozen.")
    actor: str | None = Field(default=None, description="Who froze it.")
    since: str | None = Field(default=None, description="When (UTC, ISO 8601).")


def state(root: Path) -> FreezeState:
    """The freeze in force, if any (a garbled freeze file still counts as frozen)."""
    doc = State(root).read_freeze()
    return FreezeState(frozen=False) if doc is None else FreezeState(frozen=True, **doc)


def freeze(root: Path, actor: str, reason: str, *, now: datetime | None = None) -> FreezeState:
    """Freeze the repository (anyone may pull the kill switch); recorded as a `repo.frozen` event."""
    if not reason.strip():
        raise InputError("a freeze needs a reason", code="INVALID_ARGUMENT", hint='exo freeze --reason "why"')
    doc = {"reason": reason.strip(), "actor": ids.actor(actor), "since": ids.moment(now).isoformat()}
    write_doc(State(root).frozen, doc)  # this machine first: a kill switch must not wait for the network
    events.record(root, "repo.frozen", doc, now=now)
    try:
        if claims.publish_freeze(root, doc):
            write_doc(State(root).frozen, {**doc, "remote": True})  # the remote's now: its lifting reaches here
    except StateError as exc:
        if exc.code != "REMOTE_UNREACHABLE":
            raise
        raise StateError(
            f"frozen on this machine only: {exc.message}",
            code="REMOTE_UNREACHABLE",
            hint="run `exo freeze` again once the remote answers, so that every machine stops",
        ) from exc
    return state(root)


def unfreeze(root: Path, actor: str, *, now: datetime | None = None) -> FreezeState:
    """Lift a freeze: a human act (an agent must not switch its own kill switch off), signed where
    the constitution asks. Raises NOT_ALLOWED, SIGNING_KEY_MISSING, SIGNING_FAILED."""
    signer = authority.human_act(root, actor, "unfreeze")
    claims.publish_freeze(root, None, actor=actor, signer=signer)  # the remote first: while it stays, so do all
    before = state(root)
    if before.frozen:
        data = {"actor": actor, "reason": before.reason or ""}
        events.record(root, "repo.unfrozen", data, now=now, signer=signer)
    remove(State(root).frozen)
    return state(root)
