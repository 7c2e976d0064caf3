"""`exo completion SHELL`: the shell's completion script, and the completions it asks for.

The script calls `exo` back with `_EXO_COMPLETE=complete_<shell>` and the words typed so far;
`main` answers that before running any command. Typer's completion classes do the work, in
whichever click the installed Typer runs on (click itself, or the copy newer Typer releases carry).
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer

from .app import app
from .common import JsonOpt, run

COMPLETE_VAR = "_EXO_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def _completion_class(cli: Any, shell: str) -> Any:
    from typer.completion import completion_init  # type: ignore[attr-defined]  # public, re-exported untyped

    completion_init()  # Typer's classes for each shell, in the click it runs on
    base = next(c for c in type(cli).__mro__ if c.__module__ in ("click.core", "typer._click.core"))
    package = base.__module__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}.shell_completion").get_completion_class(shell)


def complete(cli: Any, instruction: str) -> int:
    """Answer the completion script's request (`complete_bash`, as Typer's scripts say, or click's
    `bash_complete`): exit status."""
    first, _, second = instruction.partition("_")
    action, shell = (first, second) if first in ("source", "complete") else (second, first)
    cls = _completion_class(cli, shell) if shell in SHELLS else None
    if cls is None or action not in ("source", "complete"):
        typer.echo(f"error[INVALID_ARGUMENT]: exo completes {', '.join(SHELLS)}, not {instruction!r}", err=True)
        return 2
    comp = cls(cli, {}, "exo", COMPLETE_VAR)
    typer.echo(comp.source() if action == "source" else comp.complete())
    return 0


@app.command()
def completion(
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", show_default=False)],
    json_: JsonOpt = False,
) -> None:
    """Print the shell completion script for exo's commands and options.

    bash: eval "$(exo completion bash)" in ~/.bashrc. zsh: eval "$(exo completion zsh)" in
    ~/.zshrc. fish: exo completion fish > ~/.config/fish/completions/exo.fish
    """
    import typer.main
    from pydantic import BaseModel, Field  # off the path of `exo --help` and the hooks

    from exo.kernel import InputError

    class Script(BaseModel):
        shell: str = Field(description="The shell the script is for.")
        script: str = Field(description="Source it in that shell.")

    def script() -> Script:
        if shell not in SHELLS:
            raise InputError(f"no completion for {shell!r}", code="INVALID_ARGUMENT", hint=f"use {', '.join(SHELLS)}")
        source = _completion_class(typer.main.get_command(app), shell)
        return Script(shell=shell, script=source(typer.main.get_command(app), {}, "exo", COMPLETE_VAR).source())

    run(json_, script, lambda r: r.script)
