"""`exo doctor`: verify a range of history from git objects alone (this is what CI runs).

Doctor judges content, not commit identity (docs/ci.md): for every commit in the range it accounts
for each path the commit brings in — inherited from a parent, produced by a session whose record
is at the range's head, or changed by an actor the commit policy exempts (see `provenance`) — and
it checks that records, mementos and sealed streams were only ever added. At the head it checks
the governance lock against the constitution, the config, every ticket, every session record
against its memento and audit stream, and every audit chain with the records' anchors. It refuses
to judge what it cannot see (a shallow clone, a base that is not there) and says when a push
rewrote history. Locally it also finds what interrupted writes left behind and runtime files that
are not files exo could have written (`--fix` repairs what exo can rebuild).
Nothing it reads from the repository is ever run.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from exo.kernel import (
    ExoError,
    Governance,
    InputError,
    append_audit,
    compile_constitution,
    load_governance,
    verify_audit,
)
from exo.kernel.fs import TMP_MARK, runtime_audit_dir
from exo.kernel.layout import AUDIT_DIR, CONSTITUTION, EXO_DIR, LOCAL_STREAM, LOCK
from exo.kernel.safe import read_regular
from exo.kernel.state import State

from . import attestations, events, git, history, records, signing, tickets
from .config import CONFIG, load_config
from .history import Commit
from .provenance import WRITE_ONCE, Finding, Judge

FIX = {
    "GOVERNANCE": "run `exo build-governance` and commit .exo/governance.lock.json with the constitution",
    "GOVERNANCE_EDITED": "the lock differs from a fresh compile of the constitution: run `exo build-governance`",
    "CONFIG_INVALID": "fix .exo/config.yaml",
    "TICKET_INVALID": "fix the ticket file",
    "SESSION_RECORD_INVALID": "restore the session record from git history",
    "AUDIT": "restore the audit stream from git history; never edit audit files by hand",
    "LEFTOVER_TEMP": "run `exo doctor --fix` (an interrupted write left it)",
    "TORN_TAIL": "run `exo doctor --fix` (an interrupted append left it)",
    "STATE_REBUILDABLE": "run `exo doctor --fix` (exo rebuilds locks and caches)",
    "STATE_CORRUPT": "exo never makes this: find out who did, move it aside and put the file back from a backup",
    "COMMIT_UNGOVERNED": "an agent committed without a session: redo the work in a governed session",
    "CONTENT_UNGOVERNED": "redo the change in a session whose ticket covers it, or have a human commit it",
    "RECORD_REWRITTEN": "records, mementos and sealed streams are write-once: restore them from git history",
    "HISTORY_REWRITTEN": "the pushed branch no longer contains its previous tip: restore it or review the rewrite",
    "SHALLOW_CLONE": "fetch the whole history (actions/checkout: `fetch-depth: 0`; git: `git fetch --unshallow`)",
    "BASE_MISSING": "fetch the range's base (`git fetch origin <base>`, `fetch-depth: 0`); a force push loses it",
    "HOOK_PROBE_FAILED": "reinstall exo (its agent hook let a synthetic out-of-scope write through)",
    "SIGNATURE_MISSING": "the constitution requires it signed: close sessions where a listed broker key is",
    "SIGNATURE_INVALID": "nobody listed in .exo/allowed_signers signed it: it was forged or rewritten",
    "ACT_MISSING": "a human runs the act (`exo keys add`, `exo build-governance`, ...) with their signing key",
    "CLAIM_MISMATCH": "Exo-Claim must name the session's own ticket and lease epoch: it was forged or edited",
    "CLAIM_STALE": "work of a claim that was taken over: the current holder builds on it (merge, rebase) or reverts it",
}
_SIDE = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9._/@{}~^+-]{0,255}")
_FULL_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
PROBE = [sys.executable, "-m", "exo", "hook", "claude", "pre-tool-use"]  # exo's own hook, never a configured one
_PROBE_PAYLOAD = {
    "session_id": "exo-doctor-probe",
    "hook_event_name": "PreToolUse",
    "tool_name": "Write",
    "tool_input": {"file_path": ".git/exo-doctor-probe", "content": "probe"},
}


class Problem(BaseModel):
    code: str = Field(description="Stable problem code.")
    subject: str = Field(description="The file or commit concerned.")
    message: str = Field(description="What is wrong.")
    fix: str = Field(description="How to fix it.")


class DoctorReport(BaseModel):
    """`ok` only when there is no problem."""

    ok: bool
    range: str = Field(description="What was checked: BASE..HEAD, or the whole history of HEAD.")
    head: str | None = Field(description="The commit whose records were used (the range's head).")
    commits: int = Field(description="Commits judged (those made after exo was committed).")
    skipped: int = Field(description="Commits in the range from before exo was committed (nothing to judge).")
    records: int = Field(
        description="Session records checked at the head (with a BASE, those the range adds or relies on)."
    )
    streams: int = Field(description="Audit streams verified at the head (with a BASE, those the range touches).")
    anchors: int = Field(description="Anchors checked (the records' sealed heads).")
    accounted: dict[str, int] = Field(description="Changed paths by how they are accounted for.")
    accepted: list[str] = Field(description="Paths outside a fence whose drift a human accepted.")
    legacy: list[str] = Field(description="Commits of format-1 sessions, judged by their trailers.")
    signed: list[str] = Field(description="Records and human acts the range adds whose signature verified.")
    unsigned: list[str] = Field(description="Records and human acts the range adds without a verified signature.")
    trust_root: str | None = Field(default=None, description="The commit that first listed signers, taken on trust.")
    fixed: list[str] = Field(description="What --fix repaired.")
    problems: list[Problem]


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def __call__(self, code: str, subject: str, message: str, fix_key: str | None = None) -> None:
        self.items.append(
            Problem(code=code, subject=_shown(subject), message=_shown(message), fix=FIX[fix_key or code])
        )


def _shown(text: str) -> str:
    """Text for the report: a name git gave us that is not UTF-8 is shown with backslash escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class _Span:
    label: str
    head: str | None
    revs: list[str]


