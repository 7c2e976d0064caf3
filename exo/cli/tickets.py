"""`exo ticket create|list|show|update` and `exo next`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import app, ticket_app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, run

if TYPE_CHECKING:
    from exo.stdlib.dispatch import NextResult
    from exo.stdlib.tickets import Ticket, TicketList

Globs = Annotated[list[str] | None, typer.Option(metavar="GLOB", show_default=False)]
Texts = Annotated[list[str] | None, typer.Option(metavar="TEXT", show_default=False)]
Ids = Annotated[list[str] | None, typer.Option(metavar="ID", show_default=False)]


def _show(t: Ticket) -> str:
    lines = [
        f"{t.id}  [{t.status}]  priority {t.priority}  {t.title}",
        f"  scope: {', '.join(t.scope.allow)}" + (f"  (deny {', '.join(t.scope.deny)})" if t.scope.deny else ""),
    ]
    if t.depends_on:
        lines.append(f"  depends on: {', '.join(t.depends_on)}")
    if t.budget.max_files or t.budget.max_lines:
        lines.append(f"  budget: {t.budget.max_files or '-'} files, {t.budget.max_lines or '-'} lines")
    if t.checks:
        lines.append(f"  checks: {'; '.join(t.checks)}")
    lines.append(f"  created {t.created_at.isoformat(timespec='seconds')} by {t.created_by}")
    if t.body:
        lines += ["", t.body]
    return "\n".join(lines)


@ticket_app.command()
def create(
    title: Annotated[str, typer.Argument(help="One line saying what to do.")],
    scope: Globs = None,
    deny: Globs = None,
    id_: Annotated[str | None, typer.Option("--id", help="Ticket id (default: a short random one).")] = None,
    priority: Annotated[int, typer.Option("--priority", min=1, max=5, help="1 highest ... 5 lowest.")] = 3,
    depends_on: Ids = None,
    max_files: Annotated[int | None, typer.Option("--max-files", min=1, help="Files a session may change.")] = None,
    max_lines: Annotated[int | None, typer.Option("--max-lines", min=1, help="Lines a session may change.")] = None,
    check: Texts = None,
    body: Annotated[str, typer.Option("--body", help="Details and acceptance criteria.")] = "",
    label: Texts = None,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Create a ticket; --scope (repeatable) says which paths its sessions may write.

    Example: exo ticket create "Add login form" --scope 'src/login/**' --check 'pytest -q'
    """
    from exo.stdlib import tickets

    ctx = Context(repo, actor)
    if not scope:
        from exo.kernel import InputError

        from .common import fail

        fail(InputError("a ticket needs at least one --scope GLOB", code="INVALID_ARGUMENT"), json_)

    def action() -> Ticket:
        return tickets.create(
            ctx.root,
            ctx.actor,
            title=title,
            scope=scope or [],
            deny=deny,
            ticket_id=id_,
            priority=priority,
            depends_on=depends_on,
            max_files=max_files,
            max_lines=max_lines,
            checks=check,
            body=body,
            labels=label,
        )

    run(json_, action, lambda t: t.id)


@ticket_app.command("list")
def list_(
    status: Annotated[str | None, typer.Option("--status", help="Only tickets with this status.")] = None,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """List tickets, highest priority first."""
    from exo.stdlib import tickets

    ctx = Context(repo, actor)

    def render(r: TicketList) -> str:
        rows = [f"{t.id:<12} {t.status:<9} p{t.priority}  {t.title}" for t in r.tickets]
        return "\n".join(rows) or "no tickets"

    run(json_, lambda: tickets.list_tickets(ctx.root, status), render)


@ticket_app.command()
def show(
    ticket_id: Annotated[str, typer.Argument(metavar="ID", help="Ticket id.")],
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Show one ticket."""
    from exo.stdlib import tickets

    ctx = Context(repo, actor)
    run(json_, lambda: tickets.read(ctx.root, ticket_id), _show)


@ticket_app.command()
def update(
    ticket_id: Annotated[str, typer.Argument(metavar="ID", help="Ticket id.")],
    title: Annotated[str | None, typer.Option("--title", show_default=False)] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="todo, active, review, done, blocked, cancelled (proposed: see approve)."),
    ] = None,
    priority: Annotated[int | None, typer.Option("--priority", min=1, max=5, show_default=False)] = None,
    scope: Globs = None,
    deny: Globs = None,
    depends_on: Ids = None,
    check: Texts = None,
    body: Annotated[str | None, typer.Option("--body", show_default=False)] = None,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Change fields of a ticket (list options replace the whole list)."""
    from exo.stdlib import tickets

    ctx = Context(repo, actor)
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "title": title,
            "status": status,
            "priority": priority,
            "depends_on": depends_on,
            "checks": check,
            "body": body,
        }.items()
        if v is not None
    }

    def action() -> Ticket:
        if scope is not None or deny is not None:
            current = tickets.read(ctx.root, ticket_id).scope
            changes["scope"] = {"allow": scope or current.allow, "deny": deny if deny is not None else current.deny}
        return tickets.update(ctx.root, ticket_id, changes, ctx.actor)

    run(json_, action, _show)


@ticket_app.command()
def approve(
    ticket_id: Annotated[str, typer.Argument(metavar="ID", help="Ticket id.")],
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Approve a proposed ticket so sessions may work on it (a human act).

    Under the approval rule, tickets an agent creates or widens wait as `proposed`. Approving makes
    the ticket `todo` and records a `ticket.approved` event, signed with your git SSH key where the
    constitution requires signed human acts; commit it with the ticket.
    """
    from exo.stdlib import tickets

    ctx = Context(repo, actor)
    run(json_, lambda: tickets.approve(ctx.root, ctx.actor, ticket_id), _show)


@app.command("next")
def next_(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Pick the next ticket and claim it for the actor; prints its id.

    Order: priority, then tickets that unblock more others, then age. Tickets whose scope overlaps
    an active session's are skipped (and said so on stderr). Then run `exo session-start`.
    """
    from exo.stdlib import dispatch

    ctx = Context(repo, actor)

    def render(r: NextResult) -> str:
        for skip in r.skipped:
            typer.echo(f"skipped {skip.ticket_id}: {skip.reason}", err=True)
        return r.ticket.id

    run(json_, lambda: dispatch.next_ticket(ctx.root, ctx.actor), render)
