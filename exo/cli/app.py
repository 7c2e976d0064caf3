"""The Typer application and its sub-apps; command modules attach themselves to these."""

from __future__ import annotations

import typer

HELP = """exo governs AI coding agents in a git repository.

Every agent session runs under a ticket, a lease on it, a scope fence, a compiled constitution and a
tamper-evident audit log, all kept as plain files in .exo/ (runtime leases live under .git/exo/).

Exit codes: 0 ok, 1 refused or failed check, 2 bad input, 3 internal error.
Errors print `error[CODE]: message` and a `hint:` line on stderr.
"""

app = typer.Typer(
    name="exo",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
audit_app = typer.Typer(
    help="Verify and show the hash-chained audit log.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(audit_app, name="audit")
ticket_app = typer.Typer(help="Create, list, show and update tickets.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(ticket_app, name="ticket")


def _version(asked: bool) -> None:
    if asked:
        from exo import __version__

        typer.echo(f"exo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print exo's version and exit."
    ),
) -> None:
    """exo governs AI coding agents in a git repository."""
