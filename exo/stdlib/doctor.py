"""`exo doctor`: re-check everything from the committed files alone (this is what CI runs).

Governance lock, config, tickets, session records, every audit chain (with the anchors of session
records and commit trailers), leftover temp files and torn tails, and for every commit in a range:
its trailers resolve to a committed session record and a `commit.prepared` record with the same
tree and parents, and its diff passes that session's fence. A probe feeds the configured agent hook
an out-of-scope write. Each problem has a stable code, the commit or file, and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from exo.kernel import (
    Action,
    Anchor,
    ExoError,
    Fence,
    Governance,
    append_audit,
    check_action,
    compile_constitution,
    load_governance,
    verify_audit,
)
from exo.kernel.fs import TMP_MARK, state_dir
from exo.kernel.layout import AUDIT_DIR, CONSTITUTION, EXO_DIR, REPO_STREAM

from . import git, records, tickets
from .config import load_config
from .githooks import DEFAULT_POLICY, commit_policy, exempt

CLAUDE = ".claude/settings.json"
FIX = {
    "GOVERNANCE": "run `exo build-governance` and commit .exo/governance.lock.json with the constitution",
    "GOVERNANCE_EDITED": "the lock differs from a fresh compile of the constitution: run `exo build-governance`",
    "CONFIG_INVALID": "fix .exo/config.yaml",
    "TICKET_INVALID": "fix the ticket file",
    "SESSION_RECORD_INVALID": "restore the session record from git history",
    "AUDIT": "restore the audit stream from git history; never edit audit files by hand",
    "LEFTOVER_TEMP": "run `exo doctor --fix` (an interrupted write left it)",
    "TORN_TAIL": "run `exo doctor --fix` (an interrupted append left it)",
    "COMMIT_UNSTAMPED": "the commit bypassed exo's hooks: redo the work in a governed session",
    "COMMIT_UNGOVERNED": "an agent committed without a session: redo the work in a governed session",
    "TRAILER_UNRESOLVED": "finish the session (its record must be committed) or redo the commit in one",
    "TRAILER_FORGED": "the trailer does not match the session's audit record: redo the commit in the session",
    "COMMIT_OUT_OF_SCOPE": "move those changes into a session whose ticket covers them",
    "HOOK_PROBE_FAILED": "reinstall the agent hooks (`exo hook-install --claude`) and put `exo` on PATH",
}


class Problem(BaseModel):
    code: str = Field(description="Stable problem code.")
    subject: str = Field(description="The file or commit concerned.")
    message: str = Field(description="What is wrong.")
    fix: str = Field(description="How to fix it.")


class DoctorReport(BaseModel):
    """`ok` only when there is no problem."""

    ok: bool
    commits: int = Field(description="Commits checked.")
    streams: int = Field(description="Audit streams verified.")
    anchors: int = Field(description="Anchors checked (session records and commit trailers).")
    accepted: list[str] = Field(description="Commits outside a fence whose drift a human accepted.")
    fixed: list[str] = Field(description="What --fix repaired.")
    problems: list[Problem]


def diagnose(root: Path, *, commit_range: str | None = None, fix: bool = False, probe: bool = True) -> DoctorReport:
    """Run every check. Raises only for a bad range (INVALID_ARGUMENT) or a broken git."""
    problems: list[Problem] = []

    def problem(code: str, subject: str, message: str, fix_key: str | None = None) -> None:
        problems.append(Problem(code=code, subject=subject, message=message, fix=FIX[fix_key or code]))

    fixed = _leftovers(root, fix, problem)
    gov = _governance(root, problem)
    try:
        load_config(root)
    except ExoError as exc:
        problem("CONFIG_INVALID", ".exo/config.yaml", exc.message)
    try:
        tickets.load_all(root)
    except ExoError as exc:
        problem(exc.code if exc.code in FIX else "TICKET_INVALID", ".exo/tickets", exc.message, "TICKET_INVALID")
    history = _records(root, problem)
    anchors = [r.audit for r in history.values()]
    commits = _commits(root, commit_range)
    accepted: list[str] = []
    for sha in commits:
        anchors += _check_commit(root, sha, gov, history, problem, accepted)
    report = verify_audit(root, anchors)
    for item in report.problems:
        if item.kind == "torn_tail" and fix:
            fixed.append(_repair_tail(root, item.stream))
            continue
        code = "TORN_TAIL" if item.kind == "torn_tail" else f"AUDIT_{item.kind.upper()}"
        where = f"{AUDIT_DIR}/{item.stream}.jsonl" + (f" line {item.line}" if item.line else "")
        problem(code, where, item.message, "TORN_TAIL" if item.kind == "torn_tail" else "AUDIT")
    if probe:
        _probe(root, problem)
    return DoctorReport(
        ok=not problems,
        commits=len(commits),
        streams=len(report.streams),
        anchors=report.anchors_checked,
        accepted=accepted,
        fixed=fixed,
        problems=problems,
    )


def _governance(root: Path, problem: Any) -> Governance | None:
    try:
        gov = load_governance(root)
    except ExoError as exc:
        problem(exc.code, ".exo/governance.lock.json", exc.message, "GOVERNANCE")
        return None
    with tempfile.TemporaryDirectory(prefix="exo-doctor-") as tmp:
        (Path(tmp) / EXO_DIR).mkdir()
        shutil.copy(root / CONSTITUTION, Path(tmp) / CONSTITUTION)
        try:
            fresh = compile_constitution(tmp)
        except ExoError as exc:
            problem("GOVERNANCE_EDITED", CONSTITUTION, exc.message)
            return gov
    if fresh.rules != gov.rules:
        problem("GOVERNANCE_EDITED", ".exo/governance.lock.json", "the compiled rules differ from the constitution's")
    return gov


def _records(root: Path, problem: Any) -> dict[str, records.SessionRecord]:
    out = {}
    directory = root / records.SESSIONS
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = records.SessionRecord.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            problem("SESSION_RECORD_INVALID", f"{records.SESSIONS}/{path.name}", str(exc).splitlines()[0])
            continue
        if record.sid != path.stem:
            problem("SESSION_RECORD_INVALID", f"{records.SESSIONS}/{path.name}", f"holds session {record.sid}")
            continue
        out[record.sid] = record
    return out


def _commits(root: Path, commit_range: str | None) -> list[str]:
    """Commits to check, oldest first: the range, else every commit since governance was added."""
    if commit_range:
        out = git.run(root, "rev-list", "--reverse", commit_range, check=False)
        if not out and ".." in commit_range:
            from exo.kernel import InputError

            base, head = commit_range.split("..", 1)
            for ref in (base, head or "HEAD"):
                if not git.run(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False):
                    raise InputError(f"unknown revision {ref!r} in --range", code="INVALID_ARGUMENT")
        return out.split()
    if not git.run(root, "rev-parse", "--verify", "-q", "HEAD", check=False):
        return []
    added = git.run(root, "log", "--format=%H", "--diff-filter=A", "--", ".exo/governance.lock.json").split()
    if not added:
        return []
    return git.run(root, "rev-list", "--reverse", f"{added[-1]}..HEAD").split()


def _trailers(root: Path, sha: str) -> dict[str, str]:
    text = git.run(root, "log", "-1", "--format=%(trailers:only,unfold)", sha)
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line and line.startswith("Exo-"))


def _changed(root: Path, sha: str) -> list[tuple[str, str]]:
    entries = git.paths_z(
        root, "diff-tree", "-r", "--root", "--no-commit-id", "--name-status", "-z", "--no-renames", sha
    )
    return [("delete" if s == "D" else "write", p) for s, p in zip(entries[::2], entries[1::2], strict=True)]


def _check_commit(
    root: Path,
    sha: str,
    gov: Governance | None,
    history: dict[str, records.SessionRecord],
    problem: Any,
    accepted: list[str],
) -> list[Anchor]:
    short = sha[:12]
    stamp = _trailers(root, sha)
    actor = stamp.get("Exo-Actor")
    sid = stamp.get("Exo-Session")
    if actor is None:
        problem("COMMIT_UNSTAMPED", short, "no Exo-* trailers: the commit bypassed exo's hooks")
        return []
    if sid is None:
        policy = commit_policy(gov) if gov is not None else DEFAULT_POLICY
        if policy.get("require_session", True) and not exempt(actor, policy.get("exempt_actors", [])):
            problem("COMMIT_UNGOVERNED", short, f"{actor} committed without an exo session")
        return []
    record = history.get(sid)
    if record is None:
        problem("TRAILER_UNRESOLVED", short, f"session {sid} has no committed session record")
        return []
    audit = stamp.get("Exo-Audit", "")
    seq, _, digest = audit.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        problem("TRAILER_FORGED", short, f"Exo-Audit {audit!r} is not <seq>:<sha256>")
        return []
    anchor = Anchor(stream=sid, seq=int(seq), h=digest, source=f"commit {short}")
    if stamp.get("Exo-Ticket") != record.ticket_id or actor != record.actor:
        problem("TRAILER_FORGED", short, f"ticket or actor trailers do not match session {sid}")
    closeout = any(path == f"{records.SESSIONS}/{sid}.json" for _, path in _changed(root, sha))
    if closeout:
        if (record.audit.seq, record.audit.h) != (anchor.seq, anchor.h):
            problem("TRAILER_FORGED", short, "the closeout's Exo-Audit is not the session's sealed head")
    else:
        _check_prepared(root, sha, anchor, problem)
    if gov is not None:
        fence = Fence.from_globs(record.scope_allow, record.scope_deny, exo_paths=records.own_paths(sid))
        stray = [
            f"{path} [{d.rule}]"
            for operation, path in _changed(root, sha)
            if not (d := check_action(gov, fence, Action(record.actor, operation, path))).allowed
            and not (closeout and path.startswith(".exo/"))
        ]
        if stray and record.accepted_drift:
            accepted.append(f"{short}: {', '.join(stray)} (accepted: {record.accepted_drift})")
        elif stray:
            problem("COMMIT_OUT_OF_SCOPE", short, f"outside session {sid}'s fence: {', '.join(stray)}")
    return [anchor]


def _check_prepared(root: Path, sha: str, anchor: Anchor, problem: Any) -> None:
    """The trailer must name a commit.prepared record for exactly this tree and these parents."""
    short = sha[:12]
    path = root / AUDIT_DIR / f"{anchor.stream}.jsonl"
    try:
        lines = path.read_bytes().splitlines()
        record = json.loads(lines[anchor.seq - 1]) if 0 < anchor.seq <= len(lines) else None
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or record.get("h") != anchor.h or record.get("event") != "commit.prepared":
        problem("TRAILER_FORGED", short, f"Exo-Audit {anchor.seq}:{anchor.h[:12]}... names no commit.prepared record")
        return
    tree = git.run(root, "rev-parse", f"{sha}^{{tree}}")
    parents = git.run(root, "rev-parse", f"{sha}^@").split()
    data = record.get("data", {})
    if data.get("tree") != tree or data.get("parents") != parents:
        problem("TRAILER_FORGED", short, "the trailer was prepared for another tree or parents (copied)")


def _leftovers(root: Path, fix: bool, problem: Any) -> list[str]:
    fixed = []
    places = [root / EXO_DIR]
    with contextlib.suppress(ExoError):  # no git dir: nothing there to check
        places.append(state_dir(root))
    for place in places:
        for path in sorted(place.rglob(f"*{TMP_MARK}*")) if place.is_dir() else []:
            shown = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            if fix:
                path.unlink(missing_ok=True)
                fixed.append(f"removed {shown}")
            else:
                problem("LEFTOVER_TEMP", shown, "a temp file an interrupted write left behind")
    if fixed:
        append_audit(root, REPO_STREAM, "doctor.repaired", {"removed": fixed})
    return fixed


def _repair_tail(root: Path, stream: str) -> str:
    path = root / AUDIT_DIR / f"{stream}.jsonl"
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    path.write_bytes(keep)
    removed = data[len(keep) :]
    append_audit(
        root,
        REPO_STREAM,
        "doctor.repaired",
        {"stream": stream, "torn_bytes": len(removed), "torn_sha256": hashlib.sha256(removed).hexdigest()},
    )
    return f"truncated a torn tail of {len(removed)} bytes in {AUDIT_DIR}/{stream}.jsonl"


def _probe(root: Path, problem: Any) -> None:
    """Feed each configured Claude Code PreToolUse hook an out-of-scope write; it must deny (exit 2)."""
    settings = root / ".claude/settings.json"
    try:
        doc = json.loads(settings.read_bytes())
        entries = doc.get("hooks", {}).get("PreToolUse", [])
    except (OSError, ValueError, AttributeError):
        return
    commands = [
        h["command"]
        for e in entries
        if isinstance(e, dict)
        for h in e.get("hooks", [])
        if isinstance(h, dict) and isinstance(h.get("command"), str) and "exo hook" in h["command"]
    ]
    payload = json.dumps(
        {
            "session_id": "exo-doctor-probe",
            "hook_event_name": "PreToolUse",
            "cwd": str(root),
            "tool_name": "Write",
            "tool_input": {"file_path": str(root / ".git" / "exo-doctor-probe"), "content": "probe"},
        }
    )
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=root, input=payload, capture_output=True, text=True, timeout=60)
        if done.returncode != 2:
            problem(
                "HOOK_PROBE_FAILED", CLAUDE, f"`{command}` let an out-of-scope write through (exit {done.returncode})"
            )
