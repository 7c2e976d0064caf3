"""`exo run -- CMD…`: an agent's command under its session, in the sandbox compiled from the fence."""

from __future__ import annotations

from typing import Annotated

import typer

from exo.kernel import ExoError

from .app import app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, fail, os_error


@app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run_(
    command: Annotated[list[str] | None, typer.Argument(metavar="-- CMD...", show_default=False)] = None,
    no_sandbox: Annotated[
        bool,
        typer.Option("--no-sandbox", help="Run without the OS sandbox (humans only, outside any agent; audited)."),
    ] = False,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Run an agent's command under this worktree's open session, sandboxed by its fence.

    The command and its children can write only the directories of the session's scope, git's
    objects, refs and index, and a private temp directory; `.exo/`, the runtime directory, git's
    config, hooks and info, and every protected path stay read-only (docs/security.md). exo renews
    the session's lease while the command runs and exits with the command's exit code. Without
    bubblewrap it refuses (SANDBOX_UNAVAILABLE) unless a human passes --no-sandbox.
    """
    from exo.stdlib import sandbox

    ctx = Context(repo, actor)

    try:
        result = sandbox.run(ctx.root, ctx.actor, command or [], no_sandbox=no_sandbox)
    except ExoError as exc:
        fail(exc, json_)
    except OSError as exc:  # e.g. the audit write of a run nested inside a sandbox
        fail(os_error(exc), json_)
    if json_:
        typer.echo(result.model_dump_json(indent=2))
    else:
        for path in result.removed:
            typer.echo(f"exo run: the command created {path}, where git reads settings; moved aside", err=True)
        if result.exit_code:
            typer.echo(f"exo run: the command exited {result.exit_code} (session {result.sid})", err=True)
    raise typer.Exit(result.exit_code or (1 if result.removed else 0))  # the command's own exit code
