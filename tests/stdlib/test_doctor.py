"""exo doctor from a fresh clone: SEC-4 (every bypass flagged, a clean history passes) and the file checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exo.stdlib import closeout, install, sessions
from exo.stdlib.doctor import diagnose
from tests.conftest import exo, git

EXE = install.exo_command()
A = "agent:one"


def commit(root: Path, *args: str, actor: str | None = None) -> str:
    env = {**os.environ, **({"EXO_ACTOR": actor} if actor else {})}
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True)
    return git(root, "rev-parse", "HEAD")


def write(root: Path, rel: str, text: str = "x\n") -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


@pytest.fixture
def hooked(governed: Path) -> Path:
    install.install(governed, git_hooks=True, claude=False, cursor=False, exe=EXE)
    return governed


def governed_work(root: Path) -> None:
    """A clean governed history: a session commits in scope and finishes; a human commits too."""
    sessions.start(root, A, ticket_id="T1")
    write(root, "src/app.py")
    commit(root, "add", "src/app.py")
    commit(root, "commit", "-qm", "app", actor=A)
    assert closeout.finish(root, A, summary="app").ok
    write(root, "NOTES.md")
    commit(root, "add", "NOTES.md")
    commit(root, "commit", "-qm", "human notes")


def fresh_clone(root: Path) -> Path:
    clone = root.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    return clone


def codes(root: Path) -> dict[str, set[str]]:
    report = diagnose(root, probe=False)
    out: dict[str, set[str]] = {}
    for p in report.problems:
        out.setdefault(p.code, set()).add(p.subject)
    return out


def test_a_clean_governed_history_passes_from_a_fresh_clone(hooked: Path) -> None:
    governed_work(hooked)
    clone = fresh_clone(hooked)
    assert not (clone / ".git/exo").exists() or not (clone / ".git/exo/sessions").exists()
    report = diagnose(clone, probe=False)
    assert report.ok, report.problems
    assert report.commits == 3 and report.anchors >= 2  # app, its closeout, the human's notes
    run = exo("doctor", "--no-probe", cwd=clone)
    assert run.code == 0 and "healthy" in run.out


def test_sec4_no_verify_out_of_scope_is_flagged(hooked: Path) -> None:
    governed_work(hooked)
    sessions.start(hooked, A, ticket_id="T2")
    write(hooked, "src/not-docs.py")
    commit(hooked, "add", "src/not-docs.py")
    sha = commit(hooked, "commit", "--no-verify", "-qm", "sneak", actor=A)
    found = codes(fresh_clone(hooked))
    assert sha[:12] in found.get("TRAILER_UNRESOLVED", set())  # its session can never close cleanly


def test_sec4_no_verify_out_of_scope_in_a_closed_session_is_flagged(hooked: Path) -> None:
    sessions.start(hooked, A, ticket_id="T2")
    write(hooked, "docs/guide.md")
    commit(hooked, "add", "docs/guide.md")
    commit(hooked, "commit", "-qm", "guide", actor=A)
    write(hooked, "src/sneaky.py")
    commit(hooked, "add", "src/sneaky.py")
    sneak = commit(hooked, "commit", "--no-verify", "-qm", "sneak", actor=A)
    commit(hooked, "rm", "-q", "src/sneaky.py")
    commit(hooked, "commit", "--no-verify", "-qm", "hide it", actor=A)  # the worktree is clean again...
    refused = closeout.finish(hooked, A)
    assert not refused.ok  # ...but finish still sees the commit since base
    found = codes(fresh_clone(hooked))
    assert sneak[:12] in found.get("TRAILER_UNRESOLVED", set())


def test_sec4_hooks_path_dev_null_and_commit_tree_are_flagged(hooked: Path) -> None:
    governed_work(hooked)
    write(hooked, "src/bypass.py")
    commit(hooked, "add", "src/bypass.py")
    bypass = commit(hooked, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "no hooks", actor=A)
    tree = git(hooked, "write-tree")
    plumbing = git(hooked, "commit-tree", tree, "-p", "HEAD", "-m", "plumbing")
    git(hooked, "update-ref", "HEAD", plumbing)
    found = codes(fresh_clone(hooked))
    assert {bypass[:12], plumbing[:12]} <= found["COMMIT_UNSTAMPED"]


def test_sec4_copied_and_forged_trailers_are_flagged(hooked: Path) -> None:
    governed_work(hooked)
    stamped = git(hooked, "log", "--format=%H", "--grep=^app$").split()[0]
    message = git(hooked, "log", "-1", "--format=%B", stamped)
    write(hooked, "src/copied.py")
    commit(hooked, "add", "src/copied.py")
    copied = commit(hooked, "-c", "core.hooksPath=/dev/null", "commit", "-qm", message)
    forged_message = message.replace(message.split("Exo-Audit: ")[1].split("\n")[0], "1:" + "ab" * 32)
    write(hooked, "src/forged.py")
    commit(hooked, "add", "src/forged.py")
    tree = git(hooked, "write-tree")
    forged = git(hooked, "commit-tree", tree, "-p", "HEAD", "-m", forged_message)
    git(hooked, "update-ref", "HEAD", forged)
    found = codes(fresh_clone(hooked))
    assert {copied[:12], forged[:12]} <= found["TRAILER_FORGED"]


def test_agent_commit_without_a_session_is_flagged(governed: Path) -> None:
    write(governed, "x.txt")
    commit(governed, "add", "x.txt")
    sha = commit(governed, "commit", "-qm", "x", "--trailer", f"Exo-Actor: {A}")
    assert sha[:12] in codes(governed)["COMMIT_UNGOVERNED"]


def test_file_checks_and_fix(hooked: Path) -> None:
    governed_work(hooked)
    lock = hooked / ".exo/governance.lock.json"
    doc = json.loads(lock.read_text())
    doc["rules"] = [r for r in doc["rules"] if r["id"] != "no-secrets"]  # loosen it, rehash it
    from exo.kernel._governance import lock_digest

    doc["sha256"] = lock_digest(doc)
    lock.write_text(json.dumps(doc))
    sid = json.loads(next((hooked / ".exo/sessions").glob("*.json")).read_text())["sid"]
    stream = hooked / f".exo/audit/{sid}.jsonl"
    stream.write_text(stream.read_text().replace(f'"actor":"{A}"', '"actor":"agent:two"', 1))
    (hooked / ".exo/tickets/.T1.yaml.exo-tmp-abc").write_text("half")
    with (hooked / ".exo/audit/repo.jsonl").open("a") as fh:
        fh.write('{"torn')
    found = codes(hooked)
    assert "GOVERNANCE_EDITED" in found
    assert any(code.startswith("AUDIT_") for code in found)
    assert "LEFTOVER_TEMP" in found and "TORN_TAIL" in found
    fixed = diagnose(hooked, fix=True, probe=False)
    assert fixed.fixed == ["removed .exo/tickets/.T1.yaml.exo-tmp-abc"]
    after = codes(hooked)
    assert "LEFTOVER_TEMP" not in after and "TORN_TAIL" not in after
    events = [json.loads(x)["event"] for x in (hooked / ".exo/audit/repo.jsonl").read_text().splitlines()]
    # Recording the temp-file repair appended to the torn stream, which repaired its tail first.
    assert events[-2:] == ["audit.repaired", "doctor.repaired"]


def test_the_probe_fails_when_the_agent_hook_lets_writes_through(hooked: Path) -> None:
    install.install(hooked, git_hooks=False, claude=True, cursor=False, exe=EXE)
    env_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    ok = exo("doctor", "--json", cwd=hooked, env={"PATH": env_path})
    assert "HOOK_PROBE_FAILED" not in ok.out
    settings = hooked / ".claude/settings.json"
    settings.write_text(
        settings.read_text().replace("exo hook claude pre-tool-use", "exo hook claude pre-tool-use || true")
    )
    bad = exo("doctor", "--json", cwd=hooked, env={"PATH": env_path})
    assert bad.code == 1 and "HOOK_PROBE_FAILED" in bad.out


def test_bad_range_is_a_coded_error(governed: Path) -> None:
    run = exo("doctor", "--range", "nope..HEAD", cwd=governed)
    assert run.code == 2 and run.err.startswith("error[INVALID_ARGUMENT]")


def test_fix_truncates_a_torn_tail_and_records_it(governed: Path) -> None:
    stream = governed / ".exo/audit/repo.jsonl"
    with stream.open("a") as fh:
        fh.write('{"half a rec')
    report = diagnose(governed, fix=True, probe=False)
    assert report.fixed == ["truncated a torn tail of 12 bytes in .exo/audit/repo.jsonl"]
    last = json.loads(stream.read_text().splitlines()[-1])
    assert last["event"] == "doctor.repaired" and last["data"]["torn_bytes"] == 12
    assert diagnose(governed, probe=False).ok
