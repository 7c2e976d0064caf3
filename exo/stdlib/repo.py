"""Which repository and which actor a command acts for."""

from __future__ import annotations

import os
from pathlib import Path

from exo.kernel import ids

from . import git, identity


def find_root(path: str | os.PathLike[str] | None) -> Path:
    """The worktree root containing `path` (default: the current directory).

    Raises StateError(NOT_A_REPOSITORY).
    """
    return git.toplevel(Path(path or ".").absolute())


def resolve_actor(explicit: str | None, root: Path) -> str:
    """`explicit` (from --actor or EXO_ACTOR) if given, else the harness's agent when this process
    runs under one, else `human:<git user.email>` (see `identity`).

    Raises InputError(INVALID_ACTOR) for a malformed actor and GovernanceError(NOT_ALLOWED) for a
    human name claimed under an agent.
    """
    return identity.actor(explicit, os.environ, lambda: ids.actor(identity.git_user(root)))


def user_path(root: Path, path: str) -> str:
    """A path as a user typed it: absolute, or relative to the current directory when that is inside
    `root` (else relative to `root`). Not normalized: the fence canonicalizes it."""
    if os.path.isabs(path):
        return path
    cwd = Path.cwd()
    base = cwd if cwd == root or root in cwd.parents else root
    return os.path.join(base, path)
