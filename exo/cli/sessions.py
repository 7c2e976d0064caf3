"""`exo session-start|session-status|status|session-heartbeat|session-finish|session-handoff`, `freeze`, `unfreeze`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .app import app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, run

if TYPE_CHECKING:
    from exo.stdlib.closeout import FinishResult
    from exo.stdlib.freeze import FreezeState
    from exo.stdlib.sessions import SessionView, StartResult, StatusResult

Texts = Annotated[list[str] | None, typer.Option(metavar="TEXT", show_default=False)]
AcceptDrift = Annotated[
    str | None,
    typer.Option(
        "--accept-drift",
        metavar="REASON",
        show_default=False,
        help="Finish despite drift violations (humans only; the reason is audited).",
    ),
]


def _line(v: SessionView) -> str:
    state = "live" if v.live else "EXPIRED"
    return (
        f"{v.sid}  {v.actor} on {v.ticket_id}  lease epoch {v.epoch} {state} until "
        f"{v.expires_at.isoformat(timespec='seconds')}  ({v.worktree})"
    )


@app.command("session-start")
def session_start(
    ticket_id: Annotated[
        str | None,
        typer.Option("--ticket-id", metavar="ID", help="Ticket to work on (default: the one `exo next` claimed)."),
    ] = None,
    task: Annotated[str, typer.Option("--task", help="What you are about to do.")] = "",
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Open a governed session in this worktree and print its bootstrap prompt."""
    from exo.stdlib import sessions

    ctx = Context(repo, actor)

    def render(r: StartResult) -> str:
        for sid in r.abandoned:
            typer.echo(
                f"recovered dead session {sid} (sealed as abandoned; its record goes in this closeout)", err=True
            )
        if r.found:
            typer.echo(
                f"note: {len(r.found)} path(s) were already changed before this session started; they are not"
                " its work unless it changes them (`exo status` and the prompt list them)",
                err=True,
            )
        return r.bootstrap.rstrip("\n")

    run(json_, lambda: sessions.start(ctx.root, ctx.actor, ticket_id=ticket_id, task=task), render)


def _status_text(r: StatusResult) -> str:
    lines = [f"FROZEN: {r.frozen}"] if r.frozen else []
    lines.append(f"this worktree: {_line(r.current)}" if r.current else "this worktree: no open session")
    others = [s for s in r.sessions if not r.current or s.sid != r.current.sid]
    lines += [f"other: {_line(s)}" for s in others]
    if r.stale:
        lines.append(f"{len(r.stale)} stale session(s): another agent may take their tickets over")
    if r.git_settings:
        lines.append("WARNING: git settings here that run code or redirect git: " + ", ".join(r.git_settings))
    lines += [f"REVOKED (over its error budget): {line}" for line in r.revoked]
    if r.claims_unreachable:
        lines.append(f"WARNING: {r.claims_unreachable} (sessions shown from this clone's copy)")
    elif r.claims_store != "local":
        lines.append(f"claims on {r.claims_store}: {len(r.claims)} live")
        until = "%Y-%m-%d %H:%M:%SZ"
        lines += [f"  {c.ticket_id}: {c.holder}, epoch {c.epoch}, until {c.expires_at:{until}}" for c in r.claims]
    return "\n".join(lines)


def _status(json_: bool, repo: Path | None, actor: str | None) -> None:
    from exo.stdlib import sessions

    ctx = Context(repo, actor)
    run(json_, lambda: sessions.status(ctx.root), _status_text)


