"""`exo-mcp`: a stdio MCP server over the same stdlib functions as the CLI.

Every tool returns the pydantic model the CLI prints with `--json`, so structured output and CLI
JSON are the same document. Domain errors are raised as tool errors whose text carries
`error[CODE]` and the hint; nothing is returned as a fake success. The actor is fixed by the
server's configuration — `EXO_ACTOR` in the harness's MCP config (which `exo adapters` writes),
else `agent:<client name>` from the MCP initialize request — and no call can change it; a human's
name is refused (exo-mcp is the agent's interface). The repository is the server's working
directory; no call can point it at another. Every call reads fresh state from disk.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict, TypeVar

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from exo.kernel import AuditReport, ExoError, ids
from exo.stdlib import audit, closeout, dispatch, doctor, governance, identity, repo, sessions, tickets
from exo.stdlib.closeout import FinishResult
from exo.stdlib.dispatch import NextResult
from exo.stdlib.doctor import DoctorReport
from exo.stdlib.governance import CheckResult
from exo.stdlib.sessions import SessionView, StartResult, StatusResult
from exo.stdlib.tickets import Ticket, TicketList

R = TypeVar("R")

INSTRUCTIONS = """exo governs this repository. Work only inside a session: call `next` to claim a ticket,
`session_start` to open the session (read its bootstrap: your fence, budget and rules), `check` before
writing a path you are unsure of, `session_heartbeat` to keep your lease, and `session_finish` when
done (or `session_handoff`). Errors carry error[CODE] and a hint saying what to do."""


def build(cwd: Path, default_actor: str | None) -> MCPServer:
    """The server, bound to a default repository directory and actor (read by `main` at the edge)."""
    from exo import __version__

    server = MCPServer("exo", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

    def root() -> Path:
        return repo.find_root(cwd)

    def actor_of(ctx: Context) -> str:
        return served_actor(default_actor, ctx)

    @server.tool(**reads("Where things stand"))
    def status() -> StatusResult:
        """See every open session of this clone (all worktrees), which ones are stale, this worktree's
        session and whether the repository is frozen. Call it first to orient yourself."""
        return guard(lambda: sessions.status(root()))

    @server.tool(name="next", **writes("Claim the next ticket"))
    def next_(ctx: Context) -> NextResult:
        """Claim the next ticket to work on (priority, then tickets that unblock others, then age;
        tickets overlapping an active session are skipped and listed). Returns the ticket and your
        lease; then call `session_start`. Fails with NO_TICKET when nothing is available."""
        return guard(lambda: dispatch.next_ticket(root(), actor_of(ctx)))

    @server.tool(**writes("Create a ticket"))
    def ticket_create(
        ctx: Context,
        title: Annotated[str, Field(description="One line saying what to do.")],
        scope: Annotated[list[str], Field(description="gitignore-style globs a session may write, e.g. src/**.")],
        deny: Annotated[list[str] | None, Field(description="Globs excluded from scope.")] = None,
        ticket_id: Annotated[str | None, Field(description="Id (default: a short random one).")] = None,
        priority: Annotated[int, Field(ge=1, le=5, description="1 highest ... 5 lowest.")] = 3,
        depends_on: Annotated[list[str] | None, Field(description="Tickets that must be done first.")] = None,
        checks: Annotated[list[str] | None, Field(description="Commands session-finish must pass.")] = None,
        body: Annotated[str, Field(description="Details and acceptance criteria.")] = "",
    ) -> Ticket:
        """Create a ticket, e.g. a follow-up you found. Returns the ticket as stored."""
        return guard(
            lambda: tickets.create(
                root(),
                actor_of(ctx),
                title=title,
                scope=scope,
                deny=deny,
                ticket_id=ticket_id,
                priority=priority,
                depends_on=depends_on,
                checks=checks,
                body=body,
            )
        )

    @server.tool(**reads("List tickets"))
    def ticket_list(
        status: Annotated[str | None, Field(description="Only this status: todo, active, review, done, ...")] = None,
    ) -> TicketList:
        """List tickets (optionally of one status), highest priority first, to see what work exists
        before claiming or creating any. Returns each ticket with its scope, status and dependencies."""
        return guard(lambda: tickets.list_tickets(root(), status))

    @server.tool(**reads("Show a ticket"))
    def ticket_show(ticket_id: Annotated[str, Field(description="Ticket id.")]) -> Ticket:
        """Show one ticket: title, body, scope, budget, checks, dependencies."""
        return guard(lambda: tickets.read(root(), ticket_id))

    @server.tool(**writes("Start a session"))
    def session_start(
        ctx: Context,
        ticket_id: Annotated[str | None, Field(description="Ticket (default: the one `next` claimed).")] = None,
        task: Annotated[str, Field(description="What you are about to do.")] = "",
    ) -> StartResult:
        """Open a governed session in this worktree. Returns the bootstrap prompt: read it, it says
        which paths you may write, your budget, the repository's rules and how to finish."""
        return guard(lambda: sessions.start(root(), actor_of(ctx), ticket_id=ticket_id, task=task))

    @server.tool(**writes("Renew the lease", idempotent=True))
    def session_heartbeat(ctx: Context) -> SessionView:
        """Renew your session's lease; call it regularly while working. LOCK_LOST means the lease
        expired or was taken over: stop writing and start a new session."""
        return guard(lambda: sessions.heartbeat(root(), actor_of(ctx)))

    @server.tool(**writes("Finish the session"))
    async def session_finish(
        ctx: Context,
        summary: Annotated[str, Field(description="What the session did (goes into the memento).")] = "",
        set_status: Annotated[str, Field(description="Ticket status to set: review or done.")] = "review",
        follow_ups: Annotated[list[str] | None, Field(description="Work left for later.")] = None,
    ) -> FinishResult:
        """Finish your session: checks drift over everything you changed, runs the checks (reporting
        progress), commits the session records and releases the lease. A refusal (error DRIFT or
        CHECKS_FAILED) names every offending path or check and leaves the session open: fix, retry.
        With claims on a git remote it also pushes your branch (BRANCH_BEHIND: pull --rebase, retry)."""
        step = 0

        def progress(line: str) -> None:
            nonlocal step
            step += 1
            anyio.from_thread.run(ctx.report_progress, step, None, line)

        who = actor_of(ctx)

        def work() -> FinishResult:
            return closeout.finish(
                root(), who, summary=summary, set_status=set_status, follow_ups=follow_ups, progress=progress
            )

        return await anyio.to_thread.run_sync(lambda: guard(work))

    @server.tool(**writes("Hand the session over"))
    def session_handoff(
        ctx: Context,
        to: Annotated[str, Field(description="Actor who takes the ticket over, e.g. agent:b.")],
        summary: Annotated[str, Field(description="Where the work stands.")],
        next_steps: Annotated[list[str] | None, Field(description="What the next session should do.")] = None,
        tried: Annotated[list[str] | None, Field(description="What was tried and did not work.")] = None,
    ) -> FinishResult:
        """Close your session with handoff notes and pass the lease to another actor."""
        return guard(
            lambda: closeout.handoff(root(), actor_of(ctx), to=to, summary=summary, next_steps=next_steps, tried=tried)
        )

    @server.tool(**reads("Check paths against the fence"))
    def check(
        ctx: Context,
        paths: Annotated[list[str], Field(description="Paths to decide (absolute or repo-relative).")],
        scope: Annotated[
            list[str] | None, Field(description="Allow globs (default: the open session's fence).")
        ] = None,
        deny: Annotated[list[str] | None, Field(description="Deny globs with scope.")] = None,
    ) -> CheckResult:
        """Ask the fence whether you may write these paths. Returns one decision per path (ok is
        false if any is denied, with the rule and reason); it never writes anything."""

        def work() -> CheckResult:
            at = root()
            given = [p if os.path.isabs(p) else str(at / p) for p in paths]
            return governance.check_paths(at, actor_of(ctx), given, scope=scope or [], deny=deny or [])

        return guard(work)

    @server.tool(name="doctor", **reads("Run doctor"))
    def doctor_(
        commit_range: Annotated[str | None, Field(description="BASE..HEAD (default: all since setup).")] = None,
    ) -> DoctorReport:
        """Re-check governance, audit chains, tickets, sessions and every commit (what CI runs).
        Returns every problem with its code, subject and fix; ok is true only when healthy."""
        return guard(lambda: doctor.diagnose(root(), commit_range=commit_range, probe=False))

    @server.tool(**reads("Verify the audit chains"))
    def audit_verify(
        anchors: Annotated[list[str] | None, Field(description="Extra STREAM:SEQ:HASH anchors.")] = None,
    ) -> AuditReport:
        """Recompute every audit hash chain and anchor. Returns the streams and any problems."""
        return guard(lambda: audit.verify(root(), anchors or []))

    for tool in server._tool_manager.list_tools():  # the SDK derives the schema; exo lists it lean
        tool.__dict__["output_schema"] = lean_schema(tool.output_schema or {})
        tool.parameters = without_titles(tool.parameters)
        tool.description = inspect.cleandoc(tool.description)
    return server


