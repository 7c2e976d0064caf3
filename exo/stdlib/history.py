"""Reading history in batches: commits with their parents, trailers and changed paths, trees and
blobs — one git process per kind of question, never one per commit (doctor reads thousands).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from . import git

Entry = tuple[str, str]  # (mode, object id) of a path in a tree; None where the path is absent
Change = tuple["Entry | None", "Entry | None"]  # (in the parent, in the commit)

_HEX = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_TRAILER = re.compile(r"(Exo-[A-Za-z-]+): (.*)")
ABSENT_MODE = "000000"


@dataclass(frozen=True, slots=True)
class Commit:
    """One commit as doctor and finish judge it."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    subject: str
    trailers: dict[str, str]  # Exo-* trailers as git parses them (the last of a key wins)
    diffs: tuple[dict[str, Change], ...]  # one per parent (against nothing for a root commit)

    @property
    def short(self) -> str:
        return self.sha[:12]

    def entry(self, path: str) -> Entry | None:
        """The path's entry in this commit (known wherever some diff names the path)."""
        for diff in self.diffs:
            if path in diff:
                return diff[path][1]
        raise KeyError(path)

    def changed(self) -> list[str]:
        """Paths that differ from every parent: the only ones a commit can have brought in."""
        if not self.diffs:
            return []
        common = set(self.diffs[0])
        for diff in self.diffs[1:]:
            common &= set(diff)
        return sorted(common)

    def touched(self) -> set[str]:
        """Paths that differ from at least one parent."""
        return {path for diff in self.diffs for path in diff}


def trailers_of(root: Path, commit: str) -> dict[str, str]:
    """The Exo-* trailers of one commit (a full object id)."""
    if not _HEX.fullmatch(commit):
        raise ValueError(f"not a full object id: {commit!r}")
    return _trailers(git.run(root, "log", "-1", "--format=%(trailers:only,unfold)", commit, "--"))


def _trailers(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _TRAILER.fullmatch(line.strip())
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def commits(root: Path, revs: list[str]) -> list[Commit]:
    """The commits `git log revs` lists (revs are full object ids, optionally `^`-prefixed), parents
    before children, each with its diff against each parent."""
    for rev in revs:
        if not _HEX.fullmatch(rev.removeprefix("^")):
            raise ValueError(f"not a full object id: {rev!r}")  # never a name: nothing reaches git as an option
    if not revs:
        return []
    text = git.run(
        root, "log", "--topo-order", "--reverse", "--format=%x1e%H %T %P%x1f%s%x1f%(trailers:only,unfold)", *revs, "--"
    )
    heads: list[tuple[str, str, tuple[str, ...], str, dict[str, str]]] = []
    for chunk in text.split("\x1e")[1:]:
        ids, subject, trailers = chunk.split("\x1f", 2)
        sha, tree_id, *parents = ids.split()
        heads.append((sha, tree_id, tuple(parents), subject, _trailers(trailers)))
    diffs = _diffs(root, [(head[0], head[2]) for head in heads])
    return [
        Commit(sha, tree_id, parents, subject, trailers, diffs[sha])
        for sha, tree_id, parents, subject, trailers in heads
    ]


def _diffs(root: Path, wanted: list[tuple[str, tuple[str, ...]]]) -> dict[str, tuple[dict[str, Change], ...]]:
    """One `git diff-tree --stdin` for every (commit, parent) pair: raw entries, no renames."""
    lines = []
    for sha, parents in wanted:
        lines += [f"{sha} {parent}" for parent in parents] or [sha]
    if not lines:
        return {}
    out = git.run_bytes(
        root,
        "diff-tree",
        "--stdin",
        "-r",
        "--raw",
        "-z",
        "--no-renames",
        "--no-abbrev",
        "--always",
        "--root",
        data=("\n".join(lines) + "\n").encode(),
    )
    blocks = [changes for _header, changes in raw(out)]  # `--always`: one block per line, in order
    out_by: dict[str, tuple[dict[str, Change], ...]] = {}
    at = 0
    for sha, parents in wanted:
        count = max(1, len(parents))
        out_by[sha] = tuple(blocks[at : at + count])
        at += count
    return out_by


def raw(out: bytes) -> list[tuple[str | None, dict[str, Change]]]:
    """Parse `--raw -z --no-renames` output into (header, {path: change}) blocks; a header is a line
    that is not an entry (the commit id `diff-tree --stdin` prints), None before the first one."""
    blocks: list[tuple[str | None, dict[str, Change]]] = [(None, {})]
    tokens = out.decode("utf-8", "surrogateescape").split("\0")
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith(":"):  # ":old_mode new_mode old new status", then the path
            old_mode, new_mode, old, new, _status = token[1:].split(" ", 4)
            blocks[-1][1][tokens[i + 1]] = (_entry(old_mode, old), _entry(new_mode, new))
            i += 2
            continue
        if token.strip():
            blocks.append((token.strip(), {}))
        i += 1
    return blocks if blocks[0][1] else blocks[1:]


def _entry(mode: str, oid: str) -> Entry | None:
    return None if mode == ABSENT_MODE else (mode, oid)


def tree(root: Path, commit: str, under: str) -> dict[str, Entry]:
    """Every entry below `under` (a directory, repo-relative) in `commit`'s tree."""
    return at(root, commit, [under])


def at(root: Path, commit: str, paths: list[str]) -> dict[str, Entry]:
    """The entries of `paths` (files, or directories listed recursively) in `commit` (a full id or
    HEAD); absent ones are left out. Paths are literal, never pathspec magic."""
    if not paths:
        return {}
    out = git.run_bytes(root, "--literal-pathspecs", "ls-tree", "-r", "-z", "--full-tree", commit, "--", *paths)
    entries: dict[str, Entry] = {}
    for item in out.decode("utf-8", "surrogateescape").split("\0"):
        if item:
            meta, path = item.split("\t", 1)
            mode, _kind, oid = meta.split(" ")
            entries[path] = (mode, oid)
    return entries


def blob_id(data: bytes, oid_length: int = 40) -> str:
    """The object id git gives a blob holding `data` (sha1, or sha256 for 64-digit ids)."""
    algo = "sha256" if oid_length == 64 else "sha1"
    return hashlib.new(algo, b"blob %d\0" % len(data) + data).hexdigest()
