"""Drift: what a session changed since it started, checked against its fence and budget.

What the session changed is what its own commits since the base brought in, plus what differs in
the worktree (staged, on disk, untracked) — minus what was already changed when it started and is
still as it was. A commit is the session's own when the session prepared it (its tree is in a
`commit.prepared` record of the session's stream); any other commit in the range counts too unless
its content is accounted for elsewhere: inherited from a parent, a product of another session's
record, a commit stamped by an actor the commit policy exempts, or a commit that other branches
also hold (a rebase or merge brought it in). Each changed path is decided by `check_action` with
the session's pinned fence; git hook files and `core.hooksPath` are compared with their
fingerprint from session start. Every state the session gave a path becomes one of its products.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from exo.kernel import Action, Fence, Governance, check_action, ids
from exo.kernel.fs import audit_path
from exo.kernel.safe import read_regular
from exo.kernel.state import read_bytes

from . import git, history, worktree
from .githooks import commit_policy, exempt_commit
from .history import Entry
from .runtime import Budget, OpenSession

Kind = Literal[
    "out_of_scope", "denied", "protected", "symlink", "invalid_path", "frozen", "budget", "hook_tamper", "git_settings"
]
MAX_COUNT_BYTES = 8 << 20  # untracked files larger than this count as one line per 8 MiB read


class Version(BaseModel):
    """One state of a path: its git mode and blob id, or both null where the path does not exist."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: str | None = Field(description="git file mode (100644, 100755, 120000), null if absent.")
    blob: str | None = Field(description="git blob id of the content, null if absent.")

    @classmethod
    def of(cls, entry: Entry | None) -> Version:
        return cls(mode=entry[0], blob=entry[1]) if entry else cls(mode=None, blob=None)

    @property
    def entry(self) -> Entry | None:
        return (self.mode, self.blob) if self.mode is not None and self.blob is not None else None


