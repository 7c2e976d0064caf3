"""Open sessions as runtime state: never committed, shared by every worktree of a clone.

Each open session's file (lease, base commit, the hash-pinned fence snapshot) and the pointer
naming the session open in a worktree live where `exo.kernel.state` says; hooks read these two
files, through the same layer, to find the fence they enforce. This module types them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exo.kernel import Fence, Lease, StateError
from exo.kernel.canon import canonical, sha256_hex
from exo.kernel.fs import read_file
from exo.kernel.state import State, corrupt, read_doc, remove, write_doc

from .history import Entry


class Budget(BaseModel):
    max_files: int = Field(description="Files the session may change.")
    max_lines: int = Field(description="Lines it may add plus remove.")


class OpenSession(BaseModel):
    """A session between session-start and finish/handoff/abandonment."""

    model_config = ConfigDict(extra="forbid")

    sid: str = Field(description="Session id: time-sortable, 80 random bits.")
    ticket_id: str = Field(description="The ticket the session works on.")
    actor: str = Field(description="Who runs the session.")
    worktree: str = Field(description="Root of the worktree the session is bound to.")
    task: str = Field(default="", description="What the agent said it will do.")
    base_commit: str = Field(description="HEAD when the session started; drift is measured from here.")
    started_at: datetime = Field(description="Start time (UTC).")
    lease: Lease = Field(description="The lease the session holds on its ticket.")
    fence: dict[str, Any] = Field(description="Compiled scope snapshot the session is fenced by.")
    fence_sha256: str = Field(description="sha256 of the canonical fence snapshot (pins it).")
    ticket_sha256: str = Field(description="sha256 of the ticket file at start.")
    governance_sha256: str = Field(description="Lock hash of the governance the session started under.")
    hooks: dict[str, str] = Field(description="Fingerprint of git hook files and core.hooksPath at start.")
    checks: list[str] = Field(description="Commands finish must pass, pinned at start (ticket, rules, config).")
    check_timeout_seconds: int = Field(description="Timeout per check.")
    budget: Budget = Field(description="Size limit, pinned at start (ticket, then constitution, then config).")
    exo_writes: dict[str, str] = Field(default_factory=dict, description="Files exo wrote in .exo/ meanwhile.")
    found: dict[str, tuple[Entry | None, Entry | None]] = Field(
        default_factory=dict,
        description="Paths that already differed from HEAD at start: (staged, on disk) git entries then.",
    )

    @property
    def allow_globs(self) -> list[str]:
        """The scope's allow globs as written in the ticket (the fence holds their compiled form)."""
        return list(self.fence.get("allow_globs", []))

    @property
    def deny_globs(self) -> list[str]:
        return list(self.fence.get("deny_globs", []))


def new_sid(now: datetime) -> str:
    """Time-sortable (UTC second) with 80 random bits."""
    return now.strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(10)


def fence_sha256(fence: dict[str, Any]) -> str:
    """The pin of a fence snapshot: sha256 of its canonical JSON (hooks recompute it to trust it)."""
    return sha256_hex(canonical(fence))


def save(root: Path, session: OpenSession) -> None:
    write_doc(State(root).session(session.sid), session.model_dump_json(indent=2).encode() + b"\n")


def bind(root: Path, session: OpenSession) -> None:
    """Save the session and make it this worktree's open session."""
    save(root, session)
    State(root).write_pointer(session.sid)


def load(root: Path, sid: str) -> OpenSession | None:
    """Open session `sid`, or None. Raises StateError(STATE_CORRUPT) when its file is damaged."""
    path = State(root).session(sid)
    doc = read_doc(path)
    if doc is None:
        return None
    try:
        return OpenSession.model_validate(doc)
    except ValidationError as exc:
        raise corrupt(path, exc.errors()[0]["msg"]) from exc


def current(root: Path) -> OpenSession | None:
    """The session open in this worktree, or None."""
    sid = State(root).read_pointer()
    return load(root, sid) if sid else None


def all_open(root: Path) -> list[OpenSession]:
    """Every open session of the clone (all worktrees), oldest first."""
    directory = State(root).sessions
    names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    found = []
    for name in names:
        if name.endswith(".json") and not name.startswith("."):
            session = load(root, name.removesuffix(".json"))
            if session is not None:
                found.append(session)
    return found


def close(root: Path, session: OpenSession) -> None:
    """Forget an open session: its runtime file and, if it still names it, its worktree's pointer."""
    remove(State(root).session(session.sid))
    try:
        worktree = State(session.worktree)
    except StateError:
        return  # the worktree is gone
    worktree.clear_pointer(session.sid)


def fence_of(session: OpenSession) -> Fence:
    """The session's fence, refusing a snapshot that no longer matches its pinned hash."""
    if fence_sha256(session.fence) != session.fence_sha256:
        raise StateError(f"the fence snapshot of session {session.sid} was modified", code="IO_ERROR")
    return Fence.from_dict(session.fence)


def note_exo_write(root: Path, rel: str, data: bytes) -> None:
    """Remember that exo wrote `rel` (inside `.exo/`) during this worktree's open session, so drift
    does not count it against the agent (only while the file still holds exactly these bytes)."""
    session = current(root)
    if session is not None:
        session.exo_writes[rel] = hashlib.sha256(data).hexdigest()
        save(root, session)


def current_writes(root: Path, session: OpenSession) -> list[str]:
    """The `.exo/` files exo wrote during `session` that still hold what it wrote."""
    fresh = load(root, session.sid) or session
    out = []
    for rel, digest in sorted(fresh.exo_writes.items()):
        data = read_file(root / rel)
        if data is not None and hashlib.sha256(data).hexdigest() == digest:
            out.append(rel)
    return out
