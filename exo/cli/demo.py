"""`exo demo`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from exo.stdlib.demo import DemoResult

from .app import app
from .common import ActorOpt, JsonOpt, RepoOpt, run


@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the throwaway repository for inspection.")] = False,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Run the whole story in a throwaway repository.

    Each step is told in one plain line (starting with "# "), followed by its stable KEY=value
    marker for machines. Needs no setup and touches nothing outside a temporary directory
    (--repo and --actor are accepted for uniformity and ignored).
    """
    from exo.stdlib.demo import SAY, run_demo

    def show(key: str, value: str) -> None:
        typer.echo(f"# {SAY.get(key, key)}\n{key}={value}")

    run(json_, lambda: run_demo(keep=keep, on_marker=None if json_ else show), _silent)


def _silent(_result: DemoResult) -> str:
    return ""  # markers were printed as they happened
