"""Tickets: `.exo/tickets/<id>.yaml`, validated on every read and write, listed through a parse cache."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from exo.kernel import ExoError, Fence, Governance, GovernanceError, InputError, StateError, ids, load_governance
from exo.kernel.fs import atomic_write, file_lock
from exo.kernel.safe import read_regular
from exo.kernel.state import State, read_doc, write_doc
from exo.kernel.yamldoc import YamlProblem, load

from . import approvals, authority, events, runtime

TICKETS = ".exo/tickets"
MAX_BYTES = 256 * 1024
Status = Literal["proposed", "todo", "active", "review", "done", "blocked", "cancelled"]
STATUSES: tuple[Status, ...] = ("proposed", "todo", "active", "review", "done", "blocked", "cancelled")
EMPTY = Governance(root="", source_sha256="", lock_sha256="", kernel_version="", rules=())
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: ids are read aloud and typed


def _globs(value: list[str]) -> list[str]:
    try:
        return ids.globs(value)  # string checks only: reads stay fast; create/update also compile
    except InputError as exc:
        raise ValueError(exc.message) from exc


# Constraints checked inside pydantic-core (not Python validators): listing 10,000 tickets
# validates each of them, and Python callbacks would dominate the time.
TicketId = Annotated[str, Field(pattern=f"^{ids.ID_RE.pattern}$")]
Command = Annotated[str, Field(pattern=r"\S", max_length=4096)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_Strict):
    allow: list[str] = Field(min_length=1, description="gitignore-style globs the session may write.")
    deny: list[str] = Field(default_factory=list, description="Globs excluded from `allow`.")

    _check_allow = field_validator("allow")(_globs)
    _check_deny = field_validator("deny")(_globs)


class TicketBudget(_Strict):
    max_files: int | None = Field(default=None, ge=1, description="Files the session may change.")
    max_lines: int | None = Field(default=None, ge=1, description="Lines it may add plus remove.")


class Ticket(_Strict):
    """One unit of work: what to do, which paths it may touch, its budget and checks."""

    version: Literal[1] = Field(default=1, description="Ticket format version.")
    id: str = Field(pattern=f"^{ids.ID_RE.pattern}$", description="Ticket id.")
    title: str = Field(min_length=1, max_length=200, description="One line saying what to do.")
    body: str = Field(default="", max_length=100_000, description="Details, acceptance criteria.")
    status: Status = Field(
        default="todo",
        description="proposed (waits for a human's approval), todo, active, review, done, blocked, cancelled.",
    )
    priority: int = Field(default=3, ge=1, le=5, description="1 highest ... 5 lowest.")
    depends_on: list[TicketId] = Field(default_factory=list, description="Tickets that must be done first.")
    scope: Scope = Field(description="Paths a session on this ticket may write.")
    budget: TicketBudget = Field(default_factory=TicketBudget, description="Size limit of a session.")
    checks: list[Command] = Field(default_factory=list, description="Commands session-finish must pass.")
    labels: list[str] = Field(default_factory=list, description="Free-form labels.")
    created_at: datetime = Field(description="When the ticket was created (UTC).")
    created_by: str = Field(pattern=f"^{ids.ACTOR_RE.pattern}$", description="Actor that created it.")


class TicketList(BaseModel):
    """Tickets in dispatch-independent order (priority, then age, then id)."""

    tickets: list[Ticket]


def path_of(root: Path, ticket_id: str) -> Path:
    return root / TICKETS / f"{ids.ticket_id(ticket_id)}.yaml"


def new_id() -> str:
    """A short random id (`t` + 7 characters, ~35 bits): tickets are created on many branches at once."""
    return "t" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(7))


def parse(raw: bytes, where: str) -> Ticket:
    """Validate a ticket file's bytes. Raises GovernanceError(TICKET_INVALID) naming the field and line."""

    def bad(message: str) -> GovernanceError:
        return GovernanceError(f"{where}: {message}", code="TICKET_INVALID")

    if len(raw) > MAX_BYTES:
        raise bad(f"larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        data, lines = load(text)
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    except YamlProblem as exc:
        raise bad(f"line {exc.line}: {exc}") from None
    if not isinstance(data, dict):
        raise bad("a ticket is a YAML mapping of fields")
    try:
        return Ticket.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"])
        line = lines.get(str(error["loc"][0]), 1) if error["loc"] else 1
        what = (
            "unknown field" if error["type"] == "extra_forbidden" else str(error["msg"]).removeprefix("Value error, ")
        )
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise bad(f"line {line}: {key}: {what}{more}") from None


def render(ticket: Ticket) -> bytes:
    """The canonical YAML of a ticket (field order as declared, timestamps as quoted ISO strings)."""
    doc = ticket.model_dump(mode="json")
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100).encode()


