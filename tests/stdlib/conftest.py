"""Fixtures for the signature tests: real ssh-keygen keys, and a governed repository whose git signs with one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from exo.stdlib import install
from tests.conftest import git


def ssh_key(path: Path, comment: str = "key") -> Path:
    """A new ed25519 key pair at `path` and `path`.pub, without a passphrase."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


def use_key(root: Path, key: Path) -> None:
    git(root, "config", "gpg.format", "ssh")
    git(root, "config", "user.signingkey", f"{key}.pub")


@pytest.fixture
def keyed(governed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`governed` with exo's git hooks, and git configured to sign with the human's own SSH key."""
    from tests.stdlib.test_doctor import EXE

    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    install.install(governed, git_hooks=True, claude=False, cursor=False, exe=EXE)
    use_key(governed, ssh_key(tmp_path / "human"))
    return governed