def diagnose(root: Path, *, commit_range: str | None = None, fix: bool = False, probe: bool = False) -> DoctorReport:
    """Run every check. Raises InputError(INVALID_ARGUMENT) for a range that is not one."""
    problem = _Problems()
    span = _span(root, commit_range, problem)
    fixed = _local(root, fix, problem)
    report = DoctorReport(
        ok=False, range=span.label, head=span.head, commits=0, skipped=0, records=0, streams=0, anchors=0,
        accounted={}, accepted=[], legacy=[], signed=[], unsigned=[], fixed=fixed, problems=[],
    )  # fmt: skip
    if span.head is not None:
        with tempfile.TemporaryDirectory(prefix="exo-doctor-") as tmp:
            _verify(root, span, Path(tmp), problem, report)
    if probe:
        _probe(root, problem)
    report.problems = problem.items
    report.ok = not problem.items
    return report


# --- the range


def _span(root: Path, commit_range: str | None, problem: _Problems) -> _Span:
    """Validate and resolve the range; nothing the user typed reaches git as an option."""
    if commit_range is not None:
        _syntax(commit_range)
    if git.run(root, "rev-parse", "--is-shallow-repository") == "true":
        problem("SHALLOW_CLONE", "the clone", "a shallow clone cannot show where content came from")
        return _Span(commit_range or "all of HEAD", None, [])
    if commit_range is None:
        head = _resolve(root, "HEAD")
        label = "all of HEAD"
        base = None
    else:
        left, right = _syntax(commit_range)
        head = _resolve(root, right or "HEAD", required=True)
        label = commit_range
        base = _resolve(root, left or "HEAD")
        if base is None:
            if not _FULL_ID.fullmatch(left):
                raise InputError(f"unknown revision {left!r} in --range", code="INVALID_ARGUMENT")
            problem("BASE_MISSING", left[:12], f"the range's base {left} is not in this clone")
            return _Span(label, None, [])
    if head is None:
        return _Span(label, None, [])  # no commit yet: nothing to verify
    if base is None:
        return _Span(label, head, [head])
    if "..." in (commit_range or ""):
        base = git.run(root, "merge-base", base, head, check=False) or None
        return _Span(label, head, [head, "^" + base] if base else [head])
    if not _ancestor(root, base, head):
        problem("HISTORY_REWRITTEN", base[:12], f"{base[:12]} is not an ancestor of {head[:12]}: history was rewritten")
    return _Span(label, head, [head, "^" + base])