class Product(BaseModel):
    """A path a session changed and every state it gave it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="Repo-relative path.")
    versions: list[Version] = Field(
        description="The path before the session, then each state the session gave it in order; the last is final."
    )


class Violation(BaseModel):
    kind: Kind = Field(description="Stable violation kind.")
    path: str = Field(description="The offending path (or hook entry).")
    rule: str | None = Field(default=None, description="Deciding rule id, if a fence rule.")
    reason: str = Field(description="Why it is a violation.")


class DriftReport(BaseModel):
    """What a session changed and what of it breaks its fence or budget; `ok` if nothing does."""

    ok: bool = Field(description="No violations.")
    base_commit: str = Field(description="Commit the session started from.")
    head_commit: str = Field(description="HEAD when drift was measured.")
    files: list[str] = Field(description="Changed paths (commits, staged, unstaged, untracked), sorted.")
    ignored_written: list[str] = Field(description="Ignored files written during the session.")
    lines_added: int
    lines_removed: int
    preexisting: list[str] = Field(
        default_factory=list, description="Paths already changed when the session started and left as they were."
    )
    budget: Budget
    violations: list[Violation] = Field(description="Every violation, by path.")
    score_bp: int = Field(
        ge=0,
        le=10000,
        description="Drift score in basis points: 10000 * (0.7 * violating/changed + 0.3 * budget excess) "
        "(docs/sessions.md); hashed records hold no floats.",
    )

    @model_validator(mode="before")
    @classmethod
    def _score_as_written_before(cls, data: object) -> object:
        """Records written before scores were basis points hold `score` in [0, 1]."""
        if isinstance(data, dict) and "score" in data and "score_bp" not in data:
            data = dict(data)
            score = data.pop("score")
            if isinstance(score, int | float) and not isinstance(score, bool):
                data["score_bp"] = round(score * 10000)
        return data

    @property
    def score(self) -> float:
        """The drift score in [0, 1], for people (records keep `score_bp`)."""
        return self.score_bp / 10000


def hooks_fingerprint(root: Path) -> dict[str, str]:
    """sha256 of every active hook in `.git/hooks` and in a configured `core.hooksPath`, plus that
    setting itself (`*.sample` files are inert and left out)."""
    setting = git.config_value(root, "core.hooksPath") or ""
    places = {"hooks": git.common_dir(root) / "hooks"}
    if setting:
        places["hooksPath"] = root / setting
    prints = {"config:core.hooksPath": setting}
    for label, directory in places.items():
        if directory.is_dir():
            for entry in sorted(directory.iterdir()):
                if entry.is_file() and not entry.name.endswith(".sample"):
                    prints[f"{label}/{entry.name}"] = hashlib.sha256(read_regular(entry)).hexdigest()
    return prints | git_settings(root)


# Settings git reads that run a program, redirect where git looks, or change what it checks out.
_RUNS_CODE = re.compile(
    r"core\.(fsmonitor|sshcommand|pager|editor|askpass|gitproxy|attributesfile|excludesfile|worktree"
    r")|(filter|diff|merge)\..+|gpg\..*|alias\..+|include(if)?\..*|credential\..*|sequence\.editor"
    r"|pager\..+|remote\..+\.(uploadpack|receivepack|vcs)|url\..+\.(insteadof|pushinsteadof)|extensions\..+"
    r"|protocol\..*|uploadpack\..+|submodule\..+\.update|safe\.directory"
)
_SETTINGS_PRINTS = ("git:", "gitconfig:", "gitfile:", "gitindex:", "gitstash:")
_GIT_FILES = ("info/attributes", "info/exclude", "info/sparse-checkout", "config.worktree", "commondir")


def git_settings(root: Path) -> dict[str, str]:
    """A fingerprint of the repository's git settings that run code (SPEC §12): the matching keys
    of its config file (read as a file: nothing runs, no include is followed) and the files in
    the git directories that git reads settings from."""
    from exo.kernel.fs import git_common_dir, worktree_git_dir

    common, own = git_common_dir(root), worktree_git_dir(root)
    listed = git.run(root, "config", "--file", str(common / "config"), "--null", "--list", check=False)
    values: dict[str, list[str]] = {}
    for item in listed.split("\0"):
        key, _, value = item.partition("\n")
        if key and _RUNS_CODE.fullmatch(key.lower()):
            values.setdefault(key.lower(), []).append(value)
    prints = {"git:settings": "1"} | {
        f"gitconfig:{key}": hashlib.sha256("\0".join(v).encode()).hexdigest() for key, v in values.items()
    }
    # Index entries git is told not to look at (skip-worktree `S`, assume-unchanged lower case):
    # an edit to such a file is invisible to `git status`, so flagging one hides it from drift.
    for entry in git.paths_z(root, "ls-files", "-v", "-z"):
        tag, _, path = entry.partition(" ")
        if tag == "S" or tag.islower():
            prints[f"gitindex:{path}"] = tag
    for sha in _stashes(root):
        prints[f"gitstash:{sha}"] = "1"
    places = [(common, "common")] + ([(own, "worktree")] if own.resolve() != common.resolve() else [])
    for gitdir, label in places:
        for name in _GIT_FILES:
            with contextlib.suppress(OSError):
                data = read_regular(gitdir / name)
                if data or name == "commondir":  # an empty settings file sets nothing (sandboxes leave them)
                    prints[f"gitfile:{label}/{name}"] = hashlib.sha256(data).hexdigest()
    return prints


class Measured(BaseModel):
    """A drift report and the products behind it."""

    report: DriftReport
    products: list[Product]


def compute(root: Path, session: OpenSession, gov: Governance, fence: Fence, budget: Budget) -> DriftReport:
    """Measure the session's drift now. Raises StateError(IO_ERROR) if git fails."""
    return measure(root, session, gov, fence, budget).report


