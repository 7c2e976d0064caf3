"""The keys exo signs with: this machine's broker key, and the human's own git SSH signing key.

The broker key (ed25519, no passphrase: exo processes use it unattended) lives outside every
repository, under `$XDG_CONFIG_HOME/exo/broker/` (default `~/.config/exo/broker/`), and the agent's
sandbox cannot read that directory. Its principal, `broker:NAME`, is the public key's comment.
The human key is whatever git signs commits with (`gpg.format=ssh`, `user.signingkey`): a key file,
a public key whose private half ssh-agent holds, or a `key::` literal; its principal is
`human:<user.email>`. exo never creates or copies a human's key.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from exo.kernel import GovernanceError, ids

from . import git, identity, signing

BROKER_FILE = "id_ed25519"


@dataclass(frozen=True, slots=True)
class Key:
    """A key exo can sign with: its principal, public key (`type base64`) and where ssh-keygen finds it."""

    principal: str
    public: str
    source: str  # a file path, or `key::…` for a key only ssh-agent holds

    def line(self, namespaces: tuple[str, ...]) -> str:
        """This key's line for `.exo/allowed_signers`."""
        return f'{self.principal} namespaces="{",".join(namespaces)}" {self.public}'

    def sign(self, namespace: str, data: bytes) -> bytes:
        with _key_file(self.source) as path:
            return signing.sign(path, namespace, data)


def broker_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "exo" / "broker"


def broker() -> Key | None:
    """This machine's broker key, if it was created."""
    private = broker_dir() / BROKER_FILE
    try:
        words = (broker_dir() / f"{BROKER_FILE}.pub").read_text().split()
    except (OSError, UnicodeDecodeError):
        return None
    if len(words) < 3 or not private.is_file() or not ids.ACTOR_RE.fullmatch(words[2]):
        return None
    return Key(principal=words[2], public=f"{words[0]} {words[1]}", source=str(private))


def create_broker(name: str | None = None) -> tuple[Key, bool]:
    """This machine's broker key, created if missing: (key, whether it was created now)."""
    existing = broker()
    if existing is not None:
        return existing, False
    principal = ids.actor(f"broker:{name}") if name else identity.label("broker", socket.gethostname(), 64, "machine")
    directory = broker_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    for leftover in (directory / BROKER_FILE, directory / f"{BROKER_FILE}.pub"):
        leftover.unlink(missing_ok=True)  # half a pair from an interrupted create
    signing.generate(directory / BROKER_FILE, principal)
    made = broker()
    assert made is not None
    return made, True


def human(root: Path) -> Key | None:
    """The human's git SSH signing key (`gpg.format=ssh` and `user.signingkey`), if configured."""
    if (git.config_value(root, "gpg.format") or "openpgp") != "ssh":
        return None
    configured = git.config_value(root, "user.signingkey")
    if not configured:
        return None
    literal = configured.removeprefix("key::")
    public: str | None
    if literal != configured or literal.startswith(("ssh-", "ecdsa-", "sk-")):
        public, source = " ".join(literal.split()[:2]), f"key::{literal}"
    else:
        path = Path(configured).expanduser()
        public, source = _public_of(path), str(path)
    if public is None or len(public.split()) != 2:
        return None
    return Key(principal=identity.git_user(root), public=public, source=source)


def _public_of(path: Path) -> str | None:
    for candidate in (path, path.with_name(path.name + ".pub")):
        try:
            words = candidate.read_text().split()
        except (OSError, UnicodeDecodeError):
            continue
        if len(words) >= 2 and words[0] in signing.KEY_TYPES:
            return f"{words[0]} {words[1]}"
    return None


def require_human(root: Path) -> Key:
    """The human's signing key, or GovernanceError(SIGNING_KEY_MISSING) saying how to set one up."""
    key = human(root)
    if key is None:
        raise GovernanceError(
            "this act must be signed, and git has no SSH signing key configured",
            code="SIGNING_KEY_MISSING",
            hint="git config gpg.format ssh && git config user.signingkey ~/.ssh/id_ed25519.pub "
            "(then list it: `exo keys add --human`)",
        )
    return key


@contextmanager
def _key_file(source: str) -> Iterator[str]:
    if not source.startswith("key::"):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="exo-key-") as tmp:
        path = Path(tmp) / "key.pub"
        path.write_text(source.removeprefix("key::") + "\n")
        yield str(path)