def _syntax(commit_range: str) -> tuple[str, str]:
    """(base, head) of `BASE..HEAD` or `BASE...HEAD`; raises InputError(INVALID_ARGUMENT) otherwise."""
    left, sep, right = commit_range.partition("..." if "..." in commit_range else "..")
    if not sep or any(side and (not _SIDE.fullmatch(side) or ".." in side) for side in (left, right)):
        raise InputError(
            f"--range {commit_range!r} is not BASE..HEAD or BASE...HEAD",
            code="INVALID_ARGUMENT",
            hint="e.g. --range origin/main..HEAD (a push) or --range origin/main...HEAD (a pull request)",
        )
    return left, right


def _resolve(root: Path, rev: str, *, required: bool = False) -> str | None:
    sha = git.run(root, "rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}", check=False)
    if not sha and required:
        raise InputError(f"unknown revision {rev!r} in --range", code="INVALID_ARGUMENT")
    return sha or None


def _ancestor(root: Path, base: str, head: str) -> bool:
    done = subprocess.run(
        ["git", "merge-base", "--is-ancestor", base, head], cwd=root, capture_output=True, check=False
    )
    return done.returncode == 0


# --- what the head holds, and every commit of the range


def _verify(root: Path, span: _Span, tmp: Path, problem: _Problems, report: DoctorReport) -> None:
    assert span.head is not None
    exo = history.tree(root, span.head, EXO_DIR)
    listed = history.commits(root, span.revs) if span.revs else []
    contents = git.blobs(root, [oid for path, (_mode, oid) in exo.items() if _record(path)])
    wanted = _wanted(exo, listed, contents) if len(span.revs) > 1 else set(exo)
    contents.update(git.blobs(root, [oid for path, (_mode, oid) in exo.items() if path in wanted]))

    def blob(path: str) -> bytes | None:
        return contents.get(exo[path][1]) if path in exo else None

    governance = _HeadGovernance(root, tmp)
    # A head without .exo/ at all is a branch exo never reached (removing it is a commit judged below).
    head_gov = governance.check_head(blob(CONSTITUTION), blob(LOCK), problem) if exo else None
    _config(tmp / "config", blob(CONFIG), problem)
    _tickets([p for p in exo if p in wanted], blob, problem)
    found = _records([p for p in exo if p in wanted], blob, problem)
    streams = {records.sid_of(p): blob(p) or b"" for p in exo if _stream(p) and p in wanted}
    _audit(tmp / "audit", streams, found, problem, report)
    report.records = len(found)
    governed = _governed(root, listed)
    gov_of = governance.of(governed | {p for c in listed for p in c.parents}, head_gov)
    judged = [c for c in listed if c.sha in governed]
    signers = attestations.Signers(root, judged)
    unsigned = attestations.human_commits(root, judged, gov_of, signers)
    judge = Judge(root, found, streams, lambda commit: gov_of(commit.sha), unsigned)
    _signatures(judged, found, blob, gov_of, signers, problem, report)
    for commit in listed:
        if commit.sha not in governed:
            report.skipped += 1
            continue
        report.commits += 1
        _policy(commit, judge, problem)
        for finding in judge.judge(commit):
            _tally(commit, finding, problem, report)
    _claims(judged, found, _earlier_epochs(root, span.revs[1:]), problem)


def _signatures(
    listed: list[Commit],
    found: dict[str, records.SessionRecord],
    blob: Callable[[str], bytes | None],
    gov_of: Callable[[str], Governance],
    signers: attestations.Signers,
    problem: _Problems,
    report: DoctorReport,
) -> None:
    """Brokers' signatures on the records the range adds and humans' on its acts: a problem where
    the constitution requires them (SPEC §14), a line of the report either way."""
    root = Path(signers.root)
    adding = attestations.added_records(listed)
    for verdict in attestations.judge(adding, blob, gov_of, signers):
        where = f"{verdict.commit[:12]} {records.SESSIONS}/{verdict.sid}.json"
        if verdict.signer is not None:
            report.signed.append(f"{verdict.sid} by {verdict.signer}")
            continue
        report.unsigned.append(_shown(f"{verdict.sid}: {verdict.why}"))
        if verdict.required:
            unsigned = blob(records.signature_path(verdict.sid)) is None
            problem("SIGNATURE_MISSING" if unsigned else "SIGNATURE_INVALID", where, verdict.why)
    acts = attestations.acts(listed, blob, gov_of, signers)
    for act in acts:
        name = f"{act.event} {records.sid_of(act.stream)}"
        if act.signer is not None:
            report.signed.append(f"{name} by {act.signer}")
            if act.trust_root and act.event == "signers.changed":
                report.trust_root = f"{act.commit.short} (first {signing.ALLOWED_SIGNERS}, by {act.signer})"
            continue
        if act.event == "governance.compiled" and act.why == "the act is not signed":
            continue  # a compile is an act only where a guarded change needs it (below)
        report.unsigned.append(_shown(f"{name}: {act.why}"))
        if act.required:
            unsigned = blob(events.signature_path(act.stream)) is None
            problem(
                "SIGNATURE_MISSING" if unsigned else "SIGNATURE_INVALID", f"{act.commit.short} {act.stream}", act.why
            )
    for gap in attestations.missing(listed, acts, adding, found, gov_of, lambda oids: git.blobs(root, oids)):
        problem("ACT_MISSING", f"{gap.commit.short} {gap.path}", gap.why)


