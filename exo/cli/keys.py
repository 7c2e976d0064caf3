"""`exo keys create|show|list|add|remove`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import keys_app
from .common import ActorOpt, Context, JsonOpt, RepoOpt, run

if TYPE_CHECKING:
    from exo.stdlib.signers import Keys, KeyView, SignersChange


def _key(what: str, key: KeyView | None, missing: str) -> str:
    if key is None:
        return f"{what}: none ({missing})"
    state = "listed in .exo/allowed_signers" if key.listed else "NOT listed (`exo keys add`)"
    return f"{what}: {key.principal}, {state}\n  {key.line}"


def _keys_text(k: Keys) -> str:
    lines = ["created this machine's broker key"] if k.created else []
    lines.append(_key("broker (this machine)", k.broker, "`exo keys create`"))
    lines.append(_key("you (git signing key)", k.human, "git config gpg.format ssh; git config user.signingkey KEY"))
    return "\n".join(lines)


def _list_text(k: Keys) -> str:
    if not k.signers:
        return ".exo/allowed_signers lists nobody (a human starts it: `exo keys add --broker`)"
    rows = []
    for s in k.signers:
        what = ",".join(s.namespaces) if s.namespaces is not None else "anything"
        rows.append(f"line {s.line:<4} {','.join(s.principals):<40} signs {what:<16} {s.public[:40]}...")
    return "\n".join(rows)


def _change_text(c: SignersChange) -> str:
    if c.event is None:
        return "already listed: nothing changed"
    lines = [f"added   {line}" for line in c.added] + [f"removed {p}" for p in c.removed]
    lines.append(f"signed by {c.signed_by}: {c.event}")
    return "\n".join([*lines, "next: commit .exo/ (the list, the event and its signature)"])


@keys_app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="Broker name (default: this host's name).")] = "",
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Create this machine's broker key, if it has none, and print its allowed_signers line.

    The key (ed25519) lives in ~/.config/exo/broker/, outside every repository and unreadable in
    the agent's sandbox; exo's MCP server and hooks sign the session records they close with it.
    """
    from exo.stdlib import signers

    ctx = Context(repo, actor)
    run(json_, lambda: signers.show(ctx.root, create_broker=name), _keys_text)


@keys_app.command()
def show(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """Show this machine's broker key and your git signing key, and whether each is listed."""
    from exo.stdlib import signers

    ctx = Context(repo, actor)
    run(json_, lambda: signers.show(ctx.root), _keys_text)


@keys_app.command("list")
def list_(json_: JsonOpt = False, repo: RepoOpt = None, actor: ActorOpt = None) -> None:
    """List who .exo/allowed_signers lets sign what."""
    from exo.stdlib import signers

    ctx = Context(repo, actor)
    run(json_, lambda: signers.show(ctx.root), _list_text)


@keys_app.command()
def add(
    lines: Annotated[
        list[str] | None,
        typer.Argument(help="allowed_signers lines to add (quote each).", metavar="LINE", show_default=False),
    ] = None,
    broker: Annotated[bool, typer.Option("--broker", help="Add this machine's broker key.")] = False,
    human: Annotated[bool, typer.Option("--human", help="Add your own git signing key.")] = False,
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """List keys in .exo/allowed_signers: a human act, signed with your git SSH signing key.

    The first human to add a key is listed too: the trust root. Commit the file with the
    `signers.changed` event this writes; CI accepts a new list only with that signed event.

    Example: exo keys add --broker
    """
    from exo.stdlib import signers

    ctx = Context(repo, actor)
    run(json_, lambda: signers.add(ctx.root, ctx.actor, broker=broker, human=human, lines=lines or []), _change_text)


@keys_app.command()
def remove(
    principals: Annotated[list[str], typer.Argument(help="Principals to stop listing.", metavar="PRINCIPAL")],
    json_: JsonOpt = False,
    repo: RepoOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Stop listing principals in .exo/allowed_signers: a human act, signed with your key."""
    from exo.stdlib import signers

    ctx = Context(repo, actor)
    run(json_, lambda: signers.remove(ctx.root, ctx.actor, principals), _change_text)
