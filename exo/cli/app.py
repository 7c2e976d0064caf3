"""The Typer application and its sub-apps; command modules attach themselves to these."""

from __future__ import annotations

import typer

HELP = """exo governs AI coding agents in a git repository.

Every agent session runs under a ticket, a lease on it, a scope fence, a compiled constitution and a
tamper-evident audit log, all kept as plain files in .exo/ (runtime leases live under .git/exo/).

Exit codes: 0 ok, 1 refused or failed check, 2 bad input, 3 internal error.
Errors print `error[CODE]: message` and a `hint:` line on stderr.
"""

# A group run without a command prints its help and exits 2 (a usage error), whichever click is
# installed: click 8.1's `no_args_is_help` exits 0, 8.2's exits 2, so exo decides it itself.
app = typer.Typer(
    name="exo",
    help=HELP,
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
audit_app = typer.Typer(
    help="Verify and show the hash-chained audit log.", invoke_without_command=True, rich_markup_mode=None
)
app.add_typer(audit_app, name="audit")
ticket_app = typer.Typer(
    help="Create, list, show and update tickets.", invoke_without_command=True, rich_markup_mode=None
)
app.add_typer(ticket_app, name="ticket")
keys_app = typer.Typer(
    help="Signing keys: this machine's broker key, your git SSH key, and who .exo/allowed_signers lists.",
    invoke_without_command=True,
    rich_markup_mode=None,
)
app.add_typer(keys_app, name="keys")
claims_app = typer.Typer(
    help="Ticket claims on the git remote (refs/exo/claims/*): `exo status` shows them.",
    invoke_without_command=True,
    rich_markup_mode=None,
)
app.add_typer(claims_app, name="claims")


def _version(asked: bool) -> None:
    if asked:
        from exo import __version__

        typer.echo(f"exo {__version__}")
        raise typer.Exit()


def help_without_command(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print exo's version and exit."
    ),
) -> None:
    """exo governs AI coding agents in a git repository."""
    help_without_command(ctx)


audit_app.callback()(help_without_command)
ticket_app.callback()(help_without_command)
keys_app.callback()(help_without_command)
claims_app.callback()(help_without_command)