def _claims(
    listed: list[Commit], found: dict[str, records.SessionRecord], earlier: dict[str, int], problem: _Problems
) -> None:
    """Fencing in the history (SPEC §8). A commit's `Exo-Claim: TICKET@EPOCH` must be its session's
    own ticket and lease epoch; and work made under an epoch that a later one took over is stale
    unless some commit of a later epoch builds on it (the new holder took it in). A session whose
    record says it finished or handed off let its epoch go itself: its work is not stale, whenever
    it lands. `earlier` holds the highest epoch per ticket before the range (none of whose commits
    can build on the range)."""
    from .githooks import claim_of

    by_ticket: dict[str, list[tuple[int, Commit]]] = {}
    closed: set[str] = set()  # commits of sessions that finished or handed off
    for commit in listed:
        value = commit.trailers.get("Exo-Claim")
        if value is None:
            continue
        claim = claim_of(value)
        record = found.get(commit.trailers.get("Exo-Session", ""))
        own = record is None or (record.ticket_id, record.lease_epoch) == claim
        if claim is None or claim[0] != commit.trailers.get("Exo-Ticket") or not own:
            said = f"its session holds {record.ticket_id}@{record.lease_epoch}" if record and not own else "it is not"
            problem("CLAIM_MISMATCH", commit.short, f"Exo-Claim {value!r}: {said} the commit's own ticket and epoch")
            continue
        by_ticket.setdefault(claim[0], []).append((claim[1], commit))
        if record is not None and record.outcome != "abandoned":
            closed.add(commit.sha)
    parents = {commit.sha: commit.parents for commit in listed}
    for ticket_id, made in by_ticket.items():
        latest = max([earlier.get(ticket_id, 0), *(epoch for epoch, _ in made)])
        built_on: set[str] = set()  # ancestors of the commits of every epoch above the one judged
        for epoch in sorted({epoch for epoch, _ in made}, reverse=True):
            group = [commit for e, commit in made if e == epoch]
            for commit in group:
                if epoch < latest and commit.sha not in built_on and commit.sha not in closed:
                    problem(
                        "CLAIM_STALE",
                        commit.short,
                        f"made under epoch {epoch} of the claim on {ticket_id}, which epoch {latest} took over; "
                        "no later holder's work builds on it",
                    )
            for commit in group:
                built_on |= _ancestry(commit.sha, parents, built_on)


def _ancestry(sha: str, parents: dict[str, tuple[str, ...]], known: set[str]) -> set[str]:
    """`sha`'s ancestors among `parents` (itself excluded), not walking into `known` again."""
    seen: set[str] = set()
    todo = list(parents.get(sha, ()))
    while todo:
        here = todo.pop()
        if here in seen or here in known:
            continue
        seen.add(here)
        todo.extend(parents.get(here, ()))
    return seen


def _earlier_epochs(root: Path, excluded: list[str]) -> dict[str, int]:
    """The highest Exo-Claim epoch per ticket among the commits before a range (`^BASE`), one git
    process; nothing for the whole history."""
    from .githooks import claim_of

    if not excluded:
        return {}
    text = git.run(root, "log", "--format=%(trailers:key=Exo-Claim,valueonly)", *(rev[1:] for rev in excluded), "--")
    highest: dict[str, int] = {}
    for line in text.splitlines():
        claim = claim_of(line.strip())
        if claim is not None:
            highest[claim[0]] = max(highest.get(claim[0], 0), claim[1])
    return highest


