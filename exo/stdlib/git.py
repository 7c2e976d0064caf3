"""All git access: one place that starts git processes and translates their failures."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from exo.kernel import StateError

# Variables git exports while a hook runs; they would point a nested git call at the wrong repository.
_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_OBJECT_DIRECTORY")


def run(cwd: Path, *args: str, check: bool = True, isolated: bool = False) -> str:
    """Run `git args` in `cwd` and return stdout (trailing newline stripped).

    `isolated` drops the repository variables a surrounding git hook exported. Raises
    StateError(IO_ERROR) when git is missing or, with `check`, exits non-zero.
    """
    env = None
    if isolated:
        env = {k: v for k, v in os.environ.items() if k not in _REPO_VARS}
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
    except OSError as exc:
        raise StateError(f"cannot run git: {exc.strerror}", code="IO_ERROR", hint="install git") from exc
    if check and done.returncode != 0:
        raise StateError(f"git {' '.join(args)} failed: {done.stderr.strip()}", code="IO_ERROR")
    return done.stdout.rstrip("\n")


def toplevel(start: Path) -> Path:
    """The root of the worktree containing `start`. Raises StateError(NOT_A_REPOSITORY)."""
    if not start.is_dir():
        raise StateError(f"{start} is not a directory", code="NOT_A_REPOSITORY")
    try:
        out = run(start, "rev-parse", "--show-toplevel")
    except StateError as exc:
        raise StateError(f"{start} is not inside a git repository", code="NOT_A_REPOSITORY") from exc
    if not out:
        raise StateError(f"{start} is inside a .git directory, not a worktree", code="NOT_A_REPOSITORY")
    return Path(out)


def config_value(root: Path, key: str) -> str | None:
    """`git config --get key` in `root`, or None when unset."""
    value = run(root, "config", "--get", key, check=False)
    return value or None


def init(path: Path) -> None:
    """Create a repository at `path` with a fixed identity (for throwaway repositories)."""
    run(path, "init", "-q", "-b", "main", isolated=True)
    run(path, "config", "user.email", "demo@exo.invalid", isolated=True)
    run(path, "config", "user.name", "exo demo", isolated=True)