def read(root: Path, ticket_id: str) -> Ticket:
    """Load one ticket. Raises GovernanceError(TICKET_NOT_FOUND / TICKET_INVALID), InputError(INVALID_ID)."""
    raw = _ticket_bytes(path_of(root, ticket_id), f"{ticket_id}.yaml")
    if raw is None:
        raise GovernanceError(f"no ticket {ticket_id}", code="TICKET_NOT_FOUND")
    ticket = parse(raw, f"{TICKETS}/{ticket_id}.yaml")
    if ticket.id != ticket_id:
        raise GovernanceError(f"{TICKETS}/{ticket_id}.yaml holds ticket id {ticket.id!r}", code="TICKET_INVALID")
    return ticket


def load_all(root: Path) -> dict[str, Ticket]:
    """Every ticket by id. Files unchanged since the last call (same size and mtime) come from a
    parse cache under the git common dir, so listing 10,000 tickets does not parse 10,000 YAML files.

    Raises GovernanceError(TICKET_INVALID) for the first invalid file.
    """
    directory = root / TICKETS
    cache_path = State(root).cache(f"tickets-{_worktree_key(root)}")
    try:
        cache: dict[str, Any] = read_doc(cache_path) or {}
    except StateError:
        cache = {}  # a damaged cache is rebuilt
    fresh: dict[str, Any] = {}
    tickets: dict[str, Ticket] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        entries = []
    changed = False
    for entry in entries:
        if not entry.name.endswith(".yaml") or entry.name.startswith("."):
            continue
        stat = entry.stat()
        stamp = [stat.st_mtime_ns, stat.st_size]
        hit = cache.get(entry.name)
        ticket = _from_cache(hit, stamp)
        if ticket is not None:
            fresh[entry.name] = hit
        else:
            raw = _ticket_bytes(entry.path, entry.name)
            if raw is None:
                continue  # removed while listing
            ticket = parse(raw, f"{TICKETS}/{entry.name}")
            fresh[entry.name] = [stamp, ticket.model_dump(mode="json")]
            changed = True
        if f"{ticket.id}.yaml" != entry.name:
            raise GovernanceError(f"{TICKETS}/{entry.name} holds ticket id {ticket.id!r}", code="TICKET_INVALID")
        tickets[ticket.id] = ticket
    if changed or len(fresh) != len(cache):
        with contextlib.suppress(ExoError):  # the cache only saves time: a read-only state dir costs speed
            write_doc(cache_path, json.dumps(fresh, separators=(",", ":")).encode())
    return tickets