def measure(root: Path, session: OpenSession, gov: Governance, fence: Fence, budget: Budget) -> Measured:
    """The drift report and the session's products (every state it gave each path it changed)."""
    changes = commit_changes(root, session, gov)
    state = worktree.state(root)
    own = _exo_own(root, session, fence)
    preexisting = []
    for path in state.paths():
        if path in own:
            continue
        found = session.found.get(path)
        if found is not None and path not in changes and tuple(found) == state.pair(path):
            preexisting.append(path)
            continue
        versions = changes.setdefault(path, [_before(found, state.head[path])])
        for entry in (state.index[path], state.files[path]):
            if entry != versions[-1]:
                versions.append(entry)
    products = [
        Product(path=path, versions=[Version.of(v) for v in versions])
        for path, versions in sorted(changes.items())
        if len(versions) > 1 and path not in own
    ]
    files = [p.path for p in products]
    counts = _line_counts(root, session.base_commit, files, state)
    added = sum(counts[p][0] for p in files)
    removed = sum(counts[p][1] for p in files)
    started = session.started_at.timestamp()
    ignored = sorted(
        path
        for path in git.paths_z(root, "ls-files", "-z", "--others", "--ignored", "--exclude-standard")
        if path not in own and _written_since(root / path, started)
    )
    violations = [v for p in files if (v := _judge(root, gov, fence, session.actor, p, strict=True))]
    # Ignored files are build output by declaration: only protected or constitution-denied ones count.
    violations += [v for p in ignored if (v := _judge(root, gov, fence, session.actor, p, strict=False))]
    violations += _hook_tamper(session.hooks, hooks_fingerprint(root))
    violations += _stashed(root, session, gov, fence)
    lines = added + removed
    if len(files) > budget.max_files:
        violations.append(
            Violation(
                kind="budget",
                path=f"{len(files)} files",
                reason=f"{len(files)} files changed, budget {budget.max_files}",
            )
        )
    if lines > budget.max_lines:
        violations.append(
            Violation(kind="budget", path=f"{lines} lines", reason=f"{lines} lines changed, budget {budget.max_lines}")
        )
    report = DriftReport(
        ok=not violations,
        base_commit=session.base_commit,
        head_commit=git.head(root),
        files=files,
        ignored_written=ignored,
        lines_added=added,
        lines_removed=removed,
        preexisting=preexisting,
        budget=budget,
        violations=violations,
        score_bp=_score(violations, len(files), lines, budget),
    )
    return Measured(report=report, products=products)


def empty(base: str, budget: Budget) -> DriftReport:
    """The report of a session whose changes could not be measured (its worktree is gone)."""
    return DriftReport(
        ok=True,
        base_commit=base,
        head_commit=base,
        files=[],
        ignored_written=[],
        lines_added=0,
        lines_removed=0,
        budget=budget,
        violations=[],
        score_bp=0,
    )


def commit_changes(root: Path, session: OpenSession, gov: Governance) -> dict[str, list[Entry | None]]:
    """For every path the session's own commits since its base changed: the path before, then the
    entry each of those commits gave it (oldest first)."""
    head = git.head(root)
    if head == session.base_commit:
        return {}
    prepared = prepared_trees(root, session.sid)
    policy = commit_policy(gov)
    others: dict[str, set[Entry | None]] | None = None
    only_here: set[str] | None = None
    changes: dict[str, list[Entry | None]] = {}
    for commit in history.commits(root, [head, "^" + session.base_commit]):
        mine = commit.tree in prepared
        for path in commit.changed():
            entry = commit.entry(path)
            if not mine:
                others = others if others is not None else _products_of_others(root, head, session.sid)
                if entry in others.get(path, ()) or exempt_commit(commit.trailers, policy):
                    continue
                only_here = only_here if only_here is not None else _only_here(root, session.base_commit, head)
                if commit.sha not in only_here:
                    continue
            versions = changes.setdefault(path, [commit.diffs[0][path][0]])
            if entry != versions[-1]:
                versions.append(entry)
    return changes


def prepared_trees(root: Path, sid: str) -> set[str]:
    """Trees of the commits the session prepared (its `commit.prepared` records)."""
    raw = read_bytes(str(audit_path(root, ids.stream_id(sid)))) or b""
    trees = set()
    for line in raw.splitlines():
        if b'"commit.prepared"' in line:
            try:
                trees.add(str(json.loads(line)["data"]["tree"]))
            except (ValueError, KeyError, TypeError):
                continue  # a damaged stream is audit verify's business
    return trees