class Listing(TypedDict):
    title: str
    annotations: ToolAnnotations


def reads(title: str) -> Listing:
    """A tool that only reads this repository."""
    hints = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
    return {"title": title, "annotations": hints}


def writes(title: str, *, idempotent: bool = False) -> Listing:
    """A tool that changes exo's state in this repository (never destructively: work is kept)."""
    hints = ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=idempotent, open_world_hint=False
    )
    return {"title": title, "annotations": hints}


_SCHEMA_KEYS = {"type", "properties", "required", "items", "anyOf", "enum", "const", "format", "additionalProperties"}


def lean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An output schema for the listing: each top-level field with its type (nested models as plain
    objects, enums kept), without titles and descriptions. The tool descriptions and docs/mcp.md
    describe the nesting; the structured content still carries all of it."""
    defs = schema.get("$defs", {})

    def walk(node: Any, depth: int) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
            if depth > 0 and "enum" not in node:
                return {"type": node.get("type", "object")}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key not in _SCHEMA_KEYS:
                continue
            if key == "properties":
                out[key] = {name: walk(sub, depth + 1) for name, sub in value.items()}
            elif key in ("items", "additionalProperties"):
                out[key] = walk(value, depth)
            elif key == "anyOf":
                out[key] = [walk(sub, depth) for sub in value]
            else:
                out[key] = value
        return out

    return walk(schema, 0)  # type: ignore[no-any-return]


def without_titles(schema: dict[str, Any]) -> dict[str, Any]:
    """An input schema without the titles pydantic derives from each name (`Ticket Id`)."""
    properties = {name: {k: v for k, v in sub.items() if k != "title"} for name, sub in schema["properties"].items()}
    return {k: v for k, v in schema.items() if k != "title"} | {"properties": properties}


# Hints name the CLI; through MCP the same advice names tools and their arguments.
_CLI_TOOLS = {
    "next": "next",
    "status": "status",
    "check": "check",
    "doctor": "doctor",
    "audit verify": "audit_verify",
    "ticket create": "ticket_create",
    "ticket list": "ticket_list",
    "ticket show": "ticket_show",
    "session-start": "session_start",
    "session-heartbeat": "session_heartbeat",
    "session-finish": "session_finish",
    "session-handoff": "session_handoff",
}
_FLAGS = {"range": "commit_range"}
_CLI_CALL = re.compile(r"(?:run )?`exo ((?:audit|ticket) [a-z]+|[a-z-]+)(?: [^`]*)?`")
_FLAG = re.compile(r"(?:pass )?--([a-z][a-z-]*)")


def for_tools(hint: str) -> str:
    """`hint` with `exo session-start` as `session_start` and `--ticket-id` as the `ticket_id`
    argument, wherever the CLI has a tool (CLI-only advice, for a human, is left as it is)."""

    def call(match: re.Match[str]) -> str:
        tool = _CLI_TOOLS.get(match.group(1))
        if tool is None:
            return match.group(0)
        return f"call `{tool}`" if match.group(0).startswith("run ") else f"`{tool}`"

    def flag(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"pass the `{_FLAGS.get(name, name.replace('-', '_'))}` argument"

    return _FLAG.sub(flag, _CLI_CALL.sub(call, hint))


def served_actor(configured: str | None, ctx: Context) -> str:
    """The agent this server acts for: its configured EXO_ACTOR, else `agent:<client name>`.
    Raises NOT_ALLOWED for a human's name (exo-mcp serves agents; humans use the CLI)."""
    if configured:
        chosen = guard(lambda: ids.actor(configured))
        if not chosen.startswith("agent:"):
            raise ToolError(
                f"error[NOT_ALLOWED]: exo-mcp acts for agents, and its EXO_ACTOR is {chosen}\n"
                "hint: set EXO_ACTOR=agent:NAME in the MCP server's configuration (`exo adapters` writes it)"
            )
        return chosen
    params = ctx.session.client_params
    name = params.client_info.name if params is not None else ""
    return identity.label("agent", name, 64, "mcp")


