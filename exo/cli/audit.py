"""`exo audit verify`, `exo audit show`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from exo.kernel import AuditReport
    from exo.stdlib.audit import AuditShow

from .app import audit_app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, run


@audit_app.command()
def verify(
    anchor: Annotated[
        list[str] | None,
        typer.Option(
            "--anchor",
            metavar="STREAM:SEQ:HASH",
            help="STREAM:SEQ:HASH that must still exist (repeatable).",
            show_default=False,
        ),
    ] = None,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Check every audit stream's hash chain; exit 1 on any problem.

    Recomputes every record's hash and link, sequence and stream binding, and checks the anchors.

    Problems have stable kinds (hash_mismatch, broken_link, seq_gap, stream_mismatch, not_canonical,
    torn_tail, after_seal, anchor_missing, anchor_mismatch, ...): see docs/kernel.md.
    """
    from exo.stdlib import audit

    ctx = Context(repo, actor)

    def render(r: AuditReport) -> str:
        lines = [f"{s.stream}: {s.records} record(s){', sealed' if s.sealed else ''}" for s in r.streams]
        lines += [
            f"PROBLEM {p.kind} {p.stream}" + (f" line {p.line}" if p.line else "") + f": {p.message}"
            for p in r.problems
        ]
        verdict = "audit log verified" if r.ok else f"audit log FAILED verification ({len(r.problems)} problem(s))"
        return "\n".join([*lines, f"{verdict}; {r.anchors_checked} anchor(s) checked"])

    run(json_, lambda: audit.verify(ctx.root, anchor or []), render)


@audit_app.command()
def show(
    stream: Annotated[
        str | None,
        typer.Option(
            "--stream",
            metavar="STREAM",
            help="A session id, or `local` (this clone's own events: lease takeovers, repairs). "
            "Default: the repository's events (governance compiled, freezes).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="Show the last N records (0: all).")] = 50,
    event: Annotated[
        str | None,
        typer.Option("--event", metavar="PREFIX", help="Only events starting with this prefix.", show_default=False),
    ] = None,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Print the records of one audit stream, oldest first."""
    from exo.stdlib import audit

    ctx = Context(repo, actor)

    def render(r: AuditShow) -> str:
        lines = [audit.describe(x) for x in r.records]
        if r.unreadable:
            lines.append(f"({r.unreadable} unreadable line(s): run `exo audit verify`)")
        return "\n".join(lines) or f"stream {r.stream} has no records"

    run(json_, lambda: audit.show(ctx.root, stream, limit, event), render)