def _wanted(exo: dict[str, history.Entry], listed: list[Commit], contents: dict[str, bytes]) -> set[str]:
    """The `.exo/` files at the head that a range's verdict rests on: those its commits touch, and
    every file of the sessions they name or whose products or writes are paths they change. The
    rest was checked when the commits that added it were (each is write-once or checked at its own
    range's head), so a range costs what it brings, not what the repository has accumulated."""
    touched = {path for commit in listed for path in commit.touched()}
    sids = {commit.trailers.get("Exo-Session", "") for commit in listed}
    sids |= {records.sid_of(path) for path in touched if path.startswith(WRITE_ONCE)}
    for path, (_mode, oid) in exo.items():
        if _record(path) and records.sid_of(path) not in sids and touched & _listed_paths(contents.get(oid, b"")):
            sids.add(records.sid_of(path))
    own = {path for sid in sids if sid for path in records.own_paths(sid)}
    return {path for path in exo if path in touched or path in own} | {CONSTITUTION, LOCK, CONFIG}


def _listed_paths(raw: bytes) -> set[str]:
    """The paths a session record lists as products or writes (nothing, for what does not parse)."""
    try:
        data = json.loads(raw)
        return {item["path"] for key in ("products", "writes") for item in data.get(key) or []}
    except (ValueError, AttributeError, KeyError, TypeError, RecursionError):
        return set()


def _record(path: str) -> bool:
    return path.startswith(f"{records.SESSIONS}/") and path.endswith(".json")


def _stream(path: str) -> bool:
    return path.startswith(f"{AUDIT_DIR}/") and path.endswith(".jsonl") and path.count("/") == 2


def _tally(commit: Commit, finding: Finding, problem: _Problems, report: DoctorReport) -> None:
    report.accounted[finding.how] = report.accounted.get(finding.how, 0) + 1
    where = f"{commit.short} {finding.path}"
    if finding.how == "ungoverned":
        problem("CONTENT_UNGOVERNED", where, finding.detail)
    elif finding.how == "rewritten":
        problem("RECORD_REWRITTEN", where, finding.detail)
    elif finding.how == "accepted":
        report.accepted.append(_shown(f"{where}: {finding.detail}"))
    elif finding.how == "legacy" and commit.short not in report.legacy:
        report.legacy.append(commit.short)


def _policy(commit: Commit, judge: Judge, problem: _Problems) -> None:
    """The commit policy: a stamped actor the policy does not exempt commits only inside a session."""
    from .githooks import commit_policy, exempt_commit

    actor = commit.trailers.get("Exo-Actor")
    if actor is None or "Exo-Session" in commit.trailers:
        return
    policy = commit_policy(judge.governance(commit))
    if policy.get("require_session", True) and not exempt_commit(commit.trailers, policy):
        problem("COMMIT_UNGOVERNED", commit.short, f"{actor} committed without an exo session")


def _governed(root: Path, listed: list[Commit]) -> set[str]:
    """Commits made on top of exo: some parent holds the governance lock. The commit that adds exo
    (no parent has the lock) is where governance starts; what came before it has nothing to judge."""
    parents = sorted({p for c in listed for p in c.parents})
    locks = git.objects(root, [f"{sha}:{LOCK}" for sha in parents])
    has = {name.split(":", 1)[0] for name, oid in locks.items() if oid}
    return {c.sha for c in listed if any(p in has for p in c.parents)}


