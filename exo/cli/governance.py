"""`exo init`, `exo build-governance`, `exo check`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from exo.stdlib.governance import BuildResult, CheckResult
    from exo.stdlib.scaffold import InitResult

from .app import app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, run


def _build_text(result: BuildResult) -> str:
    state = "compiled" if result.changed else "up to date"
    rules = "".join(f"\n  {r.id:<24} {r.type:<18} line {r.line}" for r in result.rules)
    return f"{result.lock} {state}: {len(result.rules)} rule(s){rules}"


@app.command()
def init(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Create .exo/ with a starter constitution and config.

    The starter files are commented and compiled right away. Files that already
    exist are never overwritten: they are validated and compiled as they are.
    """
    from exo.stdlib.scaffold import init_repo

    ctx = Context(repo, actor)

    def render(r: InitResult) -> str:
        lines = [f"created {p}" for p in r.created] + [f"kept    {p} (already there)" for p in r.kept]
        return "\n".join([*lines, _build_text(r.governance), "next: edit .exo/CONSTITUTION.md, then commit .exo/"])

    run(json_, lambda: init_repo(ctx.root), render)


@app.command("build-governance")
def build_governance(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Compile the constitution into the governance lock.

    Reads .exo/CONSTITUTION.md and writes .exo/governance.lock.json. Every rule is
    validated; any problem is reported with its rule id and line, and the previous
    lock is left untouched.
    """
    from exo.stdlib import governance

    ctx = Context(repo, actor)
    run(json_, lambda: governance.build(ctx.root, ctx.actor), _build_text)


@app.command()
def check(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Paths to decide (relative to the current directory).", metavar="PATH", show_default=False),
    ] = None,
    paths_flag: Annotated[
        bool, typer.Option("--paths", help="Decide the paths that follow (the default mode).")
    ] = False,
    staged: Annotated[bool, typer.Option("--staged", help="Decide the paths staged for commit instead.")] = False,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Allow glob of the fence (repeatable).", metavar="GLOB", show_default=False),
    ] = None,
    deny: Annotated[
        list[str] | None,
        typer.Option("--deny", help="Deny glob of the fence (repeatable).", metavar="GLOB", show_default=False),
    ] = None,
    operation: Annotated[str, typer.Option("--operation", help="write, delete or read.", metavar="OP")] = "write",
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Decide whether paths may be written; exit 1 on a deny.

    Each path is canonicalized and decided by the fence (protected paths, the constitution's rules,
    the scope).

    Example: exo check --paths src/app.py .env --scope 'src/**'
    """
    from exo.stdlib import governance
    from exo.stdlib.repo import user_path

    ctx = Context(repo, actor)

    def action() -> CheckResult:
        root = ctx.root
        if staged:
            return governance.check_staged(root, ctx.actor, scope=scope or [], deny=deny or [])
        given = [user_path(root, p) for p in paths or []]
        return governance.check_paths(root, ctx.actor, given, scope=scope or [], deny=deny or [], operation=operation)

    def render(r: CheckResult) -> str:
        if not r.decisions:
            return "nothing to check"
        width = max(len(d.path) for d in r.decisions)
        lines = [
            f"{'allow' if d.allowed else 'DENY '}  {d.path:<{width}}  "
            + ("" if d.allowed else f"[{d.rule}] {d.reason}")
            for d in r.decisions
        ]
        return "\n".join(line.rstrip() for line in lines)

    run(json_, action, render)
