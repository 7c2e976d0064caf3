"""`exo demo`: the whole story in a throwaway repository, printed as stable KEY=value markers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from exo.kernel import (
    Action,
    Anchor,
    ExoError,
    Fence,
    acquire_lock,
    append_audit,
    check_action,
    inspect_lock,
    load_governance,
    seal_audit,
    verify_audit,
)
from exo.kernel.layout import AUDIT_DIR, CONSTITUTION, LOCK

from . import audit, closeout, doctor, git, governance, install, scaffold, sessions, tickets

# A racer waits for a start file so that both processes are fully started before either claims.
_RACER = """
import pathlib, sys, time
from exo.kernel import ExoError, acquire_lock
root, holder, ready, go = sys.argv[1:5]
pathlib.Path(ready).touch()
while not pathlib.Path(go).exists():
    time.sleep(0.001)
try:
    print("WON", acquire_lock(root, "T-race", holder, 60).epoch)
except ExoError as exc:
    print("LOST", exc.code)
"""


class DemoResult(BaseModel):
    """Markers of one demo run; `ok` when every step behaved as the product promises."""

    ok: bool = Field(description="True when every marker has its expected value.")
    repo: str = Field(description="The throwaway repository (removed afterwards unless kept).")
    markers: dict[str, str] = Field(description="KEY=value markers in the order they were printed.")


# What each step does, in one plain line for a person; the KEY=value marker after it is for machines.
SAY = {
    "DEMO_REPO": "A throwaway git repository for the demo:",
    "INIT": "exo init: the constitution, the config and the compiled lock under .exo/.",
    "COMPILE": "The constitution compiles into a hash-pinned governance lock.",
    "FENCE_IN_SCOPE": "An agent fenced to src/** asks to write src/app.py.",
    "FENCE_OUT_OF_SCOPE": "The same agent asks to write docs/notes.md, outside its scope.",
    "FENCE_PROTECTED": "It asks to write .git/hooks/pre-commit by a path that climbs out of src/.",
    "FENCE_SECRET": "It asks to write src/.env, which the constitution's no-secrets rule covers.",
    "BAD_CONSTITUTION": "A broken constitution is compiled: refused, and the lock left as it was.",
    "LOCK_RACE_WINNERS": "Two processes race for the lease on one ticket; how many win:",
    "LOCK_RACE_LOSER": "What the other one is told:",
    "LOCK_TAKEOVER": "The winner's lease runs out; a third agent takes the ticket over, one epoch up.",
    "AUDIT_VERIFY": "Every audit chain is verified against its sealed anchor.",
    "AUDIT_TAMPER_EDIT": "One audit record is edited by hand, and the chain verified again.",
    "AUDIT_TAMPER_TRUNCATE": "The stream's last records are cut off, and the chain verified again.",
    "NEXT_RACE": "Two agents in two worktrees run `exo next` at the same moment.",
    "NEXT_TICKETS": "The tickets they were given:",
    "SESSION_START": "Agent one opens a governed session on its ticket.",
    "COMMIT_STAMPED": "It commits src/app.py; the git hook stamps the commit with its session's trailers.",
    "COMMIT_REFUSED": "It tries to commit docs/notes.md, outside its fence.",
    "FINISH_REFUSED": "It tries to finish with that file still in its worktree.",
    "FINISH_CLEAN": "It removes the stray file and finishes: drift measured, records committed, lease released.",
    "SECOND_FINISH": "Agent two writes the guide in its own worktree and finishes.",
    "SESSION_RECORDS_VERIFY": "Both sessions' audit streams are verified against their records' anchors.",
    "DOCTOR": "exo doctor judges the whole history from git objects, as CI does.",
    "BYPASS_CAUGHT": "An agent commits with --no-verify outside any session; doctor runs again.",
    "DEMO": "The demo's verdict:",
}


def run_demo(keep: bool = False, on_marker: Callable[[str, str], None] | None = None) -> DemoResult:
    """Run the demo in a fresh temporary repository and return its markers."""
    workdir = Path(tempfile.mkdtemp(prefix="exo-demo-"))
    markers: dict[str, str] = {}
    failures: list[str] = []

    def mark(key: str, value: object, expect: str | None = None) -> None:
        markers[key] = str(value)
        if expect is not None and not str(value).startswith(expect):
            failures.append(key)
        if on_marker:
            on_marker(key, str(value))

    try:
        root = workdir / "repo"
        root.mkdir()
        git.init(root)
        mark("DEMO_REPO", root)
        _story(root, mark)
        _sessions(root, mark)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    mark("DEMO", "ok" if not failures else "failed:" + ",".join(failures))
    return DemoResult(ok=not failures, repo=str(root), markers=markers)


def _story(root: Path, mark: Callable[..., None]) -> None:
    result = scaffold.init_repo(root)
    mark("INIT", f"ok created={len(result.created)}", "ok")
    mark("COMPILE", f"ok rules={len(result.governance.rules)}", "ok")

    gov = load_governance(root)
    fence = Fence.from_globs(["src/**"])
    for key, path, expect in (
        ("FENCE_IN_SCOPE", "src/app.py", "allow"),
        ("FENCE_OUT_OF_SCOPE", "docs/notes.md", "deny rule=exo:scope"),
        ("FENCE_PROTECTED", "src/../.git/hooks/pre-commit", "deny rule=exo:protected"),
        ("FENCE_SECRET", "src/.env", "deny rule=no-secrets"),
    ):
        decision = check_action(gov, fence, Action("agent:demo", "write", path))
        mark(key, "allow" if decision.allowed else f"deny rule={decision.rule}", expect)

    mark("BAD_CONSTITUTION", _bad_constitution(root), "CONSTITUTION_INVALID lock_unchanged=yes")

    outcomes = _race(root)
    mark("LOCK_RACE_WINNERS", sum(o.startswith("WON") for o in outcomes), "1")
    mark("LOCK_RACE_LOSER", ",".join(o.split()[1] for o in outcomes if o.startswith("LOST")), "LOCK_HELD")
    lease = inspect_lock(root, "T-race")
    later = datetime.now(UTC) + timedelta(seconds=lease.ttl_seconds + 1 if lease else 61)
    taken = acquire_lock(root, "T-race", "agent:carol", 60, now=later)
    mark("LOCK_TAKEOVER", f"epoch={taken.epoch} holder={taken.holder}", "epoch=2")

    for step in ("session.started", "session.heartbeat", "session.finished"):
        append_audit(root, "demo-session", step, {"ticket": "T-race"})
    seq, head = seal_audit(root, "demo-session")
    anchor = Anchor(stream="demo-session", seq=seq, h=head, source="demo")
    report = verify_audit(root, [anchor])
    records = sum(s.records for s in report.streams)
    mark("AUDIT_VERIFY", f"{'ok' if report.ok else 'failed'} streams={len(report.streams)} records={records}", "ok")

    stream = root / AUDIT_DIR / "demo-session.jsonl"
    original = stream.read_bytes()
    stream.write_bytes(original.replace(b'"ticket":"T-race"', b'"ticket":"T-evil"', 1))
    mark("AUDIT_TAMPER_EDIT", _detected(root, anchor), "detected")
    stream.write_bytes(b"\n".join(original.split(b"\n")[:-2]) + b"\n")
    mark("AUDIT_TAMPER_TRUNCATE", _detected(root, anchor), "detected")
    stream.write_bytes(original)


def _sessions(root: Path, mark: Callable[..., None]) -> None:
    """Two agents in two worktrees: `next` hands them different tickets; one strays outside its
    fence, finish names the path and refuses; after the fix both sessions finish and verify."""
    tickets.create(root, "human:demo@exo.invalid", title="Build the app", scope=["src/**"], ticket_id="T-app")
    tickets.create(root, "human:demo@exo.invalid", title="Write the guide", scope=["docs/**"], ticket_id="T-docs")
    git.run(root, "add", "-A")
    git.run(root, "commit", "-qm", "exo: governance and tickets")
    install.install(root, git_hooks=True, claude=False, cursor=False, exe=install.exo_command())
    second = root.parent / "worktree-two"
    git.run(root, "worktree", "add", "-q", str(second), "-b", "agent-two")
    picked = _race_next({root: "agent:one", second: "agent:two"})
    mark(
        "NEXT_RACE", "distinct" if len(set(picked.values())) == 2 else "clash:" + ",".join(picked.values()), "distinct"
    )
    mark("NEXT_TICKETS", ",".join(sorted(picked.values())))
    app_tree = root if picked[root] == "T-app" else second
    docs_tree = second if app_tree == root else root
    one, two = ("agent:one", "agent:two") if app_tree == root else ("agent:two", "agent:one")
    started = sessions.start(app_tree, one, task="build the app")
    mark("SESSION_START", f"ok ticket={started.session.ticket_id}", "ok ticket=T-app")
    (app_tree / "src").mkdir()
    (app_tree / "src/app.py").write_text("print('hello')\n")
    stamped = _commit(app_tree, one, "src/app.py", "add the app")
    mark(
        "COMMIT_STAMPED",
        ",".join(sorted(stamped or {"refused": ""})),
        "Exo-Actor,Exo-Audit,Exo-Claim,Exo-Policy,Exo-Session,Exo-Ticket",
    )
    (app_tree / "docs").mkdir()
    (app_tree / "docs/notes.md").write_text("out of my lane\n")
    refused_commit = _commit(app_tree, one, "docs/notes.md", "stray notes")
    mark("COMMIT_REFUSED", "refused" if refused_commit is None else "accepted", "refused")
    mark(
        "FINISH_REFUSED",
        _refusal(lambda: closeout.finish(app_tree, one, summary="built the app")),
        "DRIFT out_of_scope:docs/notes.md",
    )
    git.run(app_tree, "rm", "-q", "--cached", "docs/notes.md")
    (app_tree / "docs/notes.md").unlink()
    done = closeout.finish(app_tree, one, summary="built the app", set_status="done")
    mark(
        "FINISH_CLEAN",
        f"{'ok' if done.outcome == 'finished' else 'failed'} files={len(done.drift.files)}",
        "ok files=1",
    )
    sessions.start(docs_tree, two, task="write the guide")
    (docs_tree / "docs").mkdir(exist_ok=True)
    (docs_tree / "docs/guide.md").write_text("# Guide\n")
    other = closeout.finish(docs_tree, two, summary="wrote the guide")
    mark("SECOND_FINISH", "ok" if other.outcome == "finished" else "failed", "ok")
    verified = [audit.verify(tree, []) for tree in (app_tree, docs_tree)]
    anchors = sum(r.anchors_checked for r in verified)
    mark("SESSION_RECORDS_VERIFY", f"{'ok' if all(r.ok for r in verified) else 'failed'} anchors={anchors}", "ok")
    before = doctor.diagnose(app_tree, probe=False)
    mark("DOCTOR", "ok" if before.ok else "problems:" + ",".join(p.code for p in before.problems), "ok")
    (app_tree / "src/hack.py").write_text("print('no session')\n")
    _commit(app_tree, one, "src/hack.py", "quick fix", "--no-verify")  # skips pre-commit, still stamped
    after = doctor.diagnose(app_tree, probe=False)
    mark("BYPASS_CAUGHT", ",".join(sorted({p.code for p in after.problems})) or "missed", "COMMIT_UNGOVERNED")


def _commit(tree: Path, actor: str, path: str, message: str, *flags: str) -> dict[str, str] | None:
    """`git add` + `git commit` as `actor` through the installed hooks; the trailers, or None if refused."""
    git.run(tree, "add", path)
    env = {**os.environ, "EXO_ACTOR": actor}
    done = subprocess.run(["git", "commit", "-q", *flags, "-m", message], cwd=tree, env=env, capture_output=True)
    if done.returncode != 0:
        return None
    text = git.run(tree, "log", "-1", "--format=%(trailers:only,unfold)")
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


_NEXT = "from exo.cli import main; main()"


def _refusal(finish: Callable[[], object]) -> str:
    """`CODE kind:path,…` for a finish that was refused, `none` for one that was not."""
    try:
        finish()
    except closeout.Refused as refused:
        stray = ",".join(f"{v.kind}:{v.path}" for v in refused.refusal.drift.violations)
        return f"{refused.code} {stray}"
    return "none"


def _race_next(agents: dict[Path, str]) -> dict[Path, str]:
    """`exo next` in each worktree at the same moment, as separate processes."""
    procs = {
        tree: subprocess.Popen(
            [sys.executable, "-c", _NEXT, "next", "--actor", actor],
            cwd=tree,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # the loser's "skipped ..." note belongs to it, not to the demo
            text=True,
        )
        for tree, actor in agents.items()
    }
    return {tree: proc.communicate(timeout=120)[0].strip() for tree, proc in procs.items()}


def _detected(root: Path, anchor: Anchor) -> str:
    report = verify_audit(root, [anchor])
    return "missed" if report.ok else "detected kinds=" + ",".join(sorted({p.kind for p in report.problems}))


def _bad_constitution(root: Path) -> str:
    path, lock = root / CONSTITUTION, root / LOCK
    original, lock_before = path.read_bytes(), lock.read_bytes()
    path.write_bytes(original + b"\n```yaml exo-policy\nid: typo\ntype: filesystem_denny\npatterns: [x]\n```\n")
    try:
        governance.build(root)
        code = "accepted"
    except ExoError as exc:
        code = exc.code
    unchanged = "yes" if lock.read_bytes() == lock_before else "no"
    path.write_bytes(original)
    return f"{code} lock_unchanged={unchanged}"


def _race(root: Path) -> list[str]:
    go = root.parent / "go"
    racers = []
    for holder in ("agent:alice", "agent:bob"):
        ready = root.parent / f"ready-{holder.split(':')[1]}"
        args = [sys.executable, "-c", _RACER, str(root), holder, str(ready), str(go)]
        racers.append((subprocess.Popen(args, stdout=subprocess.PIPE, text=True), ready))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for _, ready in racers) and time.monotonic() < deadline:
        time.sleep(0.005)
    go.touch()
    return [proc.communicate(timeout=60)[0].strip() for proc, _ in racers]
