"""`exo adapters` and `exo install`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, run

if TYPE_CHECKING:
    from exo.stdlib.adapters import AdaptersResult
    from exo.stdlib.install import InstallSummary


def _render(r: AdaptersResult | InstallSummary) -> str:
    lines = [f"changed   {p}" for p in r.changed] + [f"unchanged {p}" for p in r.unchanged]
    for warning in getattr(r, "warnings", []):
        typer.echo(f"WARNING: {warning}", err=True)
    return "\n".join(lines)


HarnessOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--harness",
        help="claude, cursor, codex, gemini or vscode (repeatable). Default: the harnesses this "
        "repository already has files for (.claude/, .cursor/, .codex/, .gemini/, .vscode/), or all.",
        show_default=False,
    ),
]


@app.command()
def adapters(harness: HarnessOpt = None, json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Write the managed exo block in AGENTS.md and each harness's MCP configuration and pointers.

    Claude Code: .mcp.json, CLAUDE.md (imports AGENTS.md). Cursor: .cursor/mcp.json,
    .cursor/rules/exo.mdc. Codex CLI: [mcp_servers.exo] in .codex/config.toml. Gemini CLI:
    .gemini/settings.json (mcpServers, and AGENTS.md as context). VS Code: .vscode/mcp.json.
    Only exo's own entries and the block between the exo markers are ever rewritten.
    """
    from exo.stdlib.adapters import write_adapters

    ctx = Context(repo, actor)
    run(json_, lambda: write_adapters(ctx.root, harness), _render)


@app.command()
def install(harness: HarnessOpt = None, json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Set a repository up in one step: init, git hooks, each harness's hooks and adapters.

    Idempotent and never commits; it prints what it changed and warns about any configured command
    that does not resolve on this machine.
    """
    from exo.stdlib.install import install_all

    ctx = Context(repo, actor)
    run(json_, lambda: install_all(ctx.root, harness), _render)
