"""Durable file primitives: the one atomic-write helper, the one file-lock helper, git directories."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from . import ids
from ._errors import LockError, StateError
from .gitdir import common_dir, git_dir
from .layout import AUDIT_DIR
from .safe import read_regular
from .state import State, open_runtime

TMP_MARK = ".exo-tmp-"  # temp files are ".<name>.exo-tmp-<hex>"; doctor finds leftovers by this mark
LOCK_TIMEOUT_S = 30.0


def fsync_dir(directory: Path) -> None:
    """Make a rename or file creation in `directory` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new file, never a torn one.

    Git's lockfile protocol: write a temp file in the same directory, fsync it, rename it over the
    target, fsync the directory. Raises StateError(IO_ERROR) when the disk refuses.
    """
    tmp = path.with_name(f".{path.name}{TMP_MARK}{secrets.token_hex(6)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StateError(f"cannot write {path}: {exc.strerror or exc}", code="IO_ERROR") from exc
    fsync_dir(path.parent)


def remove_leftovers(path: Path) -> int:
    """Delete temp files an interrupted `atomic_write` of `path` left; call only under `path`'s lock."""
    removed = 0
    for leftover in path.parent.glob(f".{path.name}{TMP_MARK}*"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed += 1
    return removed


def read_file(path: Path) -> bytes | None:
    """The bytes of `path`, or None if it does not exist. Raises StateError(IO_ERROR) naming the path
    when it exists but cannot be read (a directory, no permission, ...)."""
    try:
        return read_regular(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(
            f"cannot read {path}: {exc.strerror or exc}", code="IO_ERROR", hint="make it a readable regular file"
        ) from exc


def git_common_dir(root: Path) -> Path:
    """The git common directory of the worktree at `root` (shared by all its worktrees).

    Read from the files git writes, so no git process is started. Raises
    StateError(NOT_A_REPOSITORY) when `root` is not a worktree root.
    """
    return Path(common_dir(str(root)))


def worktree_git_dir(root: Path) -> Path:
    """The git directory of this worktree alone (`.git/worktrees/<name>` for a linked worktree)."""
    return Path(git_dir(str(root)))


def runtime_audit_dir(root: Path) -> Path | None:
    """Where streams are written while open (`State.audit`; None outside a git worktree)."""
    try:
        return Path(State(root).audit)
    except StateError:
        return None


def audit_paths(root: Path, stream: str) -> tuple[Path, Path | None]:
    """Where stream `stream` is published (`.exo/audit/`) and where it is written while open."""
    name = f"{ids.stream_id(stream)}.jsonl"
    runtime = runtime_audit_dir(root)
    return root / AUDIT_DIR / name, runtime / name if runtime is not None else None


def audit_path(root: Path, stream: str) -> Path:
    """The file holding stream `stream` now: the runtime copy exo writes, else the published one
    (a stream published by another clone, or one written by an earlier version in place)."""
    published, runtime = audit_paths(root, stream)
    if runtime is not None and (runtime.exists() or not published.exists()):
        return runtime
    return published


@contextlib.contextmanager
def file_lock(root: Path, target: str | os.PathLike[str], timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive lock guarding `target` for a read-modify-write.

    Lock files live under the git common dir (never in the working tree), one per target path, and
    are never deleted (deleting a lock file races with its waiters). The OS drops the lock when the
    holder dies, so a kill -9 never leaves a stale lock. Raises LockError(LOCK_BUSY) on timeout,
    StateError(STATE_CORRUPT) when something other than a lock file is in its place.
    """
    locks = Path(State(root).locks)
    locks.mkdir(parents=True, exist_ok=True)
    target = Path(target)
    key = hashlib.sha256(str(target.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    lock_path = locks / f"{target.name[:40]}-{key}.lock"
    with _exclusive(lock_path, timeout):
        yield


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def _exclusive(lock_path: Path, timeout: float) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows: filelock wraps msvcrt
        import filelock

        try:
            with filelock.FileLock(str(lock_path), timeout=timeout):
                yield
        except filelock.Timeout as exc:
            raise LockError(f"timed out waiting for {lock_path}", code="LOCK_BUSY") from exc
        return
    # fcntl directly rather than filelock on POSIX: filelock costs ~40 ms of imports, and the audit
    # append behind every commit takes this lock.
    fd = open_runtime(lock_path, os.O_RDWR)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(f"timed out waiting for {lock_path}", code="LOCK_BUSY") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
