"""`.exo/allowed_signers`: who may sign what, changed only by a human act signed with their own key.

Humans sign acts and commits (namespaces `exo-act`, `git`); brokers sign session records
(`exo-record`). Every change is recorded as a `signers.changed` event signed by the human who made
it, and doctor accepts a new version of the file only with such an event, signed by a human the
previous version lists. The first version has no previous one: the human who writes it is its
trust root (`exo keys add` lists them first), and doctor says which commit that was.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from exo.kernel import GovernanceError, InputError
from exo.kernel.fs import atomic_write, file_lock, read_file

from . import authority, events, keys, signing

HUMAN_NAMESPACES = (signing.ACT, signing.GIT)
BROKER_NAMESPACES = (signing.RECORD,)


class KeyView(BaseModel):
    principal: str = Field(description="Who the key signs as (human:EMAIL or broker:NAME).")
    public: str = Field(description="The public key (`type base64`).")
    line: str = Field(description="Its line for .exo/allowed_signers.")
    listed: bool = Field(description="Whether .exo/allowed_signers lists this key for this principal.")


class SignerView(BaseModel):
    line: int = Field(description="Line in .exo/allowed_signers.")
    principals: list[str] = Field(description="Who this key signs as.")
    namespaces: list[str] | None = Field(description="What it may sign (null: anything).")
    public: str = Field(description="The public key (`type base64`).")


class Keys(BaseModel):
    """This machine's broker key, the human's git signing key, and who the repository lists."""

    broker: KeyView | None = Field(description="This machine's broker key (null: not created).")
    human: KeyView | None = Field(description="git's SSH signing key (null: gpg.format=ssh and user.signingkey unset).")
    signers: list[SignerView] = Field(description="Every signer .exo/allowed_signers lists.")
    created: bool = Field(default=False, description="Whether this command created the broker key.")


class SignersChange(BaseModel):
    """A signed change of .exo/allowed_signers."""

    added: list[str] = Field(description="Lines added.")
    removed: list[str] = Field(description="Principals removed.")
    sha256: str = Field(description="sha256 of the new .exo/allowed_signers.")
    event: str | None = Field(description="The signed signers.changed event stream (null: nothing changed).")
    signed_by: str = Field(description="The human whose key signed the change.")


def listed(root: Path) -> list[signing.Signer]:
    """The signers of this worktree's .exo/allowed_signers (none if it does not exist).
    Raises GovernanceError(SIGNERS_INVALID)."""
    return signing.parse_signers(read_file(root / signing.ALLOWED_SIGNERS) or b"")


def show(root: Path, *, create_broker: str | None = None) -> Keys:
    """The keys and signers; with `create_broker` (a name, or "" for the host's), the broker key is
    created first if this machine has none."""
    created = False
    if create_broker is not None:
        created = keys.create_broker(create_broker or None)[1]
    signers = listed(root)
    views = [
        SignerView(line=s.line, principals=list(s.principals), namespaces=_list(s.namespaces), public=_public(s))
        for s in signers
    ]
    return Keys(
        broker=_view(keys.broker(), BROKER_NAMESPACES, signers),
        human=_view(keys.human(root), HUMAN_NAMESPACES, signers),
        signers=views,
        created=created,
    )


def add(
    root: Path, actor: str, *, broker: bool, human: bool, lines: list[str], now: datetime | None = None
) -> SignersChange:
    """List this machine's broker key, the human's own key and/or `lines` in .exo/allowed_signers, as
    a signed human act. When no human is listed yet, the human making the change is listed too (the
    trust root). Raises NOT_ALLOWED, SIGNING_KEY_MISSING, SIGNERS_INVALID, INVALID_ARGUMENT."""
    key = authority.human_act(root, actor, "signers", always_signed=True)
    assert key is not None
    wanted: list[str] = []
    if broker:
        machine = keys.broker()
        if machine is None:
            raise GovernanceError(
                "this machine has no broker key", code="SIGNING_KEY_MISSING", hint="create it: `exo keys create`"
            )
        wanted.append(machine.line(BROKER_NAMESPACES))
    for line in lines:
        parsed = signing.parse_signers(line.encode())
        if len(parsed) != 1:
            raise InputError(f"{line!r} is not one allowed_signers line", code="INVALID_ARGUMENT")
        wanted.append(parsed[0].text())
    with file_lock(root, root / signing.ALLOWED_SIGNERS):
        current = listed(root)
        if human or not any(authority.is_human(p) for s in current for p in s.principals):
            wanted.insert(0, key.line(HUMAN_NAMESPACES))
        if not wanted:
            raise InputError("nothing to add", code="INVALID_ARGUMENT", hint="exo keys add --broker (or --human, LINE)")
        have = {s.text() for s in current}
        added = [w for w in dict.fromkeys(wanted) if w not in have]
        if not added:  # already listed: nothing changes, nothing is recorded
            data = read_file(root / signing.ALLOWED_SIGNERS) or b""
            return SignersChange(added=[], removed=[], sha256=_sha(data), event=None, signed_by=key.principal)
        return _change(root, key, actor, [s.text() for s in current] + added, added, [], now)


def remove(root: Path, actor: str, principals: list[str], *, now: datetime | None = None) -> SignersChange:
    """Stop listing `principals` (each line naming one loses it; a line left with none goes), as a
    signed human act. Raises NOT_ALLOWED, SIGNING_KEY_MISSING, SIGNERS_INVALID, INVALID_ARGUMENT."""
    key = authority.human_act(root, actor, "signers", always_signed=True)
    assert key is not None
    gone = set(principals)
    with file_lock(root, root / signing.ALLOWED_SIGNERS):
        current = listed(root)
        unknown = sorted(gone - {p for s in current for p in s.principals})
        if unknown:
            raise InputError(f"{unknown[0]} is not listed in {signing.ALLOWED_SIGNERS}", code="INVALID_ARGUMENT")
        kept = []
        for signer in current:
            left = tuple(p for p in signer.principals if p not in gone)
            if left:
                kept.append(signing.Signer(left, signer.namespaces, signer.key_type, signer.key, signer.line).text())
        return _change(root, key, actor, kept, [], sorted(gone), now)


def _change(
    root: Path,
    key: keys.Key,
    actor: str,
    lines: list[str],
    added: list[str],
    removed: list[str],
    now: datetime | None,
) -> SignersChange:
    data = "".join(f"{line}\n" for line in lines).encode()
    signing.parse_signers(data)  # what is written is what doctor will read
    digest = _sha(data)
    atomic_write(root / signing.ALLOWED_SIGNERS, data)
    doc = {"actor": actor, "sha256": digest, "added": added, "removed": removed}
    stream = events.record(root, "signers.changed", doc, now=now, signer=key)
    return SignersChange(added=added, removed=removed, sha256=digest, event=stream, signed_by=key.principal)


def _view(key: keys.Key | None, namespaces: tuple[str, ...], signers: list[signing.Signer]) -> KeyView | None:
    if key is None:
        return None
    blob = key.public.split()[1]
    on = any(s.key == blob and key.principal in s.principals for s in signers)
    return KeyView(principal=key.principal, public=key.public, line=key.line(namespaces), listed=on)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _public(signer: signing.Signer) -> str:
    return f"{signer.key_type} {signer.key}"


def _list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)
