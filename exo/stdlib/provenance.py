"""Provenance: where the content a commit brings comes from — a parent, a session, a human — or nobody.

For every path a commit changes against all of its parents, the new content must be:

- inherited: what one parent has (so a clean merge, local or made by a forge, brings nothing), or
  what git's three-way merge of the parents gives (both sides changed one file in different places);
- produced by a session: a state a session record at the range's head lists for that path (its
  products), inside that session's fence — wherever the commit came from (amend, rebase,
  cherry-pick, squash, `git am`); a rebase that merged the session's change with upstream changes
  is recognised by recomputing that three-way merge;
- a change by an actor the commit policy exempts (by default a human), in a commit stamped so; or
- for `.exo/`: a file exo wrote for a session and listed in its record (tickets, events, the
  governance a first session adopted). Records, mementos and sealed streams are write-once.

Anything else is ungoverned. Format-1 records carry no products: their commits are judged the way
they were written, by trailer and `commit.prepared` record, and reported as such.
"""

from __future__ import annotations

import itertools
import json
import os
import posixpath
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from exo.kernel import Action, Decision, Fence, Governance, check_action
from exo.kernel.canon import canonical, sha256_hex
from exo.kernel.layout import AUDIT_DIR, CONSTITUTION, LOCK

from . import git, history
from .config import CONFIG
from .githooks import commit_policy, exempt_commit
from .history import Commit, Entry
from .records import MEMENTOS, SESSIONS, SessionRecord, own_paths, sid_of

How = Literal["session", "merged", "rebased", "exempt", "broker", "legacy", "accepted", "ungoverned", "rewritten"]
WRITE_ONCE = (f"{SESSIONS}/", f"{MEMENTOS}/", f"{AUDIT_DIR}/")
ADOPTED_ONLY = frozenset({CONSTITUTION, LOCK, CONFIG})  # a closeout may add these, never change them
REGULAR = ("100644", "100755")
SEALED = b'"event":"audit.sealed"'


@dataclass(frozen=True, slots=True)
class Finding:
    """How one path of one commit is accounted for (or why it is not)."""

    commit: str
    path: str
    how: How
    sid: str | None
    detail: str


