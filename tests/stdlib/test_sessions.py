"""Session lifecycle: worktrees and leases, recovery, SEC-3, heartbeat, handoff, bootstrap, freeze, dispatch."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exo.kernel import ExoError
from exo.kernel.fs import audit_path
from exo.stdlib import closeout, dispatch, freeze, governance, records, sessions, tickets
from tests.conftest import exo, git, refusal, snapshot

A, B = "agent:one", "agent:two"
HUMAN = "human:lead@example.com"


def code(call: object) -> str:
    with pytest.raises(ExoError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code


def worktree(root: Path, name: str) -> Path:
    path = root.parent / name
    git(root, "worktree", "add", "-q", str(path), "-b", name)
    return path


def audit_events(root: Path, stream: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in audit_path(root, stream).read_text().splitlines()]


def repo_events(root: Path) -> list[str]:
    """Repository events, oldest first: one sealed stream each."""
    streams = sorted((root / ".exo/audit").glob("ev-*.jsonl"))
    return [json.loads(path.read_text().splitlines()[0])["event"] for path in streams]


def test_two_worktrees_share_leases_and_recover_after_expiry(governed: Path) -> None:
    second = worktree(governed, "wt-two")
    t0 = datetime.now(UTC)
    first = sessions.start(governed, A, ticket_id="T1", now=t0).session
    assert code(lambda: sessions.start(second, B, ticket_id="T1", now=t0 + timedelta(seconds=60))) == "LOCK_HELD"
    later = first.expires_at + timedelta(seconds=1)  # an injected clock, not a sleep
    taken = sessions.start(second, B, ticket_id="T1", now=later)
    assert taken.abandoned == [first.sid]
    assert taken.session.epoch == first.epoch + 1
    takeover = audit_events(second, "local")[-1]
    assert takeover["event"] == "lock.takeover"
    assert takeover["data"]["previous_holder"] == A and takeover["data"]["holder"] == B  # type: ignore[index]
    dead = [e["event"] for e in audit_events(governed, first.sid)]
    assert dead == ["session.started", "session.abandoned", "audit.sealed"]
    record = records.load(second, first.sid)  # its record is written where it was taken over
    assert record is not None and record.outcome == "abandoned" and record.audit.seq == 3
    assert code(lambda: sessions.heartbeat(governed, A, now=later)) == "SESSION_NOT_FOUND"
    assert [s.sid for s in sessions.status(governed, now=later).sessions] == [taken.session.sid]


def test_one_open_session_per_worktree(governed: Path) -> None:
    sessions.start(governed, A, ticket_id="T1")
    before = snapshot(governed)
    assert code(lambda: sessions.start(governed, A, ticket_id="T2")) == "SESSION_OPEN"
    assert snapshot(governed) == before
    run = exo("session-start", "--ticket-id", "T2", cwd=governed, env={"EXO_ACTOR": B})
    assert run.code == 1 and run.err.startswith("error[SESSION_OPEN]") and "worktree" in run.err


def test_an_expired_session_in_this_worktree_is_recovered_by_the_next_start(governed: Path) -> None:
    t0 = datetime.now(UTC)
    old = sessions.start(governed, A, ticket_id="T1", now=t0).session
    later = old.expires_at + timedelta(seconds=5)
    assert code(lambda: sessions.heartbeat(governed, A, now=later)) == "LOCK_LOST"
    assert sessions.status(governed, now=later).stale == [old.sid]
    assert code(lambda: closeout.finish(governed, A, now=later)) == "LOCK_LOST"
    new = sessions.start(governed, B, ticket_id="T2", now=later)
    assert new.abandoned == [old.sid]


def test_sec3_editing_the_ticket_or_exo_does_not_widen_the_fence(governed: Path) -> None:
    sessions.start(governed, A, ticket_id="T1")
    path = governed / ".exo/tickets/T1.yaml"
    path.write_text(path.read_text().replace("- src/**", "- '**'"))  # the agent widens its own scope
    (governed / ".exo/config.yaml").write_text("lease_ttl_seconds: 86400\n")
    assert tickets.read(governed, "T1").scope.allow == ["**"]
    check = governance.check_paths(governed, A, ["docs/x.md", "src/a.py"], scope=[], deny=[])
    assert [d.allowed for d in check.decisions] == [False, True]  # the pinned fence still rules
    (governed / "docs").mkdir()
    (governed / "docs/x.md").write_text("x\n")
    result = refusal(lambda: closeout.finish(governed, A))
    assert {v.path: v.kind for v in result.drift.violations} == {
        ".exo/tickets/T1.yaml": "protected",
        ".exo/config.yaml": "protected",
        "docs/x.md": "out_of_scope",
    }


def test_tickets_created_through_exo_during_a_session_are_not_drift(governed: Path) -> None:
    sessions.start(governed, A, ticket_id="T1")
    run = exo("ticket", "create", "Follow-up", "--scope", "src/**", "--id", "T3", cwd=governed, env={"EXO_ACTOR": A})
    assert run.code == 0, run.err
    result = closeout.finish(governed, A)
    assert result.outcome == "finished"
    assert ".exo/tickets/T3.yaml" in git(governed, "show", "--name-only", "--format=", "HEAD").splitlines()


def test_uncommitted_work_found_at_start_is_not_the_sessions_drift(governed: Path) -> None:
    (governed / "docs").mkdir()
    (governed / "docs/draft.md").write_text("a human's draft, not committed\n")
    (governed / "README.md").write_text("edited, not committed\n")
    run = exo("ticket", "create", "Later", "--scope", "lib/**", "--id", "T9", cwd=governed)  # outside any session
    assert run.code == 0, run.err
    started = sessions.start(governed, A, ticket_id="T1")
    assert started.found == [".exo/tickets/T9.yaml", "README.md", "docs/draft.md"]
    assert "## Already changed before you started" in started.bootstrap and "- docs/draft.md" in started.bootstrap
    (governed / "src").mkdir()
    (governed / "src/app.py").write_text("print('hi')\n")
    result = closeout.finish(governed, A)
    assert result.outcome == "finished"
    assert result.drift.files == ["src/app.py"] and result.drift.preexisting == started.found
    record = records.load(governed, started.session.sid)
    assert record is not None and record.found == started.found
    assert [p.path for p in record.products or []] == ["src/app.py"]
    assert git(governed, "status", "--porcelain", "--", "docs", "README.md", ".exo/tickets").splitlines() == [
        "M README.md",  # (git status's leading blank is stripped)
        "?? .exo/tickets/T9.yaml",
        "?? docs/",
    ]  # left as they were, uncommitted
    again = sessions.start(governed, B, ticket_id="T2")  # and the next session is not wedged by them
    (governed / "docs/draft.md").write_text("the agent takes the draft over\n")
    result = closeout.finish(governed, B)
    assert result.drift.files == ["docs/draft.md"], result.drift
    assert ".exo/tickets/T9.yaml" in again.found


def test_a_ticket_file_edited_after_exo_wrote_it_is_drift_again(governed: Path) -> None:
    sessions.start(governed, A, ticket_id="T1")
    tickets.create(governed, A, title="Follow-up", scope=["src/**"], ticket_id="T3")
    path = governed / ".exo/tickets/T3.yaml"
    path.write_text(path.read_text().replace("- src/**", "- '**'"))
    refused = refusal(lambda: closeout.finish(governed, A))
    assert {v.path: v.kind for v in refused.drift.violations} == {".exo/tickets/T3.yaml": "protected"}


def test_heartbeat_renews_and_is_audited(governed: Path) -> None:
    t0 = datetime.now(UTC)
    started = sessions.start(governed, A, ticket_id="T1", now=t0).session
    renewed = sessions.heartbeat(governed, A, now=t0 + timedelta(seconds=600))
    assert renewed.expires_at > started.expires_at and renewed.epoch == started.epoch
    assert audit_events(governed, started.sid)[-1]["event"] == "session.heartbeat"
    assert code(lambda: sessions.heartbeat(governed, B)) == "NOT_ALLOWED"


def test_handoff_passes_the_lease_and_the_notes(governed: Path) -> None:
    first = sessions.start(governed, A, ticket_id="T1").session
    (governed / "src").mkdir()
    (governed / "src/half.py").write_text("def half(): ...\n")
    done = closeout.handoff(
        governed, A, to=B, summary="parser half done", next_steps=["wire the CLI"], tried=["regex: too slow"]
    )
    assert done.outcome == "handed_off"
    assert done.lease is not None and done.lease.holder == B and done.lease.epoch == first.epoch + 1
    assert code(lambda: sessions.start(governed, "agent:three", ticket_id="T1")) == "LOCK_HELD"
    nxt = sessions.start(governed, B)  # no --ticket-id: the lease handed over names it
    assert nxt.session.ticket_id == "T1" and nxt.session.epoch == done.lease.epoch
    assert (
        "parser half done" in nxt.bootstrap and "wire the CLI" in nxt.bootstrap and "regex: too slow" in nxt.bootstrap
    )
    record = json.loads((governed / f".exo/sessions/{first.sid}.json").read_text())
    assert record["outcome"] == "handed_off" and record["handoff"]["to"] == B


def test_bootstrap_is_complete_deterministic_and_bounded(governed: Path) -> None:
    tickets.update(governed, "T1", {"body": "Acceptance: the app prints hello.\n" + "Detail. " * 400})
    git(governed, "commit", "-qam", "body")
    second = worktree(governed, "wt-two")
    sessions.start(second, B, ticket_id="T2")
    started = sessions.start(governed, A, ticket_id="T1", task="write the app")
    text = started.bootstrap
    for part in (
        "T1",
        "Build the app",
        "`src/**`",
        "Budget: at most 50 files",
        "no-secrets",
        "agent:two on T2",
        "session-finish",
        "session-handoff",
        "write the app",
        "Acceptance",
    ):
        assert part in text, part
    from exo.stdlib import bootstrap, records, runtime

    session = runtime.current(governed)
    assert session is not None
    gov = governance.load_governance(governed)
    ticket = tickets.read(governed, "T1")

    def render(limit: int) -> str:
        return bootstrap.render(
            session, ticket, gov, session.budget, session.checks, [], records.load_all(governed), limit
        )

    assert render(16000) == render(16000)
    small = render(2000)
    assert len(small) <= 2000 and small.endswith(bootstrap.TRUNCATED) and "## How to finish" in small


def test_freeze_stops_sessions_and_every_fence_check(governed: Path) -> None:
    state = freeze.freeze(governed, A, "runaway agent")
    assert state.frozen and state.reason == "runaway agent"
    assert code(lambda: sessions.start(governed, B, ticket_id="T1")) == "FROZEN"
    assert code(lambda: dispatch.next_ticket(governed, B)) == "FROZEN"
    check = exo("check", "--paths", "src/a.py", "--scope", "src/**", cwd=governed)
    assert check.code == 1 and "exo:frozen" in check.out
    assert exo("status", cwd=governed).out.startswith("FROZEN: runaway agent")
    assert code(lambda: freeze.unfreeze(governed, A)) == "NOT_ALLOWED"
    assert not freeze.unfreeze(governed, HUMAN).frozen
    assert repo_events(governed)[-2:] == ["repo.frozen", "repo.unfrozen"]
    assert sessions.start(governed, B, ticket_id="T1").session.ticket_id == "T1"


def test_dispatch_order_and_skips(governed: Path) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    make = tickets.create
    make(governed, HUMAN, title="old low", scope=["low/**"], ticket_id="LOW", priority=4, now=t0)
    make(governed, HUMAN, title="blocker", scope=["core/**"], ticket_id="CORE", priority=2, now=t0 + timedelta(hours=2))
    make(governed, HUMAN, title="plain", scope=["plain/**"], ticket_id="PLAIN", priority=2, now=t0 + timedelta(hours=1))
    make(governed, HUMAN, title="needs core", scope=["ui/**"], ticket_id="UI", priority=1, depends_on=["CORE"], now=t0)
    make(governed, HUMAN, title="inside src", scope=["src/sub/**"], ticket_id="SUB", priority=1, now=t0)
    tickets.update(governed, "T1", {"priority": 1})
    picks = []
    for n in range(5):
        result = dispatch.next_ticket(governed, f"agent:n{n}")
        picks.append((result.ticket.id, [s.ticket_id for s in result.skipped]))
    # SUB and T1 are priority 1 and SUB is older; once SUB is claimed T1's scope (src/**) overlaps it
    # and is skipped, saying so. UI waits on CORE. Among the priority 2 tickets CORE unblocks UI, so
    # it goes before the older PLAIN.
    assert picks == [("SUB", []), ("CORE", ["T1"]), ("PLAIN", ["T1"]), ("T2", ["T1"]), ("LOW", ["T1"])]
    assert code(lambda: dispatch.next_ticket(governed, "agent:late")) == "NO_TICKET"


@pytest.mark.parametrize(
    ("args", "err"),
    [
        (["session-start", "--ticket-id", "NOPE"], "TICKET_NOT_FOUND"),
        (["session-start", "--ticket-id", "bad id"], "INVALID_ID"),
        (["session-start"], "NO_TICKET"),
        (["session-heartbeat"], "SESSION_NOT_FOUND"),
        (["session-finish"], "SESSION_NOT_FOUND"),
        (["session-handoff", "--to", "agent:b", "--summary", "x"], "SESSION_NOT_FOUND"),
        (["session-finish", "--set-status", "shipped"], "INVALID_ARGUMENT"),
        (["freeze", "--reason", " "], "INVALID_ARGUMENT"),
        (["unfreeze"], "NOT_ALLOWED"),
    ],
)
def test_bad_session_input_is_a_coded_error_that_changes_nothing(governed: Path, args: list[str], err: str) -> None:
    before = snapshot(governed)
    run = exo(*args, cwd=governed, env={"EXO_ACTOR": A})
    assert run.code in (1, 2) and run.err.startswith(f"error[{err}]"), run.err
    assert snapshot(governed) == before


def test_blocked_and_done_tickets_cannot_start(governed: Path) -> None:
    tickets.create(governed, HUMAN, title="later", scope=["x/**"], ticket_id="LATER", depends_on=["T2"])
    tickets.update(governed, "T1", {"status": "done"})
    assert code(lambda: sessions.start(governed, A, ticket_id="LATER")) == "TICKET_BLOCKED"
    assert code(lambda: sessions.start(governed, A, ticket_id="T1")) == "TICKET_BLOCKED"


def test_cli_lifecycle_with_json(governed: Path) -> None:
    env = {"EXO_ACTOR": A}
    claimed = exo("next", cwd=governed, env=env)
    assert claimed.code == 0 and claimed.out.strip() == "T1"
    started = exo("session-start", "--json", cwd=governed, env=env)
    assert started.code == 0, started.err
    sid = json.loads(started.out)["session"]["sid"]
    status = json.loads(exo("session-status", "--json", cwd=governed, env=env).out)
    assert status["current"]["sid"] == sid
    assert exo("session-heartbeat", cwd=governed, env=env).code == 0
    (governed / "docs").mkdir()
    (governed / "docs/oops.md").write_text("x\n")
    refused = exo("session-finish", "--summary", "s", cwd=governed, env=env)
    assert refused.code == 1 and refused.out == "" and refused.err.count("error[DRIFT]") == 1
    assert "out_of_scope: docs/oops.md" in refused.err and "stays open" in refused.err
    evidence = json.loads(exo("session-finish", "--summary", "s", "--json", cwd=governed, env=env).out)
    assert evidence["ok"] is False and evidence["error"]["code"] == "DRIFT"  # the error, and beside it its evidence
    assert [v["path"] for v in evidence["drift"]["violations"]] == ["docs/oops.md"]
    assert evidence["session"]["sid"] == sid and evidence["checks"] == []
    (governed / "docs/oops.md").unlink()
    finished = exo("session-finish", "--summary", "s", "--json", cwd=governed, env=env)
    assert finished.code == 0, finished.err
    assert json.loads(finished.out)["outcome"] == "finished"
    assert exo("audit", "verify", cwd=governed).code == 0


def test_starting_in_a_frozen_repository_is_a_coded_error_that_changes_nothing(governed: Path) -> None:
    freeze.freeze(governed, HUMAN, "release freeze")
    before = snapshot(governed)
    for args in (["session-start", "--ticket-id", "T1"], ["next"]):
        run = exo(*args, cwd=governed, env={"EXO_ACTOR": A})
        assert run.code == 1 and run.err.startswith("error[FROZEN]: the repository is frozen: release freeze")
    assert snapshot(governed) == before


@pytest.mark.parametrize("where", ["tickets.update", "records.write", "git.commit_only"])
def test_a_finish_that_fails_after_sealing_can_be_retried(
    governed: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A crash anywhere after the stream is sealed leaves a finish that a retry completes."""
    from exo.stdlib import closeout

    sid = sessions.start(governed, "agent:one", ticket_id="T1").session.sid
    (governed / "src").mkdir(exist_ok=True)
    (governed / "src/a.py").write_text("a = 1\n")
    module, name = where.split(".")
    target = getattr(closeout, module)
    real = getattr(target, name)

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(target, name, crash)
    with pytest.raises(OSError):
        closeout.finish(governed, "agent:one", summary="first try")
    monkeypatch.setattr(target, name, real)
    result = closeout.finish(governed, "agent:one", summary="second try")
    assert result.outcome == "finished"
    assert result.session.sid == sid and (governed / f".exo/sessions/{sid}.json").exists()
    from exo.stdlib.doctor import diagnose

    report = diagnose(governed)
    assert report.ok, report.problems


