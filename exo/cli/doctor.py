"""`exo doctor`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, run

if TYPE_CHECKING:
    from exo.stdlib.doctor import DoctorReport


def render(r: DoctorReport) -> str:
    lines = [f"{p.code}  {p.subject}: {p.message}\n    fix: {p.fix}" for p in r.problems]
    lines += [f"fixed: {f}" for f in r.fixed] + [f"accepted drift: {a}" for a in r.accepted]
    verdict = "healthy" if r.ok else f"{len(r.problems)} problem(s)"
    lines.append(f"exo doctor: {verdict} ({r.commits} commit(s), {r.streams} audit stream(s), {r.anchors} anchor(s))")
    return "\n".join(lines)


@app.command()
def doctor(
    range_: Annotated[
        str | None,
        typer.Option("--range", metavar="BASE..HEAD", help="Commits to check (default: all since exo was set up)."),
    ] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Remove leftover temp files and torn tails (audited).")] = False,
    probe: Annotated[bool, typer.Option("--probe/--no-probe", help="Check that the agent hook denies.")] = True,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Re-check governance, audit chains, tickets, sessions and every commit; exit 1 on any problem.

    Works from a fresh clone (no runtime state): this is what CI runs. Each problem has a stable
    code, the file or commit, and the fix. See docs/ci.md.
    """
    from exo.stdlib.doctor import diagnose

    ctx = Context(repo, actor)
    run(json_, lambda: diagnose(ctx.root, commit_range=range_, fix=fix, probe=probe), render)
