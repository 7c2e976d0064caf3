"""Locating a worktree's git directories from the files git writes (no git process, no pathlib)."""

from __future__ import annotations

import os

from ._errors import StateError


def git_dir(root: str) -> str:
    """The worktree's own git dir: `<root>/.git`, or where a linked worktree's `.git` file points."""
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    try:
        with open(dot_git, encoding="utf-8") as fh:
            text = fh.read().strip()
    except OSError as exc:
        raise StateError(f"{root} is not the root of a git worktree", code="NOT_A_REPOSITORY") from exc
    if not text.startswith("gitdir:"):
        raise StateError(f"{dot_git} is not a gitdir link", code="NOT_A_REPOSITORY")
    return os.path.realpath(os.path.join(root, text.removeprefix("gitdir:").strip()))


def common_dir(root: str) -> str:
    """The git common dir shared by every worktree of the clone (`commondir` of a linked worktree)."""
    own = git_dir(root)
    try:
        with open(os.path.join(own, "commondir"), encoding="utf-8") as fh:
            return os.path.realpath(os.path.join(own, fh.read().strip()))
    except FileNotFoundError:
        return own
