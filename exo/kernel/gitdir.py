"""Locating a worktree's git directories from the files git writes (no git process, no pathlib)."""

from __future__ import annotations

import os

from ._errors import StateError
from .safe import read_regular


def git_dir(root: str) -> str:
    """The worktree's own git dir: `<root>/.git`, or where a linked worktree's `.git` file points."""
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    try:
        text = read_regular(dot_git, 4096).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"{root} is not the root of a git worktree", code="NOT_A_REPOSITORY") from exc
    if not text.startswith("gitdir:"):
        raise StateError(f"{dot_git} is not a gitdir link", code="NOT_A_REPOSITORY")
    return os.path.realpath(os.path.join(root, text.removeprefix("gitdir:").strip()))


def common_dir(root: str) -> str:
    """The git common dir shared by every worktree of the clone (`commondir` of a linked worktree)."""
    return common_of(git_dir(root))


def common_of(own: str) -> str:
    """The git common dir of the worktree whose own git dir is `own`."""
    try:
        text = read_regular(os.path.join(own, "commondir"), 4096).decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return own
    except OSError as exc:
        raise StateError(f"{own}/commondir is not a readable file: {exc.strerror}", code="NOT_A_REPOSITORY") from exc
    return os.path.realpath(os.path.join(own, text.strip()))
