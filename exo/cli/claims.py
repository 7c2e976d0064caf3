"""`exo claims gc`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .app import claims_app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, run

if TYPE_CHECKING:
    from exo.stdlib.claims import GcResult


def _gc_text(r: GcResult) -> str:
    removed = ", ".join(r.removed) if r.removed else "nothing"
    return f"removed from the remote: {removed}\nkept: {len(r.kept)} claim(s)"


@claims_app.command("gc")
def gc(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Delete the remote claims of done and cancelled tickets that were released (humans only).

    Each one's last lease is kept in refs/exo/retired, so a ticket reopened later is claimed at the
    next epoch. Claims of open tickets stay. See docs/remote.md.
    """
    from exo.stdlib import claims

    ctx = Context(repo, actor)
    run(json_, lambda: claims.gc(ctx.root, ctx.actor), _gc_text)
