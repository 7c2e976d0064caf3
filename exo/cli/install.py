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
    codex: Annotated[bool, typer.Option("--codex", help="Codex CLI hooks in .codex/hooks.json.")] = False,
    gemini: Annotated[bool, typer.Option("--gemini", help="Gemini CLI hooks in .gemini/settings.json.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Git hooks and every harness's hooks.")] = False,
    uninstall: Annotated[bool, typer.Option("--uninstall", help="Remove exo's hooks, restore chained ones.")] = False,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Install exo's git and agent hooks (idempotent; existing hooks are chained, never lost).

    Git hooks go where git looks for them (core.hooksPath if set), or into the hook manager's own
    configuration (husky, lefthook). Agent hook configs are merged into the existing files, keeping
    every user key. With no choice: git hooks and the hooks of the harnesses this repository has
    files for (all of them if none). Nothing is committed.
    """
    from exo.stdlib import install, managers
    from exo.stdlib.adapters import detect

    ctx = Context(repo, actor)
    chosen = {"claude": claude, "cursor": cursor, "codex": codex, "gemini": gemini}
    if all_:
        chosen = dict.fromkeys(chosen, True)
    elif not (git or any(chosen.values())):
        found = detect(ctx.root)
        chosen = {h: h in found for h in chosen}
        git = True

    def action() -> InstallResult:
        return install.install(
            ctx.root,
            git_hooks=git or all_,
            exe=install.exo_command(),
            agent_exe=managers.AGENT_EXE,
            uninstall=uninstall,
            **chosen,
        )

    run(json_, action, render)
