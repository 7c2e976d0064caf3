"""exo doctor from a fresh clone: SEC-4 (every bypass flagged by content, a clean history passes),
the checks of what the head holds, format-1 records, and what this clone's interrupted writes left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exo.kernel import Anchor, Fence, append_audit, seal_audit
from exo.kernel.fs import audit_path
from exo.stdlib import closeout, doctor, install, keys, records, runtime, sessions
from exo.stdlib.doctor import diagnose
from tests.conftest import exo, git, refusal

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


def governed_work(root: Path) -> str:
    """A clean governed history: a session commits in scope and finishes; a human commits too."""
    sid = sessions.start(root, A, ticket_id="T1").session.sid
    write(root, "src/app.py")
    commit(root, "add", "src/app.py")
    commit(root, "commit", "-qm", "app", actor=A)
    assert closeout.finish(root, A, summary="app").outcome == "finished"
    write(root, "NOTES.md")
    commit(root, "add", "NOTES.md")
    commit(root, "commit", "-qm", "human notes")
    return sid


def fresh_clone(root: Path) -> Path:
    clone = root.parent / f"clone-{len(list(root.parent.glob('clone-*')))}"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    return clone


def fabricate(root: Path, tmp_path: Path, signer: keys.Key | None) -> str:
    """A session made by hand: record, memento and a correctly chained, sealed stream that agree,
    listing a change to docs/anything.md, committed with hooks off. Returns its session id."""
    real = records.load_all(root)[0]
    fake = real.sid[:-4] + "f00d"
    fence = Fence.from_globs(["**"], [], records.own_paths(fake)).to_dict()
    write(root, "docs/anything.md", "anything at all\n")
    blob = git(root, "hash-object", "docs/anything.md")
    scratch = tmp_path / "scratch"
    git(scratch.parent, "init", "-q", scratch.name)
    started = {
        "ticket_id": "T1",
        "actor": A,
        "base_commit": real.base_commit,
        "fence_sha256": runtime.fence_sha256(fence),
    }
    append_audit(scratch, fake, "session.started", started)
    seq, head = seal_audit(scratch, fake)
    product = {"path": "docs/anything.md", "versions": [{"mode": None, "blob": None}, {"mode": "100644", "blob": blob}]}
    forged = records.SessionRecord.model_validate(
        {**real.model_dump(mode="json"), "sid": fake, "fence": fence, "fence_sha256": started["fence_sha256"],
         "scope_allow": ["**"], "products": [product], "audit": Anchor(stream=fake, seq=seq, h=head).model_dump()}
    )  # fmt: skip
    records.write(root, forged, signer)
    (root / f".exo/audit/{fake}.jsonl").write_bytes((scratch / f".exo/audit/{fake}.jsonl").read_bytes())
    commit(root, "add", "-A")
    commit(root, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "nothing to see")
    return fake


def codes(root: Path, commit_range: str | None = None) -> dict[str, set[str]]:
    report = diagnose(root, commit_range=commit_range)
    out: dict[str, set[str]] = {}
    for p in report.problems:
        out.setdefault(p.code, set()).add(p.subject)
    return out


def test_a_clean_governed_history_passes_from_a_fresh_clone(hooked: Path) -> None:
    governed_work(hooked)
    clone = fresh_clone(hooked)
    assert not (clone / ".git/exo").exists()
    report = diagnose(clone)
    assert report.ok, report.problems
    assert (report.commits, report.skipped, report.records, report.anchors) == (3, 2, 1, 1)
    assert report.accounted == {"session": 1, "broker": 1, "exempt": 1}  # src/app.py, T1 set to review, NOTES.md
    run = exo("doctor", cwd=clone)
    assert run.code == 0 and "healthy" in run.out and "3 commit(s)" in run.out


def test_sec4_no_verify_out_of_scope_is_flagged(hooked: Path) -> None:
    governed_work(hooked)
    sessions.start(hooked, A, ticket_id="T2")
    write(hooked, "src/not-docs.py")
    commit(hooked, "add", "src/not-docs.py")
    sha = commit(hooked, "commit", "--no-verify", "-qm", "sneak", actor=A)
    assert f"{sha[:12]} src/not-docs.py" in codes(fresh_clone(hooked))["CONTENT_UNGOVERNED"]


def test_sec4_out_of_scope_work_hidden_again_before_finish_is_flagged(hooked: Path) -> None:
    sessions.start(hooked, A, ticket_id="T2")
    write(hooked, "docs/guide.md")
    commit(hooked, "add", "docs/guide.md")
    commit(hooked, "commit", "-qm", "guide", actor=A)
    write(hooked, "src/sneaky.py")
    commit(hooked, "add", "src/sneaky.py")
    sneak = commit(hooked, "commit", "--no-verify", "-qm", "sneak", actor=A)
    commit(hooked, "rm", "-q", "src/sneaky.py")
    commit(hooked, "commit", "--no-verify", "-qm", "hide it", actor=A)  # the worktree is clean again...
    refused = refusal(lambda: closeout.finish(hooked, A))  # ...but finish still sees the commits since base
    assert {v.path for v in refused.drift.violations} == {"src/sneaky.py"}
    found = codes(fresh_clone(hooked))
    assert f"{sneak[:12]} src/sneaky.py" in found["CONTENT_UNGOVERNED"]


def test_sec4_hooks_path_dev_null_and_commit_tree_are_flagged(hooked: Path) -> None:
    governed_work(hooked)
    write(hooked, "src/bypass.py")
    commit(hooked, "add", "src/bypass.py")
    bypass = commit(hooked, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "no hooks", actor=A)
    write(hooked, "src/plumbing.py")
    commit(hooked, "add", "src/plumbing.py")
    tree = git(hooked, "write-tree")
    plumbing = git(hooked, "commit-tree", tree, "-p", "HEAD", "-m", "plumbing")
    git(hooked, "update-ref", "HEAD", plumbing)
    found = codes(fresh_clone(hooked))
    assert {f"{bypass[:12]} src/bypass.py", f"{plumbing[:12]} src/plumbing.py"} <= found["CONTENT_UNGOVERNED"]


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
    assert {f"{copied[:12]} src/copied.py", f"{forged[:12]} src/forged.py"} <= found["CONTENT_UNGOVERNED"]


def test_agent_commit_without_a_session_is_flagged(governed: Path) -> None:
    write(governed, "x.txt")
    commit(governed, "add", "x.txt")
    sha = commit(governed, "commit", "-qm", "x", "--trailer", f"Exo-Actor: {A}")
    found = codes(governed)
    assert sha[:12] in found["COMMIT_UNGOVERNED"] and f"{sha[:12]} x.txt" in found["CONTENT_UNGOVERNED"]


def test_what_the_head_holds_is_checked_from_git_objects(hooked: Path) -> None:
    sid = governed_work(hooked)
    lock = hooked / ".exo/governance.lock.json"
    doc = json.loads(lock.read_text())
    doc["rules"] = [r for r in doc["rules"] if r["id"] != "no-secrets"]  # loosen it, rehash it
    from exo.kernel._governance import lock_digest

    doc["sha256"] = lock_digest(doc)
    lock.write_text(json.dumps(doc))
    stream = hooked / f".exo/audit/{sid}.jsonl"
    stream.write_text(stream.read_text().replace(f'"actor":"{A}"', '"actor":"agent:two"', 1))
    (hooked / ".exo/tickets/T2.yaml").write_text("id: T2\ntitle: [unclosed\n")
    assert diagnose(hooked).ok  # the working tree is not what doctor judges...
    commit(hooked, "add", "-A", ".exo")
    commit(hooked, "commit", "-qm", "edit governance by hand")
    found = codes(hooked)  # ...the head commit is
    assert "GOVERNANCE_EDITED" in found and "TICKET_INVALID" in found
    assert any(code.startswith("AUDIT_") for code in found) and "RECORD_REWRITTEN" in found


def test_a_record_that_disagrees_with_its_stream_or_memento_is_caught(hooked: Path) -> None:
    sid = governed_work(hooked)
    memento = hooked / f".exo/mementos/{sid}.md"
    memento.write_text(memento.read_text() + "\nan addition\n")
    commit(hooked, "add", "-A", ".exo")
    commit(hooked, "commit", "-qm", "touch up the memento")
    found = codes(hooked)
    assert f".exo/sessions/{sid}.json" in found["RECORD_REWRITTEN"]  # at the head
    assert any(s.endswith(f".exo/mementos/{sid}.md") for s in found["RECORD_REWRITTEN"])  # and the commit


def test_leftovers_and_torn_tails_of_this_clone_and_fix(hooked: Path) -> None:
    governed_work(hooked)
    sid = sessions.start(hooked, A, ticket_id="T2").session.sid
    (hooked / ".exo/tickets/.T1.yaml.exo-tmp-abc").write_text("half")
    with audit_path(hooked, sid).open("a") as fh:
        fh.write('{"torn')
    found = codes(hooked)
    assert "LEFTOVER_TEMP" in found and "TORN_TAIL" in found
    fixed = diagnose(hooked, fix=True)
    assert fixed.fixed[0] == "removed .exo/tickets/.T1.yaml.exo-tmp-abc"
    assert fixed.fixed[1].startswith("truncated a torn tail of 6 bytes")
    assert diagnose(hooked).ok
    events = [json.loads(x)["event"] for x in audit_path(hooked, "local").read_text().splitlines()]
    assert events[-1] == "doctor.repaired"  # the repair is audited in this clone's own stream
    assert append_audit(hooked, sid, "test.after", {}).seq == 2  # and the stream goes on


def test_the_probe_feeds_exos_own_hook_and_never_runs_the_repositorys(
    hooked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = hooked.parent / "ran"
    settings = hooked / ".claude/settings.json"
    settings.parent.mkdir()
    hook = {"type": "command", "command": f"touch {marker}; exo hook claude pre-tool-use"}
    settings.write_text(json.dumps({"hooks": {"PreToolUse": [{"matcher": "Write", "hooks": [hook]}]}}))
    assert exo("doctor", "--probe", "--json", cwd=hooked).code == 0
    assert exo("doctor", cwd=hooked).code == 0
    assert not marker.exists()
    monkeypatch.setattr(doctor, "PROBE", [sys.executable, "-c", "pass"])  # an exo whose hook lets writes through
    assert "HOOK_PROBE_FAILED" in codes_with_probe(hooked)


def codes_with_probe(root: Path) -> set[str]:
    return {p.code for p in diagnose(root, probe=True).problems}


def test_a_format_1_record_keeps_verifying_by_its_trailers(hooked: Path) -> None:
    """A session closed by an earlier version: a record without products, its commits judged by
    their Exo-Audit trailers naming `commit.prepared` records for their exact trees."""
    sid = sessions.start(hooked, A, ticket_id="T1").session.sid
    write(hooked, "src/old.py")
    commit(hooked, "add", "src/old.py")
    work = commit(hooked, "commit", "-qm", "old work", actor=A)
    assert closeout.finish(hooked, A, summary="old").outcome == "finished"
    path = hooked / f".exo/sessions/{sid}.json"
    record = json.loads(path.read_text())
    for key in ("fence", "head_commit", "found", "products", "writes"):
        del record[key]
    record["version"] = 1
    path.write_text(json.dumps(record, indent=2) + "\n")
    commit(hooked, "add", str(path))
    commit(hooked, "-c", "core.hooksPath=/dev/null", "commit", "-q", "--amend", "--no-edit")  # as it was written
    report = diagnose(fresh_clone(hooked))
    assert report.ok, report.problems
    assert report.legacy == [work[:12], git(hooked, "rev-parse", "--short=12", "HEAD")]
    write(hooked, "docs/outside.md")  # a format-1 session's commit outside its fence is still caught
    commit(hooked, "add", "docs/outside.md")
    message = git(hooked, "log", "-1", "--format=%B", work)
    sneak = commit(hooked, "-c", "core.hooksPath=/dev/null", "commit", "-qm", message)
    assert f"{sneak[:12]} docs/outside.md" in codes(fresh_clone(hooked))["CONTENT_UNGOVERNED"]


def test_no_commit_yet_is_nothing_to_verify(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q")
    report = diagnose(root)
    assert report.ok and report.head is None and report.commits == 0


def test_a_range_checks_the_records_it_adds_and_those_it_relies_on(hooked: Path) -> None:
    """With a BASE, doctor checks the `.exo/` files the range touches and every record whose
    products account for a path the range changes — a broken record added before the range cannot
    vouch for content inside it — and leaves the rest to the ranges that added them."""
    sid = governed_work(hooked)
    record = json.loads((hooked / f".exo/sessions/{sid}.json").read_text())
    fake = sid[:-4] + "beef"
    write(hooked, "evil.txt", "evil = True\n")
    evil = git(hooked, "hash-object", "evil.txt")
    (hooked / "evil.txt").unlink()
    record["sid"] = fake
    record["products"] = [
        {"path": "src/evil.py", "versions": [{"mode": None, "blob": None}, {"mode": "100644", "blob": evil}]}
    ]
    write(hooked, f".exo/sessions/{fake}.json", json.dumps(record, indent=2) + "\n")
    write(hooked, f".exo/mementos/{fake}.md", (hooked / f".exo/mementos/{sid}.md").read_text())  # not its memento
    commit(hooked, "add", "-A", ".exo")
    base = commit(hooked, "commit", "-qm", "a record by hand")  # a human may add files to .exo/
    assert f".exo/sessions/{fake}.json" in codes(hooked)["RECORD_REWRITTEN"]  # the whole history checks it
    write(hooked, "LATER.md")
    commit(hooked, "add", "LATER.md")
    commit(hooked, "commit", "-qm", "later")
    report = diagnose(hooked, commit_range=f"{base}..HEAD")
    assert report.ok and report.records == 0, report.problems  # the range neither adds nor relies on it
    write(hooked, "src/evil.py", "evil = True\n")
    commit(hooked, "add", "src/evil.py")
    sneak = commit(hooked, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "evil")  # no trailer names it
    found = codes(hooked, f"{base}..HEAD")
    assert f".exo/sessions/{fake}.json" in found["RECORD_REWRITTEN"]  # its memento does not match it
    assert f"{sneak[:12]} src/evil.py" in found["CONTENT_UNGOVERNED"]


def test_a_range_checks_the_tickets_and_streams_it_touches(hooked: Path) -> None:
    governed_work(hooked)
    base = git(hooked, "rev-parse", "HEAD")
    (hooked / ".exo/tickets/T2.yaml").write_text("id: T2\ntitle: [unclosed\n")
    commit(hooked, "add", "-A", ".exo")
    commit(hooked, "commit", "-qm", "a broken ticket")
    assert ".exo/tickets/T2.yaml" in codes(hooked, f"{base}..HEAD")["TICKET_INVALID"]


def test_a_symlink_a_session_produced_must_land_inside_its_fence(hooked: Path) -> None:
    sessions.start(hooked, A, ticket_id="T1")
    (hooked / "src").mkdir()
    os.symlink("../README.md", hooked / "src/out")  # lands outside src/**
    os.symlink("app.py", hooked / "src/in")
    write(hooked, "src/app.py")
    commit(hooked, "add", "src")
    with pytest.raises(subprocess.CalledProcessError):  # pre-commit refuses the link out of the fence
        commit(hooked, "commit", "-qm", "links", actor=A)
    link = commit(hooked, "commit", "-q", "--no-verify", "-m", "links", actor=A)
    refusal(lambda: closeout.finish(hooked, A, summary="links"))  # so does finish, until a human accepts it
    assert (
        closeout.finish(hooked, "human:lead@example.com", summary="links", accept_drift="reviewed: intended").outcome
        == "finished"
    )
    report = diagnose(fresh_clone(hooked))
    assert report.ok, report.problems
    assert [a.split(":")[0] for a in report.accepted] == [f"{link[:12]} src/out"]  # judged by where it lands
    assert report.accounted["session"] >= 2  # src/in and src/app.py


def test_without_the_signatures_rule_a_hand_made_session_is_believed_and_reported_unsigned(
    hooked: Path, tmp_path: Path
) -> None:
    """Without the `signatures` rule a record is evidence, not proof: one written by hand — consistent
    with its memento, its fence and a correctly chained, sealed stream — vouches for whatever it
    lists, and doctor says it is unsigned (tests/stdlib/test_signatures.py: with the rule it fails)."""
    sid = governed_work(hooked)
    fake = fabricate(hooked, tmp_path, None)
    report = diagnose(fresh_clone(hooked))
    assert report.ok and report.accounted.get("session", 0) >= 2, report.problems
    assert report.signed == [] and sorted(u.split(":")[0] for u in report.unsigned) == sorted([sid, fake])
