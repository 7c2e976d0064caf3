"""All git access: one place that starts git processes and translates their failures."""

from __future__ import annotations

import os
import subprocess

from exo.kernel import StateError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pathlib costs the git hooks ~4 ms; only toplevel and commit_only need it at run time
    from pathlib import Path

# Variables git exports while a hook runs; they would point a nested git call at the wrong repository.
_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_OBJECT_DIRECTORY")


# Settings that make git run a program where exo only reads: exo's own git calls never run them.
_INERT = ("-c", "core.fsmonitor=false")


def attempt(
    cwd: Path | str, *args: str, data: bytes = b"", isolated: bool = False, env: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run `git args` with `data` on stdin: (exit status, stdout, stderr). The one place exo starts git.

    `isolated` drops the repository variables a surrounding git hook exported. Raises
    StateError(IO_ERROR) only when git cannot be started.
    """
    full_env = None
    if isolated or env:
        full_env = {k: v for k, v in os.environ.items() if not (isolated and k in _REPO_VARS)}
        full_env.update(env or {})
    try:
        done = subprocess.run(
            ["git", *_INERT, *args], cwd=cwd, env=full_env, input=data, capture_output=True, check=False
        )
    except OSError as exc:
        raise StateError(f"cannot run git: {exc.strerror}", code="IO_ERROR", hint="install git") from exc
    return done.returncode, done.stdout, done.stderr


def run_bytes(cwd: Path | str, *args: str, data: bytes = b"", check: bool = True) -> bytes:
    """Run `git args` with `data` on stdin and return stdout as bytes (for batch commands whose
    output holds file contents). Raises StateError(IO_ERROR) when git fails and `check` is set."""
    code, out, err = attempt(cwd, *args, data=data)
    if check and code != 0:
        raise StateError(f"git {' '.join(args)} failed: {err.decode(errors='replace').strip()}", code="IO_ERROR")
    return out


def run(
    cwd: Path | str, *args: str, check: bool = True, isolated: bool = False, env: dict[str, str] | None = None
) -> str:
    """Run `git args` in `cwd` and return stdout as text (trailing newline stripped).

    Raises StateError(IO_ERROR) when git is missing or, with `check`, exits non-zero.
    """
    code, out, err = attempt(cwd, *args, isolated=isolated, env=env)
    if check and code != 0:
        raise StateError(f"git {' '.join(args)} failed: {err.decode(errors='replace').strip()}", code="IO_ERROR")
    return out.decode("utf-8", "surrogateescape").rstrip("\n")


def blobs(cwd: Path | str, oids: list[str]) -> dict[str, bytes]:
    """The contents of the blobs `oids` (full object ids) in one `git cat-file --batch`; missing ones
    are left out."""
    wanted = sorted(set(oids))
    if not wanted:
        return {}
    out = run_bytes(cwd, "cat-file", "--batch", data="".join(f"{oid}\n" for oid in wanted).encode())
    found: dict[str, bytes] = {}
    at = 0
    for oid in wanted:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if len(header) != 3:  # "<oid> missing"
            continue
        size = int(header[2])
        found[oid] = out[at : at + size]
        at += size + 1
    return found


def objects(cwd: Path | str, names: list[str]) -> dict[str, str | None]:
    """`<rev>:<path>` (or any object name) -> its object id, or None where it does not exist, in one
    `git cat-file --batch-check`."""
    if not names:
        return {}
    text = run_bytes(cwd, "cat-file", "--batch-check=%(objectname)", data="".join(f"{n}\n" for n in names).encode())
    lines = text.decode(errors="surrogateescape").splitlines()
    return {name: (line if " " not in line else None) for name, line in zip(names, lines, strict=True)}


def toplevel(start: Path) -> Path:
    """The root of the worktree containing `start`. Raises StateError(NOT_A_REPOSITORY)."""
    from pathlib import Path

    if not start.is_dir():
        raise StateError(f"{start} is not a directory", code="NOT_A_REPOSITORY")
    try:
        out = run(start, "rev-parse", "--show-toplevel")
    except StateError as exc:
        raise StateError(f"{start} is not inside a git repository", code="NOT_A_REPOSITORY") from exc
    if not out:
        raise StateError(f"{start} is inside a .git directory, not a worktree", code="NOT_A_REPOSITORY")
    return Path(out)


def common_dir(root: Path) -> Path:
    """The clone's git common directory (shared by its worktrees), as an absolute path."""
    from pathlib import Path

    common = Path(run(root, "rev-parse", "--git-common-dir"))
    return common if common.is_absolute() else root / common


def config_value(root: Path | str, key: str) -> str | None:
    """`git config --get key` in `root`, or None when unset."""
    value = run(root, "config", "--get", key, check=False)
    return value or None


def init(path: Path) -> None:
    """Create a repository at `path` with a fixed identity (for throwaway repositories)."""
    run(path, "init", "-q", "-b", "main", isolated=True)
    run(path, "config", "user.email", "demo@exo.invalid", isolated=True)
    run(path, "config", "user.name", "exo demo", isolated=True)


def paths_z(cwd: Path | str, *args: str) -> list[str]:
    """Run a git command with NUL-separated output (`-z`) and return its entries."""
    return [entry for entry in run(cwd, *args).split("\0") if entry]


def name_status(cwd: Path | str, *args: str) -> list[tuple[str, str]]:
    """(operation, path) from `git <args> --name-status -z --no-renames`: `delete` for D, else `write`."""
    entries = paths_z(cwd, *args, "--name-status", "-z", "--no-renames")
    return [("delete" if s == "D" else "write", p) for s, p in zip(entries[::2], entries[1::2], strict=True)]


def head(root: Path) -> str:
    """The commit HEAD points at. Raises StateError(IO_ERROR) in a repository without commits."""
    sha = run(root, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    if not sha:
        raise StateError("the repository has no commit yet", code="IO_ERROR", hint="make a first commit, then retry")
    return sha


def can_commit(root: Path) -> None:
    """Raise StateError(IO_ERROR) now if git could not make a commit here (no identity configured)."""
    for ident in ("GIT_COMMITTER_IDENT", "GIT_AUTHOR_IDENT"):
        if not run(root, "var", ident, check=False):
            raise StateError(
                "git has no identity to commit with",
                code="IO_ERROR",
                hint='set one: git config user.name "..." && git config user.email "..."',
            )


def commit_only(root: Path, paths: list[str], message: str, trailers: dict[str, str]) -> str:
    """Commit exactly `paths` (as they are in the worktree) on top of HEAD, whatever else is staged.

    Uses a temporary index built from HEAD, so the user's staged work is neither committed nor
    disturbed; afterwards the real index is brought in line for those paths. Returns the commit.
    """
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="exo-index-") as tmp:
        # EXO_CLOSEOUT tells exo's prepare-commit-msg hook that this commit carries its own trailers.
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), "EXO_CLOSEOUT": "1"}
        run(root, "read-tree", "HEAD", env=env)
        run(root, "add", "-f", "--", *paths, env=env)
        args = ["commit", "-q", "--no-verify", "-m", message]
        for key, value in trailers.items():
            args += ["--trailer", f"{key}: {value}"]
        run(root, *args, env=env)
    run(root, "reset", "-q", "HEAD", "--", *paths)
    return head(root)
