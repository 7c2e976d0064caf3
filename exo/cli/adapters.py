"""`exo adapters` and `exo install`."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


@app.command()
def adapters(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Write the managed exo block in AGENTS.md, a CLAUDE.md importing it, and .cursor/rules/exo.mdc.

    Only the block between the exo markers is ever rewritten; the rest of each file is yours.
    """
    from exo.stdlib.adapters import write_adapters

    ctx = Context(repo, actor)
    run(json_, lambda: write_adapters(ctx.root), _render)


@app.command()
def install(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Set a repository up in one step: init + hook-install --all + adapters (idempotent, never commits)."""
    from exo.stdlib.install import install_all

    ctx = Context(repo, actor)
    run(json_, lambda: install_all(ctx.root), _render)
