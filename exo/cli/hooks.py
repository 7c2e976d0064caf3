"""`exo hook claude|cursor EVENT`: documented here, executed by the fast path in `exo.cli.main`."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app
from .common import ActorOpt, JsonOpt, RepoOpt


@app.command()
def hook(
    agent: Annotated[str, typer.Argument(help="claude, cursor or git.")],
    event: Annotated[
        str,
        typer.Argument(
            help="claude: pre-tool-use, session-start, stop, session-end; cursor: pre-tool-use, before-shell; "
            "git: pre-commit, prepare-commit-msg."
        ),
    ],
    args: Annotated[list[str] | None, typer.Argument(help="What git passes to the hook.")] = None,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Run a hook: agent hooks read the harness's JSON on stdin; git hooks take git's arguments.

    PreToolUse denies writes outside the open session's fence (and hook bypasses in Bash) by
    printing the deny decision and exiting 2, with the reason on stderr; an allowed call prints
    nothing. Junk input, an unknown tool or any internal error denies. SessionStart injects the
    bootstrap prompt; Stop reminds the agent to finish its session. git pre-commit fences the staged
    paths and applies the commit policy; prepare-commit-msg stamps the Exo-* trailers.
    """
    from exo.cli import _hook

    raise typer.Exit(_hook([agent, event, *(args or [])]))
