"""What every command shares: the --json/--repo/--actor options, output, and error rendering."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from exo.kernel import ExoError, StateError

if TYPE_CHECKING:
    from pydantic import BaseModel

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (errors too).")]
RepoOpt = Annotated[
    Path | None,
    typer.Option(
        "--repo", help="Repository to act on (default: the one containing the current directory).", show_default=False
    ),
]
ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--actor",
        envvar="EXO_ACTOR",
        show_default=False,
        help="Who is acting: agent:NAME or human:EMAIL (default: $EXO_ACTOR, else human:<git user.email>).",
    ),
]

R = TypeVar("R", bound="BaseModel")


class Context:
    """The repository and actor of one command, resolved on first use."""

    def __init__(self, repo: Path | None, actor: str | None) -> None:
        self._repo, self._actor = repo, actor
        self._root: Path | None = None

    @property
    def root(self) -> Path:
        if self._root is None:
            from exo.stdlib.repo import find_root

            self._root = find_root(self._repo)
        return self._root

    @property
    def actor(self) -> str:
        from exo.stdlib.repo import resolve_actor

        return resolve_actor(self._actor, self.root)


def fail(exc: ExoError, as_json: bool) -> NoReturn:
    """Print `error[CODE]: message` and `hint:` on stderr (and the error as JSON on stdout) and exit."""
    say_error(exc, as_json)
    raise typer.Exit(exc.exit_status)


def say_error(exc: ExoError, as_json: bool) -> None:
    if as_json:
        import json

        typer.echo(json.dumps({"ok": False, "error": exc.to_dict(), **exc.details()}, indent=2))
    typer.echo(f"error[{exc.code}]: {exc.message}", err=True)
    typer.echo(f"hint: {exc.hint}", err=True)


def is_usage_error(exc: Exception) -> bool:
    """Whether `exc` is Click's usage error (Click's own, or the copy newer Typer releases carry)."""
    import importlib

    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            if isinstance(exc, importlib.import_module(module).UsageError):
                return True
        except ImportError:
            continue
    return False


def usage_error(exc: Exception, args: list[str]) -> NoReturn:
    """A command line Click cannot parse (unknown option or command, missing or bad argument), in
    exo's error format rather than Click's usage text: `INVALID_ARGUMENT`, exit 2. A group run
    without a command prints its help instead, still exit 2."""
    from exo.kernel import InputError

    if type(exc).__name__ == "NoArgsIsHelpError":
        typer.echo(exc.format_message())  # type: ignore[attr-defined]
        raise SystemExit(2)
    context = getattr(exc, "ctx", None)
    where = context.command_path if context is not None else "exo"
    message = exc.format_message()  # type: ignore[attr-defined]
    error = InputError(f"{where}: {message}", code="INVALID_ARGUMENT", hint=f"see `{where} --help`")
    say_error(error, "--json" in args)
    raise SystemExit(error.exit_status)


def run(as_json: bool, action: Callable[[], R], render: Callable[[R], str]) -> R:
    """Run `action`, print its result (JSON or human text) and exit 1 if the result says `ok: false`."""
    try:
        result = action()
        if as_json:
            typer.echo(result.model_dump_json(indent=2))
        else:
            text = render(result)
            if text:
                typer.echo(text)
    except ExoError as exc:
        fail(exc, as_json)
    except BrokenPipeError:
        reader_gone()
    except OSError as exc:  # a filesystem state nobody foresaw: still a coded error, not a traceback
        fail(os_error(exc), as_json)
    if getattr(result, "ok", True) is False:
        raise typer.Exit(1)
    return result


# What an agent calls instead of a command that writes governance state (the sandbox refuses it).
BROKERED = {
    "next": "next",
    "session-start": "session_start",
    "session-heartbeat": "session_heartbeat (under `exo run` the supervisor renews the lease itself)",
    "session-finish": "session_finish",
    "session-handoff": "session_handoff",
    "ticket": "ticket_create",
}


def reader_gone() -> NoReturn:
    """Whoever read the output stopped reading (`exo demo | head`): stop quietly, as other
    command-line tools do, with SIGPIPE's exit status."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so that flushing at exit does not fail again
    raise SystemExit(141)


def os_error(exc: OSError) -> StateError:
    import errno

    where = f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    if exc.errno != errno.EROFS:
        return StateError(where, code="IO_ERROR")
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    tool = BROKERED.get(command)
    hint = f"call exo's MCP tool {tool} instead" if tool else "ask a human to run it outside the agent's sandbox"
    message = f"`exo {command}` changes governance state, which is read-only in the agent's sandbox ({where})"
    return StateError(message, code="SANDBOXED", hint=hint)


def internal_error(exc: BaseException) -> NoReturn:
    """The last resort for a bug: a coded error, exit 3, the traceback only with EXO_DEBUG=1."""
    import os
    import traceback

    if os.environ.get("EXO_DEBUG"):
        traceback.print_exception(exc)
    print(f"error[INTERNAL]: {type(exc).__name__}: {exc}", file=sys.stderr)
    print("hint: this is a bug in exo: rerun with EXO_DEBUG=1 and report the traceback", file=sys.stderr)
    raise SystemExit(3)
