"""The `exo` command line: a thin Typer adapter over exo.stdlib.

Importing this package loads nothing heavy; `main` imports the Typer application when it runs, so
that fast paths (agent and git hooks) can be dispatched before Typer is paid for.
"""

from __future__ import annotations

HOOK_AGENTS = ("claude", "codex", "cursor", "gemini", "git")


def main() -> None:
    """Console entry point: maps any unforeseen exception to `error[INTERNAL]` and exit 3.

    `exo hook claude|cursor EVENT` is dispatched before Typer is imported: it runs on every agent
    edit and must cost little more than starting Python.
    """
    import os
    import sys

    args = sys.argv[1:]
    if len(args) >= 3 and args[0] == "hook" and args[1] in HOOK_AGENTS and "--help" not in args:
        raise SystemExit(_hook(args[1:]))
    import gc

    # A command is one short process: cyclic garbage collection only costs time here (about 15% of
    # listing 10,000 tickets) and frees nothing that process exit would not.
    gc.disable()
    try:
        import typer.main

        # Importing the command modules registers their commands.
        from . import (  # noqa: F401
            adapters,
            audit,
            claims,
            completion,
            demo,
            doctor,
            governance,
            hooks,
            install,
            keys,
            run,
            sessions,
            tickets,
        )
        from .app import app

        cli = typer.main.get_command(app)
        if completion.COMPLETE_VAR in os.environ:  # the completion script asking what may come next
            raise SystemExit(completion.complete(cli, os.environ[completion.COMPLETE_VAR]))
        try:
            code = cli.main(args, prog_name="exo", standalone_mode=False)
        except typer.Abort:
            print("Aborted!", file=sys.stderr)
            raise SystemExit(1) from None
        except Exception as exc:
            from .common import is_usage_error, usage_error

            if is_usage_error(exc):
                usage_error(exc, args)
            raise
        raise SystemExit(code if isinstance(code, int) else 0)
    except BrokenPipeError:
        from .common import reader_gone

        reader_gone()
    except Exception as exc:
        from .common import internal_error

        internal_error(exc)


def _hook(args: list[str]) -> int:
    import os
    import sys

    if args[0] == "git":
        from exo.stdlib import githooks

        actor = _option(args, "--actor") or os.environ.get("EXO_ACTOR") or None
        return githooks.run(_without_common_options(args[1:]), os.getcwd(), actor, os.environ, sys.stderr)
    from exo.stdlib.hooks import main as agent_hook

    return agent_hook(_without_common_options(args))


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _without_common_options(args: list[str]) -> list[str]:
    """Agent hooks accept --json, --repo and --actor like every command; they take the repository
    from the hook input's cwd and the actor from the open session, so the options change nothing."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--repo", "--actor"):
            skip = True
        elif arg != "--json" and not arg.startswith(("--repo=", "--actor=")):
            out.append(arg)
    return out