def guard(call: Callable[[], R]) -> R:
    """Run a stdlib call; a domain error becomes a tool error carrying its code and hint."""
    try:
        return call()
    except ExoError as exc:
        raise ToolError(f"error[{exc.code}]: {exc.message}\nhint: {for_tools(exc.hint)}") from exc


USAGE = """Usage: exo-mcp [--help | --version]

Serve exo's tools over MCP on stdin/stdout, for the repository in the current directory.
A harness starts it from its MCP configuration (`exo adapters` writes one); it is not run by hand.

The actor is EXO_ACTOR from that configuration, else agent:<the client's name>; a human's name is
refused. Logs go to stderr; stdout carries only the protocol.
"""


def main(argv: list[str] | None = None) -> None:
    """`exo-mcp`: serve over stdio, or answer `--help`/`--version`; any other argument is refused
    rather than ignored (a server that starts on a typo would sit waiting on stdin)."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["--help"], ["-h"]):
        sys.stdout.write(USAGE)
        return
    if args == ["--version"]:
        from exo import __version__

        sys.stdout.write(f"exo-mcp {__version__}\n")
        return
    if args:
        sys.stderr.write(f"error[INVALID_ARGUMENT]: exo-mcp takes no arguments, got {' '.join(args)!r}\n")
        sys.stderr.write("hint: run `exo-mcp --help`\n")
        raise SystemExit(2)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    build(Path.cwd(), os.environ.get("EXO_ACTOR") or None).run()