@app.command("session-status")
def session_status(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Show this worktree's session, every open session of the clone, stale leases and any freeze."""
    _status(json_, repo, actor)


@app.command("status")
def status(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Alias of session-status."""
    _status(json_, repo, actor)


@app.command("session-heartbeat")
def session_heartbeat(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Renew the lease of this worktree's session (exit 1 with LOCK_LOST once it is gone)."""
    from exo.stdlib import sessions

    ctx = Context(repo, actor)
    run(json_, lambda: sessions.heartbeat(ctx.root, ctx.actor), _line)


def _closed(r: FinishResult) -> str:
    lines = [
        f"{r.outcome.replace('_', ' ')}: session {r.session.sid} on {r.session.ticket_id}",
        f"  {len(r.drift.files)} file(s), +{r.drift.lines_added} -{r.drift.lines_removed}, drift score {r.drift.score}",
        f"  closeout commit {r.commit}",
    ]
    if r.lease:
        lines.append(f"  lease passed to {r.lease.holder} (epoch {r.lease.epoch})")
    return "\n".join(lines)


@app.command("session-finish")
def session_finish(
    summary: Annotated[str, typer.Option("--summary", help="What the session did.")] = "",
    set_status: Annotated[str, typer.Option("--set-status", help="Ticket status to set: review or done.")] = "review",
    accept_drift: AcceptDrift = None,
    follow_up: Texts = None,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Check drift, run the checks, commit the session records and release the lease.

    Any violation or failed check exits 1, names every path, and leaves the session open. With
    claims on a git remote, the release and the checked-out branch are pushed together, atomically:
    if the claim was taken over nothing lands (LOCK_LOST); if the remote branch moved, pull and
    finish again (BRANCH_BEHIND). See docs/remote.md.
    """
    from exo.stdlib import closeout

    ctx = Context(repo, actor)

    def action() -> FinishResult:
        return closeout.finish(
            ctx.root,
            ctx.actor,
            summary=summary,
            set_status=set_status,
            accept_drift=accept_drift,
            follow_ups=follow_up,
            progress=None if json_ else lambda line: typer.echo(line, err=True),
        )

    run(json_, action, _closed)


@app.command("session-handoff")
def session_handoff(
    to: Annotated[str, typer.Option("--to", metavar="ACTOR", help="Who takes the ticket over.")],
    summary: Annotated[str, typer.Option("--summary", help="Where the work stands.")],
    next_step: Texts = None,
    tried: Texts = None,
    accept_drift: AcceptDrift = None,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Close the session with handoff notes and pass the lease to another actor."""
    from exo.stdlib import closeout

    ctx = Context(repo, actor)

    def action() -> FinishResult:
        return closeout.handoff(
            ctx.root, ctx.actor, to=to, summary=summary, next_steps=next_step, tried=tried, accept_drift=accept_drift
        )

    run(json_, action, _closed)


def _frozen(r: FreezeState) -> str:
    return f"FROZEN by {r.actor} since {r.since}: {r.reason}" if r.frozen else "not frozen"


@app.command()
def freeze(
    reason: Annotated[str, typer.Option("--reason", help="Why (shown to every agent that is refused).")],
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Kill switch: no new sessions, and every fence check denies, until `exo unfreeze`."""
    from exo.stdlib import freeze as freezing

    ctx = Context(repo, actor)
    run(json_, lambda: freezing.freeze(ctx.root, ctx.actor, reason), _frozen)


@app.command()
def unfreeze(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Lift a freeze (humans only)."""
    from exo.stdlib import freeze as freezing

    ctx = Context(repo, actor)
    run(json_, lambda: freezing.unfreeze(ctx.root, ctx.actor), _frozen)


@app.command()
def restore(
    revoked: Annotated[str, typer.Argument(metavar="ACTOR", help="The revoked actor, e.g. agent:claude-code.")],
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Restore an actor revoked by the error budget (humans only); prints the status after.

    The restore is recorded as an `actor.restored` event (signed with your git SSH key where the
    constitution requires signed human acts); the actor's counts start again from zero.
    """
    from exo.stdlib import sessions, standing

    ctx = Context(repo, actor)

    def action() -> StatusResult:
        standing.restore(ctx.root, ctx.actor, revoked)
        return sessions.status(ctx.root)

    run(json_, action, _status_text)
