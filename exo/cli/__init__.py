"""The `exo` command line: a thin Typer adapter over exo.stdlib."""

from __future__ import annotations

from . import audit, demo, governance
from .app import app
from .common import internal_error

__all__ = ["app", "audit", "demo", "governance", "main"]


def main() -> None:
    """Console entry point: maps any unforeseen exception to `error[INTERNAL]` and exit 3."""
    try:
        app()
    except Exception as exc:
        internal_error(exc)