def test_status_reports_git_settings_that_run_code(governed: Path) -> None:
    assert sessions.status(governed).git_settings == []
    subprocess.run(["git", "config", "core.fsmonitor", "touch /tmp/x"], cwd=governed, check=True)
    subprocess.run(["git", "config", "user.name", "ordinary"], cwd=governed, check=True)
    assert sessions.status(governed).git_settings == ["core.fsmonitor"]
    done = exo("status", cwd=governed)
    assert done.code == 0 and "WARNING: git settings here that run code or redirect git: core.fsmonitor" in done.out


def test_a_lock_rule_this_exo_does_not_know_is_refused_never_described_as_another(governed: Path) -> None:
    from exo.kernel._governance import lock_digest

    lock = governed / ".exo/governance.lock.json"
    doc = json.loads(lock.read_text())
    budget = {"id": "small", "type": "budget", "max_files": 3, "description": "", "line": 1}
    doc["rules"] = [*doc["rules"], {**budget, "id": "later", "type": "quorum"}]  # a newer exo's rule, self-hash kept
    doc["sha256"] = lock_digest(doc)
    lock.write_text(json.dumps(doc))
    before = snapshot(governed)
    started = exo("session-start", "--ticket-id", "T1", "--json", cwd=governed, env={"EXO_ACTOR": A})
    assert started.code == 1 and "error[GOVERNANCE_STALE]" in started.err and "'later'" in started.err
    assert "exo build-governance" in started.err and json.loads(started.out)["error"]["code"] == "GOVERNANCE_STALE"
    assert snapshot(governed) == before  # refused before anything was written, no lease taken
    typo = {
        **doc,
        "rules": [*doc["rules"][:-1], {**budget, "id": "later", "max_files": "3"}],
    }  # a known type, bad value
    typo["sha256"] = lock_digest(typo)
    lock.write_text(json.dumps(typo))
    assert (
        "error[GOVERNANCE_STALE]" in exo("session-start", "--ticket-id", "T1", cwd=governed, env={"EXO_ACTOR": A}).err
    )