class Judge:
    """Judges commits against the session records present at the range's head."""

    def __init__(
        self,
        root: Path,
        records: dict[str, SessionRecord],
        streams: dict[str, bytes],
        governance: Callable[[Commit], Governance],
        unsigned: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.records = records
        self.streams = streams
        self.governance = governance
        self.unsigned = unsigned or {}  # human-stamped commits the signatures rule rejects, and why
        self.products: dict[str, list[tuple[SessionRecord, list[Entry | None]]]] = {}
        self.writes: dict[str, list[tuple[SessionRecord, list[Entry | None]]]] = {}
        for record in records.values():
            for product in record.products or []:
                self.products.setdefault(product.path, []).append((record, [v.entry for v in product.versions]))
            for write in record.writes:
                self.writes.setdefault(write.path, []).append((record, [v.entry for v in write.versions]))
        self._fences: dict[str, Fence | None] = {}
        self._contents: dict[str, bytes] = {}
        self._bases: dict[tuple[str, str], str | None] = {}

    def judge(self, commit: Commit) -> list[Finding]:
        """A finding for every path the commit brings in or rewrites (inherited paths give none)."""
        closeout_v1 = self._v1_closeout(commit)
        found = []
        changed = set(commit.changed())
        for path in sorted(commit.touched()):
            if path.startswith(WRITE_ONCE):
                finding = self._once(commit, path)
                if finding is None and path in changed:
                    finding = self._added(commit, path, closeout_v1)
                if finding is not None:
                    found.append(finding)
            elif path in changed:
                found.append(self._path(commit, path, closeout_v1))
        return found

    # --- .exo/: write-once records and exo's own writes

    def _once(self, commit: Commit, path: str) -> Finding | None:
        """Records, mementos and streams may be added, never changed or removed (an earlier version's
        unsealed shared stream may still grow, in a human's commit)."""
        for diff in commit.diffs:
            if path not in diff or diff[path][0] is None:
                continue
            old, new = diff[path]
            if old is not None and new is not None and self._extends(commit, path, old, new):
                continue
            what = "deleted" if new is None else "changed"
            return Finding(commit.sha, path, "rewritten", None, f"{path} is write-once but this commit {what} it")
        return None

    def _added(self, commit: Commit, path: str, closeout_v1: SessionRecord | None) -> Finding | None:
        """A new record, memento or stream must belong to a session record at the head (whose
        consistency doctor checks there), be one exo wrote for a session, or be an exempt actor's."""
        sid = sid_of(path)
        if sid in self.records and path in own_paths(sid):
            return None
        return self._exo(commit, path, commit.entry(path), closeout_v1)

    def _extends(self, commit: Commit, path: str, old: Entry, new: Entry) -> bool:
        if not path.startswith(f"{AUDIT_DIR}/") or not (self._exempt(commit) or self._v1_closeout(commit)):
            return False
        before, after = self._content(old), self._content(new)
        last = before.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return before != after and after.startswith(before) and SEALED not in last

    def _v1_closeout(self, commit: Commit) -> SessionRecord | None:
        """The format-1 record this commit adds, if it is that session's closeout (judged the old way)."""
        sid = commit.trailers.get("Exo-Session", "")
        record = self.records.get(sid)
        if record is None or record.version != 1:
            return None
        added = any(f"{SESSIONS}/{sid}.json" in d and d[f"{SESSIONS}/{sid}.json"][0] is None for d in commit.diffs)
        return record if added else None

    # --- any other path

    def _path(self, commit: Commit, path: str, closeout_v1: SessionRecord | None) -> Finding:
        new = commit.entry(path)
        if path.startswith(".exo/"):
            return self._exo(commit, path, new, closeout_v1)
        denied = ""
        for record, versions in self.products.get(path, []):
            if new in versions[1:]:
                finding, reason = self._fenced(commit, path, new, record, "session")
                if finding is not None:
                    return finding
                denied = denied or reason
        if self._exempt(commit):
            return Finding(commit.sha, path, "exempt", None, f"a change by {commit.trailers['Exo-Actor']}")
        if len(commit.parents) > 1 and self._merged(commit, path, new):
            return Finding(commit.sha, path, "merged", None, "git's three-way merge of the parents")
        rebased = self._rebased(commit, path, new)
        if rebased is not None:
            return rebased
        legacy = self._legacy(commit, path, new)
        if legacy is not None:
            return legacy
        return Finding(commit.sha, path, "ungoverned", None, denied or self._unaccounted(commit))

    def _exo(self, commit: Commit, path: str, new: Entry | None, closeout_v1: SessionRecord | None) -> Finding:
        if self._exempt(commit):
            return Finding(commit.sha, path, "exempt", None, f"a change by {commit.trailers['Exo-Actor']}")
        if closeout_v1 is not None:
            return Finding(commit.sha, path, "legacy", closeout_v1.sid, "a format-1 closeout, judged by its trailers")
        adding = all(path in d and d[path][0] is None for d in commit.diffs)
        for record, versions in self.writes.get(path, []):
            if new in versions[1:] and (adding or path not in ADOPTED_ONLY):
                return Finding(commit.sha, path, "broker", record.sid, f"written by exo for session {record.sid}")
        why = "only a human's commit or exo itself (listed in a session record) may change .exo/"
        return Finding(commit.sha, path, "ungoverned", None, why)

    def _fenced(
        self, commit: Commit, path: str, new: Entry | None, record: SessionRecord, how: How
    ) -> tuple[Finding | None, str]:
        """A finding if the session's fence allows `path` (or a human accepted it), else the reason."""
        fence = self._fence(record)
        if fence is None:
            return None, f"session {record.sid}'s record does not match its pinned fence"
        gov = self.governance(commit)
        decision = check_action(gov, fence, Action(record.actor, "delete" if new is None else "write", path))
        if decision.allowed and new is not None and new[0] == "120000":
            decision = self._link_target(gov, fence, record, path, new)
        if decision.allowed:
            return Finding(commit.sha, path, how, record.sid, f"produced by session {record.sid}"), ""
        if record.accepted_drift:
            detail = f"outside session {record.sid}'s fence [{decision.rule}], accepted: {record.accepted_drift}"
            return Finding(commit.sha, path, "accepted", record.sid, detail), ""
        return None, f"session {record.sid} produced it, but its fence denies it [{decision.rule}]: {decision.reason}"

    def _link_target(self, gov: Governance, fence: Fence, record: SessionRecord, path: str, new: Entry) -> Decision:
        """A symlink a session produced must land inside its fence too."""
        target = self._content(new).decode("utf-8", "surrogateescape")
        landing = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if target.startswith("/") or landing == ".." or landing.startswith("../"):
            return Decision(False, path, "exo:symlink-escape", f"{path} is a symlink out of the repository")
        return check_action(gov, fence, Action(record.actor, "write", landing))

    def _fence(self, record: SessionRecord) -> Fence | None:
        if record.sid not in self._fences:
            if record.version == 1:
                fence: Fence | None = Fence.from_globs(record.scope_allow, record.scope_deny, own_paths(record.sid))
            elif record.fence is None or sha256_hex(canonical(record.fence)) != record.fence_sha256:
                fence = None
            else:
                fence = Fence.from_dict(record.fence)
            self._fences[record.sid] = fence
        return self._fences[record.sid]

    def _exempt(self, commit: Commit) -> bool:
        if commit.sha in self.unsigned:
            return False
        return exempt_commit(commit.trailers, commit_policy(self.governance(commit)))

    def _merged(self, commit: Commit, path: str, new: Entry | None) -> bool:
        """A clean merge of two parents (git's three-way merge of the path) gives exactly `new`."""
        if len(commit.parents) != 2 or new is None:
            return False
        ours, theirs = (diff[path][0] for diff in commit.diffs)
        base_commit = self._merge_base(*commit.parents)
        if base_commit is None:
            return False
        base = history.at(self.root, base_commit, [path]).get(path)
        return self._merge3(base, ours, theirs) == new

    def _rebased(self, commit: Commit, path: str, new: Entry | None) -> Finding | None:
        """A session's change to `path`, merged by a rebase into a parent that had changed it too."""
        if new is None:
            return None
        for record, versions in self.products.get(path, []):
            for before, after in itertools.pairwise(versions):
                for diff in commit.diffs:
                    onto = diff[path][0]
                    if onto != before and self._merge3(before, onto, after) == new:
                        finding, _ = self._fenced(commit, path, new, record, "rebased")
                        if finding is not None:
                            return finding
        return None

    def _legacy(self, commit: Commit, path: str, new: Entry | None) -> Finding | None:
        """A commit of a format-1 session: its Exo-Audit trailer names a `commit.prepared` record of
        that session for exactly this tree, and the path is inside the session's fence."""
        record = self.records.get(commit.trailers.get("Exo-Session", ""))
        if record is None or record.version != 1:
            return None
        seq, _, digest = commit.trailers.get("Exo-Audit", "").partition(":")
        if not (seq.isascii() and seq.isdigit() and int(seq) > 0):
            return None
        lines = self.streams.get(record.sid, b"").splitlines()
        try:
            prepared = json.loads(lines[int(seq) - 1]) if int(seq) <= len(lines) else {}
        except ValueError:
            prepared = {}
        data = prepared.get("data") if isinstance(prepared, dict) else None
        if prepared.get("h") != digest or not isinstance(data, dict) or data.get("tree") != commit.tree:
            return None
        finding, _ = self._fenced(commit, path, new, record, "legacy")
        return finding

    def _unaccounted(self, commit: Commit) -> str:
        if commit.sha in self.unsigned:
            return self.unsigned[commit.sha]
        sid = commit.trailers.get("Exo-Session")
        actor = commit.trailers.get("Exo-Actor")
        if sid and sid in self.records:
            return f"the commit names session {sid}, whose record does not account for this content"
        if sid:
            return f"the commit names session {sid}, which has no record at the range's head"
        if actor:
            return f"{actor} committed it outside any session, and the commit policy does not exempt {actor}"
        return "no session record accounts for it and no exempt actor stamped the commit (hooks bypassed?)"

    # --- git objects

    def _content(self, entry: Entry) -> bytes:
        oid = entry[1]
        if oid not in self._contents:
            self._contents.update(git.blobs(self.root, [oid]))
        return self._contents.get(oid, b"")

    def _merge_base(self, one: str, two: str) -> str | None:
        key = (one, two)
        if key not in self._bases:
            self._bases[key] = git.run(self.root, "merge-base", one, two, check=False) or None
        return self._bases[key]

    def _merge3(self, base: Entry | None, ours: Entry | None, theirs: Entry | None) -> Entry | None:
        """What `git merge-file` makes of three regular files, if it merges cleanly."""
        if base is None or ours is None or theirs is None:
            return None
        if base[0] not in REGULAR or ours[0] != theirs[0] or ours[0] not in REGULAR:
            return None
        with tempfile.TemporaryDirectory(prefix="exo-merge-") as tmp:
            names = []
            for name, entry in (("ours", ours), ("base", base), ("theirs", theirs)):
                (Path(tmp) / name).write_bytes(self._content(entry))
                names.append(os.path.join(tmp, name))
            code, merged, _ = git.attempt(tmp, "merge-file", "-p", "-q", *names)
        if code != 0:
            return None
        return (ours[0], history.blob_id(merged, len(ours[1])))
