"""The runtime state layer: where every runtime file lives and its one reader and writer.

Runtime state is never committed. `<git common dir>/exo/` is shared by every worktree of a clone
(open sessions, leases, the freeze, streams being written, locks, caches); `<worktree git dir>/exo/`
belongs to one worktree (the pointer naming its open session). Nothing outside this module joins a
runtime path, so moving a file is a change here alone.

Every file is read through `safe` (regular files only, non-blocking open, bounded size), so a FIFO,
socket, directory, symbolic link or huge file planted where a state file should be is a coded `STATE_CORRUPT`,
never a hang or a traceback, and JSON nested past `MAX_DEPTH` is refused before it is parsed.
Writes go through `fs.atomic_write`. Standard library only (paths are strings, pathlib is not
imported): agent hooks read this on every tool call.
"""

from __future__ import annotations

import json
import os
import re

from . import ids
from ._errors import StateError
from .gitdir import common_of, git_dir
from .layout import FROZEN, RUNTIME_AUDIT
from .safe import NotRegular, open_regular, read_regular

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATE_DIR = "exo"  # the runtime directory's name, under the git common dir and each worktree's git dir
DOC_LIMIT = 16 << 20  # a session snapshot with a large fence stays far below this
MAX_DEPTH = 64  # no state document nests deeper; deeper input is hostile
_POINTER_LIMIT = 4096
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
UNREADABLE_FREEZE = {"reason": "the freeze file is unreadable"}
HINT = "run `exo doctor --fix`; if it persists, look at the file named above and remove it once you know why"


class State:
    """The runtime files of the worktree at `root`, located once (from the files git writes, no git
    process). Raises StateError(NOT_A_REPOSITORY) when `root` is not a worktree root."""

    __slots__ = ("common", "dir", "own", "root")

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)
        self.own = git_dir(self.root)
        self.common = common_of(self.own)
        self.dir = os.path.join(self.common, STATE_DIR)

    # --- where each file lives

    @property
    def pointer(self) -> str:
        """The file naming the session open in this worktree."""
        return os.path.join(self.own, STATE_DIR, "session")

    @property
    def sessions(self) -> str:
        return os.path.join(self.dir, "sessions")

    def session(self, sid: str) -> str:
        """The open session `sid` (lease, base commit, pinned fence)."""
        return os.path.join(self.sessions, f"{ids.stream_id(sid)}.json")

    @property
    def leases(self) -> str:
        return os.path.join(self.dir, "leases")

    def lease(self, ticket_id: str) -> str:
        return os.path.join(self.leases, f"{ids.ticket_id(ticket_id)}.json")

    @property
    def frozen(self) -> str:
        """Present while the repository is frozen."""
        return os.path.join(self.dir, FROZEN)

    @property
    def audit(self) -> str:
        """Streams being written (published into `.exo/audit/` when sealed)."""
        return os.path.join(self.dir, RUNTIME_AUDIT)

    def stream(self, stream: str) -> str:
        return os.path.join(self.audit, f"{ids.stream_id(stream)}.jsonl")

    @property
    def locks(self) -> str:
        """One lock file per guarded target; never deleted (see `fs.file_lock`)."""
        return os.path.join(self.dir, "locks")

    def cache(self, name: str) -> str:
        """A cache exo can always rebuild (parsed tickets)."""
        return os.path.join(self.dir, "cache", f"{ids.stream_id(name)}.json")

    def sandbox_settings(self, sid: str) -> str:
        """What session `sid` replaced in the harness's sandbox settings, restored at its end."""
        return os.path.join(self.dir, "claude-sandbox", f"{ids.stream_id(sid)}.json")

    @property
    def standing(self) -> str:
        """Refused finishes and fence violations per actor, and who is revoked (the error budget)."""
        return os.path.join(self.dir, "standing.json")

    @property
    def quarantine(self) -> str:
        """Where `exo run` moves files that appeared in git's way during a sandboxed command."""
        return os.path.join(self.dir, "quarantine")

    # --- reading and writing

    def read_freeze(self) -> dict[str, str] | None:
        """The freeze in force (`reason`, `actor`, `since`), or None. A damaged freeze file still
        freezes (fail closed): its reason then says so."""
        try:
            doc = read_doc(self.frozen, 1 << 20)
        except StateError:
            return dict(UNREADABLE_FREEZE)
        if doc is None:
            return None
        fields = {key: doc.get(key) for key in ("reason", "actor", "since")}
        if not all(isinstance(value, str) and value for value in fields.values()):
            return dict(UNREADABLE_FREEZE)
        return {key: str(value) for key, value in fields.items()}

    def read_pointer(self) -> str | None:
        """The session id this worktree's pointer names, or None. Raises StateError(STATE_CORRUPT)."""
        raw = read_bytes(self.pointer, _POINTER_LIMIT)
        if raw is None:
            return None
        try:
            sid = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise corrupt(self.pointer, "not UTF-8") from None
        if not sid:
            return None
        if not ids.STREAM_RE.fullmatch(sid) or ".." in sid:
            raise corrupt(self.pointer, "it does not name a session")
        return sid

    def write_pointer(self, sid: str) -> None:
        from .fs import atomic_write

        atomic_write(_path(self.pointer), ids.stream_id(sid).encode() + b"\n")

    def clear_pointer(self, sid: str) -> None:
        """Remove the pointer if it still names `sid` (another session may have been bound since)."""
        try:
            named = self.read_pointer()
        except StateError:
            named = None
        if named == sid:
            _unlink(self.pointer)


