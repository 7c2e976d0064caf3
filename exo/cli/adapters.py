"""`exo adapters` and `exo install`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from .app import app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, run

if TYPE_CHECKING:
    from exo.stdlib.adapters import AdaptersResult


class InstallSummary(BaseModel):
    """What `exo install` changed (it never commits)."""

    changed: list[str] = Field(description="Files created or rewritten.")
    unchanged: list[str] = Field(description="Files already as they should be.")


def _render(r: AdaptersResult | InstallSummary) -> str:
    lines = [f"changed   {p}" for p in r.changed] + [f"unchanged {p}" for p in r.unchanged]
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
    from exo.stdlib import adapters as adapting
    from exo.stdlib import install as installing
    from exo.stdlib.scaffold import init_repo

    ctx = Context(repo, actor)

    def action() -> InstallSummary:
        root = ctx.root
        init = init_repo(root)
        hooks = installing.install(root, git_hooks=True, claude=True, cursor=True, exe=installing.exo_command())
        written = adapting.write_adapters(root)
        lock = [init.governance.lock] if init.governance.changed else []
        return InstallSummary(
            changed=init.created + lock + hooks.changed + written.changed,
            unchanged=init.kept + hooks.unchanged + written.unchanged,
        )

    run(json_, action, _render)
