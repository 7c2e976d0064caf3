"""The `exo` command line: a thin Typer adapter over exo.stdlib.

Importing this package loads nothing heavy; `main` imports the Typer application when it runs, so
that fast paths (agent and git hooks) can be dispatched before Typer is paid for.
"""

from __future__ import annotations


def main() -> None:
    """Console entry point: maps any unforeseen exception to `error[INTERNAL]` and exit 3."""
    import gc

    # A command is one short process: cyclic garbage collection only costs time here (about 15% of
    # listing 10,000 tickets) and frees nothing that process exit would not.
    gc.disable()
    try:
        from . import audit, demo, governance, sessions, tickets  # noqa: F401 - registering their commands
        from .app import app

        app()
    except Exception as exc:
        from .common import internal_error

        internal_error(exc)