def _products_of_others(root: Path, head: str, sid: str) -> dict[str, set[Entry | None]]:
    """Every state other sessions' records (at HEAD) account for, by path."""
    from .records import SESSIONS, SessionRecord

    listed = history.tree(root, head, SESSIONS)
    contents = git.blobs(root, [oid for path, (_mode, oid) in listed.items() if not path.endswith(f"/{sid}.json")])
    out: dict[str, set[Entry | None]] = {}
    for raw in contents.values():
        try:
            record = SessionRecord.model_validate_json(raw)
        except ValueError:
            continue  # doctor reports it
        for product in [*(record.products or []), *record.writes]:
            out.setdefault(product.path, set()).update(v.entry for v in product.versions[1:])
    return out


def _only_here(root: Path, base: str, head: str) -> set[str]:
    """Commits in base..head that no other branch, remote-tracking branch or tag holds."""
    branch = git.run(root, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    exclude = [f"--exclude={branch}"] if branch else []
    listed = git.run(root, "rev-list", head, "--not", base, *exclude, "--branches", "--remotes", "--tags", "--")
    return set(listed.split())


def _before(found: tuple[Entry | None, Entry | None] | None, at_head: Entry | None) -> Entry | None:
    """The path as it was when the session started: what was on disk then, else HEAD's."""
    return found[1] if found is not None else at_head


def _line_counts(root: Path, base: str, files: list[str], state: worktree.State) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = dict.fromkeys(files, (0, 0))
    for entry in git.paths_z(root, "diff", "--numstat", "-z", "--no-renames", base):
        plus, minus, path = entry.split("\t", 2)
        if path in counts:
            counts[path] = (int(plus) if plus.isdigit() else 0, int(minus) if minus.isdigit() else 0)
    for path in files:
        if state.head.get(path, ()) is None and state.index.get(path) is None and state.files.get(path) is not None:
            counts[path] = (_count_lines(root / path), 0)  # untracked: git diff does not see it
    return counts


def _exo_own(root: Path, session: OpenSession, fence: Fence) -> set[str]:
    """Paths exo itself wrote for this session: its records, and .exo files it wrote meanwhile
    (only while their content is still exactly what exo wrote)."""
    from .sandbox import claude_owned

    own = set(fence.exo_paths) | claude_owned(root, session)
    for path, digest in session.exo_writes.items():
        try:
            if hashlib.sha256(read_regular(root / path)).hexdigest() == digest:
                own.add(path)
        except OSError:
            continue
    return own


def _judge(root: Path, gov: Governance, fence: Fence, actor: str, path: str, *, strict: bool) -> Violation | None:
    full = root / path
    operation = "write" if full.exists() or full.is_symlink() else "delete"
    decision = check_action(gov, fence, Action(actor, operation, path))
    if decision.allowed:
        return None
    kind = _kind(gov, decision.rule or "", full)
    if not strict and kind not in ("protected", "denied", "symlink"):
        return None
    return Violation(kind=kind, path=path, rule=decision.rule, reason=decision.reason)


def _kind(gov: Governance, rule: str, full: Path) -> Kind:
    if rule == "exo:protected":
        return "protected"
    if rule == "exo:frozen":
        return "frozen"
    if full.is_symlink() or rule in ("exo:symlink-escape", "exo:symlink-loop"):
        return "symlink"
    if rule in ("exo:invalid-path", "exo:outside-repo", "exo:ntfs-alias", "exo:invalid-action"):
        return "invalid_path"
    if any(r.id == rule for r in gov.deny):
        return "denied"
    return "out_of_scope"


def _hook_tamper(before: dict[str, str], after: dict[str, str]) -> list[Violation]:
    out = []
    if "git:settings" not in before:  # a session opened by an earlier version: its start has no such print
        after = {
            k: v
            for k, v in after.items()
            if not k.startswith(("git:", "gitconfig:", "gitfile:", "gitindex:", "gitstash:"))
        }
    for name in sorted(set(before) | set(after)):
        if name.startswith("gitstash:"):
            continue  # judged by what they hold (`_stashed`)
        if name.startswith("gitindex:") and before.get(name) != after.get(name):
            reason = "git was told not to look at this file (skip-worktree or assume-unchanged) during the session"
            out.append(Violation(kind="git_settings", path=name.removeprefix("gitindex:"), reason=reason))
        elif name.startswith(("gitconfig:", "gitfile:")) and before.get(name) != after.get(name):
            what = "added" if name not in before else "removed" if name not in after else "changed"
            shown = name.removeprefix("gitconfig:").replace("gitfile:common/", ".git/", 1)
            shown = shown.replace("gitfile:worktree/", "git dir of this worktree: ", 1)
            reason = f"a git setting that runs code or redirects git was {what} during the session"
            out.append(Violation(kind="git_settings", path=shown, reason=reason))
        elif before.get(name) != after.get(name):
            what = "added" if name not in before else "removed" if name not in after else "changed"
            shown = ".git/" + name if name.startswith("hooks/") else name.removeprefix("config:")
            shown = shown.replace("hooksPath/", "core.hooksPath:", 1)
            out.append(
                Violation(kind="hook_tamper", path=shown, reason=f"git hook configuration {what} during the session")
            )
    return out


def dangerous_settings(root: Path) -> list[str]:
    """What a human should know is set here: config keys that run code or redirect git, files git
    reads settings from, and files hidden from git (for `exo status`)."""
    shown = []
    for name in sorted(git_settings(root)):
        if name.startswith("gitconfig:"):
            shown.append(name.removeprefix("gitconfig:"))
        elif name.startswith("gitfile:") and not name.endswith("info/exclude"):
            shown.append(name.removeprefix("gitfile:").replace("common/", ".git/", 1))
        elif name.startswith("gitindex:"):
            shown.append(f"{name.removeprefix('gitindex:')} (hidden from git: skip-worktree or assume-unchanged)")
    return shown


def _stashes(root: Path) -> list[str]:
    """The commits of every stash entry (`git stash list`), newest first."""
    return git.run(root, "log", "--walk-reflogs", "--format=%H", "refs/stash", "--", check=False).split()


def _stashed(root: Path, session: OpenSession, gov: Governance, fence: Fence) -> list[Violation]:
    """Stash entries made during the session that hold changes outside its fence: popped after
    finish, they would land with no session to answer for them."""
    if "git:settings" not in session.hooks:
        return []  # a session opened by an earlier version recorded no stashes at its start
    out = []
    for sha in _stashes(root):
        if f"gitstash:{sha}" in session.hooks:
            continue
        parents = git.run(root, "rev-list", "--parents", "-n", "1", sha).split()[1:]
        paths = {p for _op, p in git.name_status(root, "diff", parents[0], sha)} if parents else set()
        if len(parents) > 2:  # `stash -u`: the untracked files are the third parent's tree
            paths |= set(git.paths_z(root, "ls-tree", "-r", "-z", "--name-only", parents[2]))
        for path in sorted(paths):
            decision = check_action(gov, fence, Action(session.actor, "write", path))
            if not decision.allowed:
                reason = f"stashed during the session ({sha[:12]}), outside the fence [{decision.rule}]"
                out.append(Violation(kind=_kind(gov, decision.rule or "", root / path), path=path, reason=reason))
    return out


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_COUNT_BYTES)
    except OSError:
        return 0
    if b"\0" in data[:8192]:
        return 0  # binary: counted as a file, not in lines
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _written_since(path: Path, started: float) -> bool:
    try:
        return os.lstat(path).st_mtime >= started
    except OSError:
        return False


def _score(violations: list[Violation], files: int, lines: int, budget: Budget) -> int:
    """The drift score in basis points (docs/sessions.md)."""
    paths = {v.path for v in violations if v.kind != "budget"}
    ratio = min(1.0, len(paths) / max(1, files))
    excess = min(1.0, max(0.0, files / budget.max_files - 1, lines / budget.max_lines - 1))
    return round(10000 * (0.7 * ratio + 0.3 * excess))