def test_a_start_that_fails_after_the_lease_leaves_no_session_and_no_lease_of_its_own(governed: Path) -> None:
    """Claude Code's local settings in a shape exo will not edit: start fails once it holds the
    lease (writing the session's sandbox is its last step), and then undoes itself: no open
    session, and the lease it took released; a lease `exo next` took stays the actor's."""
    from exo.kernel import inspect_lock
    from exo.stdlib import install

    install.install(governed, git_hooks=False, claude=True, cursor=False, exe="exo")
    local = governed / ".claude/settings.local.json"
    local.write_text('{"permissions": {"deny": "Read(./.env)"}}\n')
    for claimed in (False, True):
        if claimed:
            dispatch.next_ticket(governed, A)
        with pytest.raises(ExoError) as raised:
            sessions.start(governed, A, ticket_id="T1")
        assert raised.value.code == "IO_ERROR" and "settings.local.json" in raised.value.message
        assert sessions.status(governed).current is None
        held = inspect_lock(governed, "T1")
        if claimed:
            assert held is not None and held.holder == A and held.live(datetime.now(UTC))
        else:
            assert held is None or not held.live(datetime.now(UTC))
    assert local.read_text() == '{"permissions": {"deny": "Read(./.env)"}}\n'
    local.unlink()
    assert sessions.start(governed, A, ticket_id="T1").session.ticket_id == "T1"  # fixed by hand, it starts