def read_bytes(path: str, limit: int = DOC_LIMIT) -> bytes | None:
    """The bytes of the runtime file `path`, or None if it does not exist. Raises
    StateError(STATE_CORRUPT) for anything but a readable regular file of at most `limit` bytes
    (a symbolic link included: exo never makes one here)."""
    try:
        return read_regular(path, limit, follow=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise corrupt(path, exc.strerror or str(exc)) from exc


def open_runtime(path: str | os.PathLike[str], flags: int) -> int:
    """A descriptor on the runtime file `path` for writing in place (a lock file, a stream being
    appended), created if missing. Raises StateError(STATE_CORRUPT) when something other than a
    regular file is there, a symbolic link included; OSError when the disk refuses."""
    try:
        return open_regular(path, flags | os.O_CREAT, follow=False)
    except NotRegular as exc:
        raise corrupt(os.fspath(path), exc.strerror or "not a regular file") from None


def read_doc(path: str, limit: int = DOC_LIMIT) -> dict[str, Any] | None:
    """The JSON object in the runtime file `path`, or None if it does not exist. Raises
    StateError(STATE_CORRUPT) for a file that is not one (unreadable, not UTF-8, not JSON, too deep)."""
    raw = read_bytes(path, limit)
    return None if raw is None else parse_doc(path, raw)


def parse_doc(path: str, raw: bytes) -> dict[str, Any]:
    """`raw` (the bytes of `path`) as a JSON object, refusing nesting past `MAX_DEPTH` unparsed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise corrupt(path, "not UTF-8") from None
    if too_deep(text):
        raise corrupt(path, f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise corrupt(path, f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise corrupt(path, "not a JSON object")
    return doc


def write_doc(path: str, doc: dict[str, Any] | bytes) -> None:
    """Replace the runtime file `path` atomically with `doc` (a JSON object, or its bytes)."""
    from .fs import atomic_write

    data = doc if isinstance(doc, bytes) else json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
    atomic_write(_path(path), data)


def remove(path: str) -> None:
    """Delete the runtime file `path` if it exists."""
    _unlink(path)


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON `text` opens more than `limit` brackets at once (inside strings they do not
    count), checked before parsing so deep input never reaches the recursive parser."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case, without a scan
    depth = 0
    for match in _BRACKETS.finditer(_STRINGS.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def corrupt(path: str, why: str) -> StateError:
    return StateError(f"runtime state file {path} is damaged: {why}", code="STATE_CORRUPT", hint=HINT)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StateError(f"cannot remove {path}: {exc.strerror or exc}", code="IO_ERROR") from exc


def _path(path: str) -> Any:
    from pathlib import Path

    return Path(path)
