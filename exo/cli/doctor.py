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
    lines += [f"judged by its trailers (a format-1 session): {c}" for c in r.legacy]
    lines += [f"unsigned: {u}" for u in r.unsigned]
    if r.trust_root:
        lines.append(f"trust root: {r.trust_root}")
    verdict = "healthy" if r.ok else f"{len(r.problems)} problem(s)"
    how = ", ".join(f"{n} {k}" for k, n in sorted(r.accounted.items())) or "nothing"
    before = f", {r.skipped} from before exo" if r.skipped else ""
    lines.append(
        f"exo doctor: {verdict} ({r.range}: {r.commits} commit(s){before}; changes: {how}; "
        f"{r.records} session record(s), {r.streams} audit stream(s), {r.anchors} anchor(s), "
        f"{len(r.signed)} signature(s) verified)"
    )
    return "\n".join(lines)


@app.command()
def doctor(
    range_: Annotated[
        str | None,
        typer.Option(
            "--range",
            metavar="BASE..HEAD",
            help="Commits to check: BASE..HEAD for a push (BASE must be an ancestor), BASE...HEAD for a "
            "pull request (from the merge base). Default: the whole history of HEAD.",
        ),
    ] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Remove leftover temp files and torn tails (audited).")] = False,
    probe: Annotated[
        bool, typer.Option("--probe/--no-probe", help="Also feed exo's own agent hook a write it must deny.")
    ] = False,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Verify where every change in a range of history came from; exit 1 on any problem.

    Each path a commit brings in must be inherited from a parent, produced by a session whose record
    is at the range's head (inside its fence), or changed by a human; records are write-once. The
    head's governance, config, tickets, records and audit chains are checked from git objects, so it
    works from a fresh clone: this is what CI runs. A shallow clone, a missing base or a rewritten
    history is a problem, never "healthy". Each problem has a stable code, the commit or file, and
    the fix. See docs/ci.md.
    """
    from exo.stdlib.doctor import diagnose

    ctx = Context(repo, actor)
    run(json_, lambda: diagnose(ctx.root, commit_range=range_, fix=fix, probe=probe), render)
