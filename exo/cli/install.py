"""`exo hook-install`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, run

if TYPE_CHECKING:
    from exo.stdlib.install import InstallResult


def render(r: InstallResult) -> str:
    lines = [f"changed   {p}" for p in r.changed] + [f"unchanged {p}" for p in r.unchanged]
    lines += [f"chained   {p} (kept; runs before exo's hook)" for p in r.chained]
    for warning in r.warnings:
        typer.echo(f"WARNING: {warning}", err=True)
    return "\n".join(lines) or "nothing to do"


@app.command("hook-install")
def hook_install(
    git: Annotated[bool, typer.Option("--git", help="pre-commit and prepare-commit-msg git hooks.")] = False,
    claude: Annotated[bool, typer.Option("--claude", help="Claude Code hooks in .claude/settings.json.")] = False,
    cursor: Annotated[bool, typer.Option("--cursor", help="Cursor hooks in .cursor/hooks.json.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="All of the above (the default when none is chosen).")] = False,
    uninstall: Annotated[bool, typer.Option("--uninstall", help="Remove exo's hooks, restore chained ones.")] = False,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Install exo's git and agent hooks (idempotent; existing hooks are chained, never lost).

    Git hooks go where git looks for them (core.hooksPath if set); agent hook configs are merged
    into the existing files, keeping every user key. Nothing is committed.
    """
    from exo.stdlib import install

    ctx = Context(repo, actor)
    every = all_ or not (git or claude or cursor)

    def action() -> InstallResult:
        return install.install(
            ctx.root,
            git_hooks=git or every,
            claude=claude or every,
            cursor=cursor or every,
            exe=install.exo_command(),
            uninstall=uninstall,
        )

    run(json_, action, render)
