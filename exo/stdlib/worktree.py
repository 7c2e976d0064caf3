"""The worktree against HEAD: which paths differ (staged, on disk, untracked) and their git entries.

An entry is `(mode, blob id)` as git would record the path, so a state seen here can be recognised
later in any commit, whoever makes it (doctor compares blob ids, never file names or messages).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from . import git
from .history import Change, Entry, blob_id, raw

SUBMODULE = "160000"


@dataclass(frozen=True)
class State:
    """Every path where HEAD, the index and the files on disk do not all agree."""

    head: dict[str, Entry | None]  # the path at HEAD
    index: dict[str, Entry | None]  # what is staged for it
    files: dict[str, Entry | None]  # what is on disk

    def paths(self) -> list[str]:
        return sorted(self.files)

    def pair(self, path: str) -> tuple[Entry | None, Entry | None]:
        """(staged, on disk) for `path`, as session start remembers them."""
        return self.index[path], self.files[path]


def state(root: Path) -> State:
    """Read the worktree's differences from HEAD (three git calls and one `hash-object` batch)."""
    head: dict[str, Entry | None] = {}
    index: dict[str, Entry | None] = {}
    for path, (old, new) in _raw(root, "diff", "--cached", "HEAD").items():
        head[path], index[path] = old, new
    changed = _raw(root, "diff", "HEAD")
    for path, (old, _new) in changed.items():
        head.setdefault(path, old)
        index.setdefault(path, old)
    untracked = git.paths_z(root, "ls-files", "-z", "--others", "--exclude-standard")
    # git shows a nested repository only as its directory (`src/inner/`): name its `.git`, which no
    # fence lets an agent make (its hooks and config would run when a human works in it)
    untracked = [f"{p}.git" if p.endswith("/") and os.path.lexists(root / p / ".git") else p for p in untracked]
    for path in untracked:
        head.setdefault(path, None)
        index.setdefault(path, None)
    files = entries(root, sorted(set(head)))
    return State(head=head, index=index, files=files)


def entries(root: Path, paths: list[str]) -> dict[str, Entry | None]:
    """What git would record for each path as it is on disk now (None where it does not exist).

    Regular files go through `git hash-object`, so clean filters and line-ending conversion apply
    as they would to `git add`."""
    out: dict[str, Entry | None] = {}
    regular: list[tuple[str, str]] = []
    for path in paths:
        try:
            info = os.lstat(root / path)
        except OSError:
            out[path] = None
            continue
        if stat.S_ISLNK(info.st_mode):
            out[path] = ("120000", blob_id(os.fsencode(os.readlink(root / path))))
        elif stat.S_ISDIR(info.st_mode):
            out[path] = (SUBMODULE, "0" * 40)  # a nested repository: its content is not this one's
        else:
            regular.append((path, "100755" if info.st_mode & stat.S_IXUSR else "100644"))
    plain = [(p, m) for p, m in regular if "\n" not in p]
    if plain:
        text = git.run_bytes(root, "hash-object", "--stdin-paths", data="".join(p + "\n" for p, _ in plain).encode())
        for (path, mode), oid in zip(plain, text.decode().split(), strict=True):
            out[path] = (mode, oid)
    for path, mode in regular:
        if path not in out:  # a newline in the name: hashed as it is, without filters
            out[path] = (mode, blob_id((root / path).read_bytes()))
    return out


def _raw(root: Path, *args: str) -> dict[str, Change]:
    changes: dict[str, Change] = {}
    for _header, block in raw(git.run_bytes(root, *args, "--raw", "-z", "--no-renames", "--no-abbrev", "--")):
        changes.update(block)
    return changes
