"""Drift: everything a session changed since its base commit, checked against its fence and budget.

Changed paths are the union of: files touched by commits since the base, the worktree's difference
from the base (staged and unstaged), untracked files, and ignored files written since the session
started. Each is decided by `check_action` with the session's pinned fence; git hook files and
`core.hooksPath` are compared with their fingerprint from session start.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from exo.kernel import Action, Fence, Governance, check_action

from . import git
from .runtime import Budget, OpenSession

Kind = Literal["out_of_scope", "denied", "protected", "symlink", "invalid_path", "frozen", "budget", "hook_tamper"]
MAX_COUNT_BYTES = 8 << 20  # untracked files larger than this count as one line per 8 MiB read


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
    budget: Budget
    violations: list[Violation] = Field(description="Every violation, by path.")
    score: float = Field(ge=0, le=1, description="0.7 * violating/changed + 0.3 * budget excess (docs/sessions.md).")


def hooks_fingerprint(root: Path) -> dict[str, str]:
    """sha256 of every active hook in `.git/hooks` and in a configured `core.hooksPath`, plus that
    setting itself (`*.sample` files are inert and left out)."""
    setting = git.config_value(root, "core.hooksPath") or ""
    common = Path(git.run(root, "rev-parse", "--git-common-dir"))
    places = {"hooks": (root / common if not common.is_absolute() else common) / "hooks"}
    if setting:
        places["hooksPath"] = root / setting
    prints = {"config:core.hooksPath": setting}
    for label, directory in places.items():
        if directory.is_dir():
            for entry in sorted(directory.iterdir()):
                if entry.is_file() and not entry.name.endswith(".sample"):
                    prints[f"{label}/{entry.name}"] = hashlib.sha256(entry.read_bytes()).hexdigest()
    return prints


def compute(root: Path, session: OpenSession, gov: Governance, fence: Fence, budget: Budget) -> DriftReport:
    """Measure the session's drift now. Raises StateError(IO_ERROR) if git fails."""
    base = session.base_commit
    counts: dict[str, tuple[int, int]] = {}  # path -> (added, removed)
    for entry in git.paths_z(root, "diff", "--numstat", "-z", "--no-renames", base):
        plus, minus, path = entry.split("\t", 2)
        counts[path] = (int(plus) if plus.isdigit() else 0, int(minus) if minus.isdigit() else 0)
    for path in git.paths_z(root, "log", "--format=", "--name-only", "-z", "--no-renames", f"{base}..HEAD"):
        counts.setdefault(path, (0, 0))
    for path in git.paths_z(root, "ls-files", "-z", "--others", "--exclude-standard"):
        counts[path] = (_count_lines(root / path), 0)
    started = session.started_at.timestamp()
    ignored = sorted(
        path
        for path in git.paths_z(root, "ls-files", "-z", "--others", "--ignored", "--exclude-standard")
        if _written_since(root / path, started)
    )
    own = _exo_own(root, session, fence)
    files = sorted(p for p in counts if p not in own)
    added = sum(counts[p][0] for p in files)
    removed = sum(counts[p][1] for p in files)
    violations = [v for p in files if (v := _judge(root, gov, fence, session.actor, p, strict=True))]
    # Ignored files are build output by declaration: only protected or constitution-denied ones count.
    violations += [v for p in ignored if (v := _judge(root, gov, fence, session.actor, p, strict=False))]
    violations += _hook_tamper(session.hooks, hooks_fingerprint(root))
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
    return DriftReport(
        ok=not violations,
        base_commit=base,
        head_commit=git.head(root),
        files=files,
        ignored_written=ignored,
        lines_added=added,
        lines_removed=removed,
        budget=budget,
        violations=violations,
        score=_score(violations, len(files), lines, budget),
    )


def _exo_own(root: Path, session: OpenSession, fence: Fence) -> set[str]:
    """Paths exo itself wrote for this session: its records, and .exo files it wrote meanwhile
    (only while their content is still exactly what exo wrote)."""
    own = set(fence.exo_paths)
    for path, digest in session.exo_writes.items():
        try:
            if hashlib.sha256((root / path).read_bytes()).hexdigest() == digest:
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
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            what = "added" if name not in before else "removed" if name not in after else "changed"
            shown = ".git/" + name if name.startswith("hooks/") else name.removeprefix("config:")
            shown = shown.replace("hooksPath/", "core.hooksPath:", 1)
            out.append(
                Violation(kind="hook_tamper", path=shown, reason=f"git hook configuration {what} during the session")
            )
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


def _score(violations: list[Violation], files: int, lines: int, budget: Budget) -> float:
    paths = {v.path for v in violations if v.kind != "budget"}
    ratio = min(1.0, len(paths) / max(1, files))
    excess = min(1.0, max(0.0, files / budget.max_files - 1, lines / budget.max_lines - 1))
    return round(0.7 * ratio + 0.3 * excess, 4)