class _HeadGovernance:
    """Governance objects for the commits judged: each commit's own lock and constitution, loaded
    from git objects into a scratch directory (no freeze, no worktree: the decision is lexical)."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        self.loaded: dict[tuple[str | None, str | None], Governance | None] = {}
        self.places = itertools.count()

    def check_head(self, constitution: bytes | None, lock: bytes | None, problem: _Problems) -> Governance | None:
        try:
            gov = self._load(constitution, lock)
        except ExoError as exc:
            problem(exc.code, LOCK, exc.message, "GOVERNANCE")
            return None
        place = self.tmp / "fresh"
        (place / EXO_DIR).mkdir(parents=True)
        (place / CONSTITUTION).write_bytes(constitution or b"")
        try:
            fresh = compile_constitution(place)
        except ExoError as exc:
            problem("GOVERNANCE_EDITED", CONSTITUTION, exc.message)
            return gov
        if fresh.rules != gov.rules:
            problem("GOVERNANCE_EDITED", LOCK, "the compiled rules differ from the constitution's")
        return gov

    def _load(self, constitution: bytes | None, lock: bytes | None) -> Governance:
        place = self.tmp / f"gov-{next(self.places)}"
        (place / EXO_DIR).mkdir(parents=True)
        if constitution is not None:
            (place / CONSTITUTION).write_bytes(constitution)
        if lock is not None:
            (place / LOCK).write_bytes(lock)
        return load_governance(place)

    def of(self, governed: set[str], fallback: Governance | None) -> Callable[[str], Governance]:
        """commit id -> the governance in its tree (the head's, or none, where that one does not load)."""
        names = [f"{sha}:{path}" for sha in sorted(governed) for path in (CONSTITUTION, LOCK)]
        oids = git.objects(self.root, names)
        contents = git.blobs(self.root, [oid for oid in oids.values() if oid])
        empty = self._empty()
        default = fallback or empty

        def governance(sha: str) -> Governance:
            key = (oids.get(f"{sha}:{CONSTITUTION}"), oids.get(f"{sha}:{LOCK}"))
            if key == (None, None):
                return empty  # a commit from before exo: no rule binds it
            if key not in self.loaded:
                try:
                    self.loaded[key] = self._load(*(contents.get(oid) if oid else None for oid in key))
                except ExoError:
                    self.loaded[key] = None
            return self.loaded[key] or default

        return governance

    def _empty(self) -> Governance:
        place = self.tmp / "empty"
        (place / EXO_DIR).mkdir(parents=True)
        (place / CONSTITUTION).write_bytes(b"")
        return compile_constitution(place)


def _config(place: Path, raw: bytes | None, problem: _Problems) -> None:
    if raw is None:
        return
    (place / EXO_DIR).mkdir(parents=True)
    (place / CONFIG).write_bytes(raw)
    try:
        load_config(place)
    except ExoError as exc:
        problem("CONFIG_INVALID", CONFIG, exc.message)


def _tickets(paths: list[str], blob: Callable[[str], bytes | None], problem: _Problems) -> None:
    for path in sorted(p for p in paths if p.startswith(f"{tickets.TICKETS}/") and p.endswith(".yaml")):
        try:
            ticket = tickets.parse(blob(path) or b"", path)
        except ExoError as exc:
            problem("TICKET_INVALID", path, exc.message)
            continue
        if f"{tickets.TICKETS}/{ticket.id}.yaml" != path:
            problem("TICKET_INVALID", path, f"holds ticket id {ticket.id!r}")


def _records(
    paths: list[str], blob: Callable[[str], bytes | None], problem: _Problems
) -> dict[str, records.SessionRecord]:
    """Every session record at the head that is what it says: valid, named after its session, with
    its memento, and (format 2) agreeing with its pinned fence and its audit stream's start."""
    found = {}
    for path in sorted(filter(_record, paths)):
        try:
            record = records.parse(blob(path) or b"")
        except ValueError as exc:
            problem("SESSION_RECORD_INVALID", path, str(exc).splitlines()[0][:300])
            continue
        if f"{records.SESSIONS}/{record.sid}.json" != path:
            problem("SESSION_RECORD_INVALID", path, f"holds session {record.sid}")
            continue
        if record.version >= 2:
            why = _disagreement(record, blob)
            if why:
                code = "RECORD_REWRITTEN" if why.startswith("its memento") else "SESSION_RECORD_INVALID"
                problem(code, path, why)
                continue
        found[record.sid] = record
    return found


def _disagreement(record: records.SessionRecord, blob: Callable[[str], bytes | None]) -> str:
    memento = blob(f"{records.MEMENTOS}/{record.sid}.md")
    if memento is None:
        return "its memento is missing"
    if memento != records.memento(record).encode():
        return "its memento does not match the record (one of them was edited)"
    from exo.kernel.canon import canonical, sha256_hex

    if record.fence is None or sha256_hex(canonical(record.fence)) != record.fence_sha256:
        return "its fence does not match the pinned fence_sha256"
    if not records.starts_as(blob(f"{AUDIT_DIR}/{record.sid}.jsonl") or b"", record):
        return "it disagrees with the session.started record of its audit stream"
    return ""


def _audit(
    place: Path,
    streams: dict[str, bytes],
    found: dict[str, records.SessionRecord],
    problem: _Problems,
    report: DoctorReport,
) -> None:
    """Every stream at the head, verified from a scratch copy with the records' anchors."""
    directory = place / AUDIT_DIR
    directory.mkdir(parents=True)
    for name, raw in streams.items():
        with contextlib.suppress(OSError):  # a name the file system refuses: verify reports it missing
            (directory / f"{name}.jsonl").write_bytes(raw)
    verified = verify_audit(place, [r.audit for r in found.values()])
    report.streams, report.anchors = len(verified.streams), verified.anchors_checked
    for item in verified.problems:
        where = f"{AUDIT_DIR}/{item.stream}.jsonl" + (f" line {item.line}" if item.line else "")
        code = "TORN_TAIL" if item.kind == "torn_tail" else f"AUDIT_{item.kind.upper()}"
        problem(code, where, item.message, "AUDIT")


# --- this clone: what interrupted writes left behind


def _local(root: Path, fix: bool, problem: _Problems) -> list[str]:
    fixed: list[str] = []
    for path, shown in _leftovers(root):
        if fix:
            path.unlink(missing_ok=True)
            fixed.append(f"removed {shown}")
        else:
            problem("LEFTOVER_TEMP", shown, "a temp file an interrupted write left behind")
    for path in _torn(root):
        if fix:
            fixed.append(_repair_tail(root, path))
        else:
            problem("TORN_TAIL", str(path), "an interrupted append left a partial record")
    for path, rebuildable in _not_files(root):
        if fix and rebuildable:
            if stat.S_ISDIR(path.lstat().st_mode):
                shutil.rmtree(path)
            else:
                path.unlink()
            fixed.append(f"removed {path}, which was not a regular file")
        else:
            code = "STATE_REBUILDABLE" if rebuildable else "STATE_CORRUPT"
            problem("STATE_CORRUPT", str(path), "a runtime state file that is not a regular file", code)
    if fixed:
        append_audit(root, LOCAL_STREAM, "doctor.repaired", {"repaired": fixed})
    return fixed


def _leftovers(root: Path) -> Iterator[tuple[Path, str]]:
    places = [root / EXO_DIR]
    with contextlib.suppress(ExoError):  # no git dir: nothing there to check
        places.append(Path(State(root).dir))
    for place in places:
        for path in sorted(place.rglob(f"*{TMP_MARK}*")) if place.is_dir() else []:
            yield path, str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _torn(root: Path) -> list[Path]:
    """Streams this clone is writing (and worktree streams of earlier versions) with a torn tail."""
    places = [p for p in (runtime_audit_dir(root), root / AUDIT_DIR) if p is not None and p.is_dir()]
    out = []
    for place in places:
        for path in sorted(place.glob("*.jsonl")):
            with contextlib.suppress(OSError):  # not a regular file: reported by _not_files
                data = read_regular(path, follow=False)
                if data and not data.endswith(b"\n"):
                    out.append(path)
    return out


def _not_files(root: Path) -> Iterator[tuple[Path, bool]]:
    """Entries of the runtime directory where exo keeps only regular files that are something else
    (a FIFO would hang a reader, a link would redirect a writer), and whether exo can rebuild them."""
    with contextlib.suppress(ExoError):
        state = State(root)
        rebuilt = (state.locks, os.path.dirname(state.cache("x")))
        kept = (state.sessions, state.leases, state.audit, os.path.dirname(state.sandbox_settings("x")))
        for place in (*rebuilt, *kept):
            rebuildable = place in rebuilt
            with contextlib.suppress(OSError):
                for entry in sorted(Path(place).iterdir()):
                    if not stat.S_ISREG(entry.lstat().st_mode):
                        yield entry, rebuildable
        pointer = Path(state.pointer)
        if os.path.lexists(pointer) and not stat.S_ISREG(pointer.lstat().st_mode):
            yield pointer, False


def _repair_tail(root: Path, path: Path) -> str:
    data = read_regular(path, follow=False)
    keep = data[: data.rfind(b"\n") + 1]
    path.write_bytes(keep)
    removed = data[len(keep) :]
    shown = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    digest = hashlib.sha256(removed).hexdigest()
    return f"truncated a torn tail of {len(removed)} bytes (sha256 {digest[:16]}) in {shown}"


def _probe(root: Path, problem: _Problems) -> None:
    """Feed exo's own PreToolUse hook a fixed out-of-scope write (never a command from the repository)."""
    payload = json.dumps({**_PROBE_PAYLOAD, "cwd": str(root)})
    done = subprocess.run(
        PROBE,
        cwd=root,
        input=payload,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 2:
        problem(
            "HOOK_PROBE_FAILED",
            "exo hook claude pre-tool-use",
            f"let a write to .git/ through (exit {done.returncode})",
        )