def _ticket_bytes(path: str | Path, name: str) -> bytes | None:
    """A ticket file's bytes (None if missing); one that is not a readable regular file (a FIFO, a
    directory, one over the size bound) is TICKET_INVALID."""
    try:
        return read_regular(path, MAX_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        where = f"{TICKETS}/{name}"
        raise GovernanceError(f"{where} cannot be read: {exc.strerror or exc}", code="TICKET_INVALID") from exc


def _from_cache(hit: Any, stamp: list[int]) -> Ticket | None:
    """The cached ticket if its file is unchanged (same mtime and size). Re-validating the cached
    dict is ~10x cheaper than parsing YAML; a damaged entry is simply parsed again."""
    if not isinstance(hit, list) or len(hit) != 2 or hit[0] != stamp:
        return None
    try:
        return Ticket.model_validate(hit[1])
    except ValidationError:
        return None


def list_tickets(root: Path, status: str | None = None) -> TicketList:
    """Tickets (optionally of one status), highest priority first, then oldest, then by id."""
    if status is not None and status not in STATUSES:
        raise InputError(f"unknown status {status!r}", code="INVALID_ARGUMENT", hint="one of " + ", ".join(STATUSES))
    tickets = [t for t in load_all(root).values() if status is None or t.status == status]
    tickets.sort(key=attrgetter("priority", "created_at", "id"))
    return TicketList(tickets=tickets)


def create(
    root: Path,
    actor: str,
    *,
    title: str,
    scope: list[str],
    deny: list[str] | None = None,
    ticket_id: str | None = None,
    priority: int = 3,
    depends_on: list[str] | None = None,
    max_files: int | None = None,
    max_lines: int | None = None,
    checks: list[str] | None = None,
    body: str = "",
    labels: list[str] | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Create and write a ticket — `proposed` where the approval rule makes `actor`'s tickets wait for
    a human. Raises InputError (INVALID_ID, INVALID_PATTERN, INVALID_ARGUMENT), GovernanceError
    (TICKET_EXISTS, TICKET_NOT_FOUND for a missing dependency, TICKET_INVALID)."""
    wanted = ids.ticket_id(ticket_id) if ticket_id is not None else new_id()
    ticket = _build(
        id=wanted,
        status="proposed" if approvals.proposes(_governance(root), ids.actor(actor)) else "todo",
        title=title,
        body=body,
        priority=priority,
        depends_on=depends_on or [],
        scope={"allow": scope, "deny": deny or []},
        budget={"max_files": max_files, "max_lines": max_lines},
        checks=checks or [],
        labels=labels or [],
        created_at=ids.moment(now),
        created_by=ids.actor(actor),
    )
    path = path_of(root, ticket.id)
    with file_lock(root, root / TICKETS):
        if path.exists():
            raise GovernanceError(f"ticket {ticket.id} already exists", code="TICKET_EXISTS")
        _check_graph(root, ticket)
        _write(root, ticket)
    return ticket


def update(root: Path, ticket_id: str, changes: dict[str, Any], actor: str | None = None) -> Ticket:
    """Apply field changes (validated as a whole) to a ticket and write it. Under the approval rule,
    only an approver sets `done`, a proposed ticket leaves `proposed` only by `approve`, and an
    agent's change of scope, budget or checks sends the ticket back to `proposed`.

    Raises GovernanceError (TICKET_NOT_FOUND, TICKET_INVALID, NOT_ALLOWED), InputError(INVALID_ARGUMENT).
    """
    unknown = set(changes) - {
        "title",
        "body",
        "status",
        "priority",
        "depends_on",
        "scope",
        "budget",
        "checks",
        "labels",
    }
    if unknown:
        raise InputError(f"cannot update {', '.join(sorted(unknown))}", code="INVALID_ARGUMENT")
    with file_lock(root, root / TICKETS):
        current = read(root, ticket_id)
        ticket = _build(**{**current.model_dump(), **changes})
        if actor is not None:
            ticket = _approved_change(root, current, ticket, actor)
        if "depends_on" in changes:
            _check_graph(root, ticket)
        _write(root, ticket)
    return ticket


def approve(root: Path, actor: str, ticket_id: str, *, now: datetime | None = None) -> Ticket:
    """Approve a proposed ticket (it becomes `todo`): a human act, recorded as a `ticket.approved`
    event naming what it approves, signed where the constitution asks. Raises NOT_ALLOWED,
    SIGNING_KEY_MISSING, TICKET_NOT_FOUND, INVALID_ARGUMENT (not proposed)."""
    signer = authority.human_act(root, actor, "approve")
    with file_lock(root, root / TICKETS):
        current = read(root, ticket_id)
        if current.status != "proposed":
            raise InputError(f"ticket {ticket_id} is {current.status}, not proposed", code="INVALID_ARGUMENT")
        ticket = current.model_copy(update={"status": "todo"})
        data = {"actor": actor, "ticket": ticket.id, "scope_sha256": _approves(ticket)}
        events.record(root, "ticket.approved", data, now=now, signer=signer)
        _write(root, ticket)
    return ticket


def _approves(ticket: Ticket) -> str:
    dumped = ticket.model_dump(mode="json")
    return approvals.scope_sha256(dumped["scope"], dumped["budget"], dumped["checks"])


def _approved_change(root: Path, current: Ticket, ticket: Ticket, actor: str) -> Ticket:
    gov = _governance(root)
    if ticket.status != current.status:
        if ticket.status == "done":
            approvals.require_approver(gov, actor)
        if current.status == "proposed" and ticket.status != "cancelled" and approvals.rule(gov) is not None:
            raise GovernanceError(
                f"ticket {current.id} is proposed: it waits for a human's approval",
                code="NOT_ALLOWED",
                hint=f"a human approves it: exo ticket approve {current.id}",
            )
    if _approves(ticket) != _approves(current) and approvals.proposes(gov, actor):
        return ticket.model_copy(update={"status": "proposed"})
    return ticket


def _governance(root: Path) -> Governance:
    try:
        return load_governance(root)
    except GovernanceError:
        return EMPTY  # no lock yet: no rule binds the ticket


def _write(root: Path, ticket: Ticket) -> None:
    Fence.from_globs(ticket.scope.allow, ticket.scope.deny)  # compile once: exactly what a session will use
    data = render(ticket)
    atomic_write(path_of(root, ticket.id), data)
    runtime.note_exo_write(root, f"{TICKETS}/{ticket.id}.yaml", data)


def _build(**fields: Any) -> Ticket:
    try:
        return Ticket.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        code = "INVALID_PATTERN" if key.startswith("scope") else "INVALID_ARGUMENT"
        raise InputError(f"{key}: {message}", code=code) from None


def _check_graph(root: Path, ticket: Ticket) -> None:
    """Dependencies must exist and may not form a cycle through `ticket`."""
    tickets = load_all(root)
    tickets[ticket.id] = ticket
    for dep in ticket.depends_on:
        if dep not in tickets:
            raise GovernanceError(f"ticket {ticket.id} depends on {dep}, which does not exist", code="TICKET_NOT_FOUND")
    path = _cycle(tickets, ticket.id)
    if path:
        raise GovernanceError(f"dependency cycle: {' -> '.join(path)}", code="TICKET_INVALID")


def _cycle(tickets: dict[str, Ticket], start: str) -> list[str]:
    """A dependency path from `start` back to itself, or [] if there is none."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for dep in tickets[node].depends_on if node in tickets else []:
            if dep == start:
                return [*path, dep]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return []


def _worktree_key(root: Path) -> str:
    import hashlib

    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
