"""Fenced completion (SPEC §8): with claims on the remote, finishing lands the work branch and the
claim's release in one `git push --atomic`, each from the tip it was read at. A holder whose claim
was taken over lands nothing; a branch that moved, or a server that refuses, leaves the claim held
and the session open to finish again; commits carry `Exo-Claim: <ticket>@<epoch>`."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exo.kernel import ExoError, acquire_lock
from exo.stdlib import closeout, dispatch, sessions, tickets
from exo.stdlib.claims import CLAIMS, RemoteLeaseStore, finish_claim
from tests.conftest import exo
from tests.stdlib.test_claims import at, code_of, git_remote, machine, remote_governed, wall_clock_only

__all__ = ["git_remote"]  # the fixture, shared with test_claims


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def remote_tip(remote: Path, ref: str) -> str:
    return git(remote, "rev-parse", "--verify", ref)


@pytest.fixture
def team(tmp_path: Path, git_remote: Path) -> tuple[Path, Path]:
    """Two clones, `a` and `b`, of a governed repository whose claims live on `origin`, with exo's
    git hooks installed (so commits are stamped)."""
    clones = remote_governed(tmp_path, git_remote, "a", "b")
    for root in clones:
        name = root.name
        git(root, "config", "user.email", f"{name}@example.com")
        git(root, "config", "user.name", name)
        assert exo("hook-install", "--git", cwd=root).code == 0
    return clones[0], clones[1]


def watched_for_a_lease(root: Path) -> None:
    """This clone looks at the claims on its remote and, as if a whole lease had passed on its own
    clock since, is ready to take over those that lapsed (expiry is judged on each machine's clock)."""
    from exo.kernel.state import State, read_doc, write_doc

    RemoteLeaseStore(root, "origin").all()
    path = State(root).cache("claims-watch")
    doc = read_doc(path)
    assert doc is not None
    write_doc(path, {**doc, "tips": {t: [tip, at - 7 * 24 * 3600] for t, (tip, at) in doc["tips"].items()}})


def work(root: Path, actor: str, name: str) -> str:
    """Commit a file under src/ through the real git hooks; the commit's Exo-Claim trailer."""
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / name).write_text(f"{name} = 1\n")
    git(root, "add", "src")
    git(root, "commit", "-qm", f"add {name}", env={"EXO_ACTOR": actor})
    return git(root, "log", "-1", "--format=%(trailers:key=Exo-Claim,valueonly)")


def test_finish_lands_the_work_and_releases_the_claim_in_one_push(team: tuple[Path, Path], git_remote: Path) -> None:
    a, _b = team
    started = sessions.start(a, "agent:a", ticket_id="T1")
    assert started.session.epoch == 1
    assert work(a, "agent:a", "x.py") == "T1@1"
    done = closeout.finish(a, "agent:a", summary="x")
    assert done.commit is not None
    assert git(a, "log", "-1", "--format=%(trailers:key=Exo-Claim,valueonly)", done.commit) == "T1@1"
    assert remote_tip(git_remote, "refs/heads/main") == done.commit  # the work landed ...
    claim = RemoteLeaseStore(a, "origin").read("T1")
    assert claim is not None and (claim.state, claim.epoch) == ("released", 1)  # ... with the release


def test_a_taken_over_holder_lands_nothing(team: tuple[Path, Path], git_remote: Path) -> None:
    """Machine a's lease lapses while it works; machine b takes the ticket over (epoch 2). a's finish
    is refused as a whole: main on the remote is as it was, b's claim untouched, a's session open."""
    a, b = team
    started = datetime.now(UTC)
    sessions.start(a, "agent:a", ticket_id="T1", now=started)
    assert work(a, "agent:a", "x.py") == "T1@1"  # the hooks judge the lease on the real clock
    main_before = remote_tip(git_remote, "refs/heads/main")
    later = started + timedelta(seconds=1800 + 60)
    watched_for_a_lease(b)
    taken = dispatch.next_ticket(b, "agent:b", now=later)
    assert taken.ticket is not None and taken.ticket.id == "T1" and taken.lease is not None
    assert taken.lease.epoch == 2
    assert code_of(lambda: closeout.finish(a, "agent:a", summary="late", now=later)) == "LOCK_LOST"
    assert remote_tip(git_remote, "refs/heads/main") == main_before
    claim = RemoteLeaseStore(b, "origin").read("T1")
    assert claim is not None and (claim.holder, claim.epoch, claim.state) == ("agent:b", 2, "held")


def test_a_stale_swap_carrying_the_branch_is_refused_as_a_whole(tmp_path: Path, git_remote: Path) -> None:
    """The race the checks before the push cannot close: a read its lease, b took it over, and only
    then does a push. The server refuses the claim, so the branch beside it does not move either."""
    a, b = machine(tmp_path, "a", git_remote), machine(tmp_path, "b", git_remote)
    git(a, "commit", "-q", "--allow-empty", "-m", "base")
    git(a, "push", "-q", "origin", "main")
    sa, sb = RemoteLeaseStore(a, "origin"), RemoteLeaseStore(b, "origin", clock=wall_clock_only())
    mine = acquire_lock(a, "T1", "agent:a", 60, now=at(0), store=sa)
    git(a, "commit", "-q", "--allow-empty", "-m", "work")
    head = git(a, "rev-parse", "HEAD")
    landing = sa.landing(head)
    acquire_lock(b, "T1", "agent:b", 60, now=at(120), store=sb)  # a's lease lapsed: b takes over
    with sa.carrying(landing):
        assert sa.swap("T1", mine, mine.model_copy(update={"state": "released"})) is False
    assert remote_tip(git_remote, "refs/heads/main") == landing.old
    assert code_of(lambda: finish_claim(a, sa, mine, head)) == "LOCK_LOST"
    assert remote_tip(git_remote, "refs/heads/main") == landing.old
    held = sb.read("T1")
    assert held is not None and (held.holder, held.epoch, held.state) == ("agent:b", 2, "held")


def test_a_branch_that_moved_keeps_the_claim_until_the_work_is_rebased(
    team: tuple[Path, Path], git_remote: Path
) -> None:
    a, b = team
    sessions.start(a, "agent:a", ticket_id="T1")
    work(a, "agent:a", "x.py")
    (b / "README.md").write_text("someone else's change\n")
    git(b, "add", "README.md")
    git(b, "commit", "-qm", "elsewhere", env={"EXO_ACTOR": "human:b@example.com"})
    git(b, "push", "-q", "origin", "main")
    moved = remote_tip(git_remote, "refs/heads/main")
    caught = code_of(lambda: closeout.finish(a, "agent:a", summary="x"))
    assert caught == "BRANCH_BEHIND"
    assert remote_tip(git_remote, "refs/heads/main") == moved
    claim = RemoteLeaseStore(b, "origin").read("T1")
    assert claim is not None and (claim.holder, claim.state) == ("agent:a", "held")
    assert sessions.own_session(a, "agent:a").ticket_id == "T1"  # still open: nothing was sealed
    git(a, "pull", "-q", "--rebase", "origin", "main", env={"EXO_ACTOR": "agent:a"})
    done = closeout.finish(a, "agent:a", summary="x")
    assert remote_tip(git_remote, "refs/heads/main") == done.commit
    log = git(git_remote, "log", "--format=%s", "main").splitlines()
    assert log[:3] == ["exo: finish session on T1", "add x.py", "elsewhere"], log


def test_a_push_the_server_refuses_is_retried_without_a_second_closeout(
    team: tuple[Path, Path], git_remote: Path
) -> None:
    """A server hook declines the push after the closeout commit was made: PUSH_REFUSED with what
    the server said, the claim held; once the server takes pushes again, finish lands the same
    closeout commit."""
    a, _b = team
    hook = git_remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nif [ -e \"$GIT_DIR/closed\" ]; then echo 'branch is protected' >&2; exit 1; fi\n")
    hook.chmod(0o755)
    sessions.start(a, "agent:a", ticket_id="T1")
    work(a, "agent:a", "x.py")
    (git_remote / "closed").write_text("")
    with pytest.raises(ExoError) as refused:
        closeout.finish(a, "agent:a", summary="x")
    assert refused.value.code == "PUSH_REFUSED" and "branch is protected" in refused.value.message
    first = git(a, "rev-parse", "HEAD")
    assert remote_tip(git_remote, "refs/heads/main") != first
    (git_remote / "closed").unlink()
    done = closeout.finish(a, "agent:a", summary="x")
    assert done.commit == first == remote_tip(git_remote, "refs/heads/main")
    subjects = git(a, "log", "--format=%s", "main").splitlines()
    assert subjects.count("exo: finish session on T1") == 1


def test_a_detached_head_is_refused_before_anything_is_sealed(team: tuple[Path, Path]) -> None:
    a, _b = team
    sessions.start(a, "agent:a", ticket_id="T1")
    work(a, "agent:a", "x.py")
    git(a, "switch", "-q", "--detach")
    assert code_of(lambda: closeout.finish(a, "agent:a", summary="x")) == "INVALID_ARGUMENT"
    git(a, "switch", "-q", "main")
    assert closeout.finish(a, "agent:a", summary="x").commit is not None


def test_the_cli_says_why_a_finish_did_not_land(team: tuple[Path, Path], git_remote: Path) -> None:
    a, b = team
    assert exo("session-start", "--ticket-id", "T1", cwd=a, env={"EXO_ACTOR": "agent:a"}).code == 0
    work(a, "agent:a", "x.py")
    git(b, "commit", "-q", "--allow-empty", "-m", "elsewhere", env={"EXO_ACTOR": "human:b@example.com"})
    git(b, "push", "-q", "origin", "main")
    done = exo("session-finish", "--summary", "x", "--json", cwd=a, env={"EXO_ACTOR": "agent:a"})
    assert done.code == 1, done.err
    error = json.loads(done.out)["error"]
    assert error["code"] == "BRANCH_BEHIND" and "git pull --rebase origin main" in error["hint"], error
    assert CLAIMS + "T1" in git(git_remote, "for-each-ref", "--format=%(refname)")


# --- doctor: the epochs in the history


def doctor_codes(tmp_path: Path, remote: Path) -> dict[str, list[str]]:
    """What doctor finds in a fresh clone of the remote's main: {code: [messages]}."""
    from exo.stdlib import doctor

    fresh = tmp_path / f"ci{len(list(tmp_path.glob('ci*')))}"
    subprocess.run(["git", "clone", "-q", str(remote), str(fresh)], check=True)
    found: dict[str, list[str]] = {}
    for item in doctor.diagnose(fresh).problems:
        found.setdefault(item.code, []).append(f"{item.subject}: {item.message}")
    return found


def take_over(a: Path, b: Path) -> datetime:
    """a's session on T1 makes a commit; its lease lapses and b's session takes T1 over (epoch 2),
    commits and finishes, landing on main. The time b finished at."""
    started = datetime.now(UTC)
    sessions.start(a, "agent:a", ticket_id="T1", now=started)
    assert work(a, "agent:a", "a.py") == "T1@1"
    later = started + timedelta(seconds=1800 + 60)
    watched_for_a_lease(b)
    assert sessions.start(b, "agent:b", ticket_id="T1", now=later).session.epoch == 2
    assert work(b, "agent:b", "b.py") == "T1@2"
    closeout.finish(b, "agent:b", summary="b", now=later)
    return later


def test_doctor_rejects_work_of_a_taken_over_claim_merged_around_the_fence(
    tmp_path: Path, team: tuple[Path, Path], git_remote: Path
) -> None:
    """The stale holder cannot land, but a human can merge its branch by hand: doctor names the
    commit made under the epoch that was taken over."""
    a, b = team
    take_over(a, b)
    assert "CLAIM_STALE" not in doctor_codes(tmp_path, git_remote)
    stale = git(a, "rev-parse", "HEAD")[:12]
    git(a, "pull", "-q", "--no-rebase", "--no-edit", "origin", "main", env={"EXO_ACTOR": "human:h@example.com"})
    git(a, "push", "-q", "origin", "main")
    found = doctor_codes(tmp_path, git_remote)
    assert [m.split(":")[0] for m in found.get("CLAIM_STALE", [])] == [stale], found
    assert "epoch 1 of the claim on T1, which epoch 2 took over" in found["CLAIM_STALE"][0]


def test_doctor_accepts_stale_work_the_new_holder_built_on(
    tmp_path: Path, team: tuple[Path, Path], git_remote: Path
) -> None:
    """The same takeover, but a pushed its branch before its lease lapsed and b's session took the
    work in: nothing is stale."""
    a, b = team
    started = datetime.now(UTC)
    sessions.start(a, "agent:a", ticket_id="T1", now=started)
    work(a, "agent:a", "a.py")
    git(a, "push", "-q", "origin", "main:refs/heads/wip")
    later = started + timedelta(seconds=1800 + 60)
    watched_for_a_lease(b)
    sessions.start(b, "agent:b", ticket_id="T1", now=later)
    git(b, "pull", "-q", "--no-rebase", "--no-edit", "origin", "wip", env={"EXO_ACTOR": "agent:b"})
    work(b, "agent:b", "b.py")
    closeout.finish(b, "agent:b", summary="b", now=later)
    found = doctor_codes(tmp_path, git_remote)
    assert "CLAIM_STALE" not in found and "CLAIM_MISMATCH" not in found, found


def test_doctor_rejects_a_claim_trailer_that_is_not_the_sessions_own(
    tmp_path: Path, team: tuple[Path, Path], git_remote: Path
) -> None:
    a, _b = team
    sessions.start(a, "agent:a", ticket_id="T1")
    work(a, "agent:a", "x.py")
    done = closeout.finish(a, "agent:a", summary="x")
    sid = git(a, "log", "-1", "--format=%(trailers:key=Exo-Session,valueonly)", done.commit or "")
    assert doctor_codes(tmp_path, git_remote).get("CLAIM_MISMATCH") is None
    forged = ["-c", "core.hooksPath=/dev/null", "commit", "-q", "--allow-empty", "-m", "more"]
    for trailer in (f"Exo-Session: {sid}", "Exo-Ticket: T1", "Exo-Claim: T1@7", "Exo-Actor: agent:a"):
        forged += ["--trailer", trailer]
    git(a, *forged)
    git(a, "push", "-q", "origin", "main")
    found = doctor_codes(tmp_path, git_remote)
    assert len(found.get("CLAIM_MISMATCH", [])) == 1 and "its session holds T1@1" in found["CLAIM_MISMATCH"][0], found


def test_a_server_without_atomic_pushes_takes_claims_but_refuses_to_land(
    team: tuple[Path, Path], git_remote: Path
) -> None:
    """A forge that cannot push atomically (Azure DevOps is one) still holds claims, one ref per
    push; finishing, which needs the two refs to move together, is refused and says why."""
    a, _b = team
    git(git_remote, "config", "receive.advertiseAtomic", "false")
    sessions.start(a, "agent:a", ticket_id="T1")
    work(a, "agent:a", "x.py")
    main_before = remote_tip(git_remote, "refs/heads/main")
    with pytest.raises(ExoError) as refused:
        closeout.finish(a, "agent:a", summary="x")
    assert refused.value.code == "PUSH_REFUSED" and "git push --atomic" in refused.value.message
    assert remote_tip(git_remote, "refs/heads/main") == main_before
    claim = RemoteLeaseStore(a, "origin").read("T1")
    assert claim is not None and claim.state == "held"


def test_doctor_accepts_work_of_an_epoch_its_session_let_go_whenever_it_lands(
    tmp_path: Path, team: tuple[Path, Path], git_remote: Path
) -> None:
    """a finishes T1 on a work branch (epoch 1, released); b claims T1 again (epoch 2) from main,
    finishes on its own branch, and that branch is merged first. a's branch merged afterwards is
    not stale: a's session let its epoch go by finishing."""
    a, b = team
    git(a, "switch", "-q", "-c", "feat-1")
    sessions.start(a, "agent:a", ticket_id="T1")
    work(a, "agent:a", "a.py")
    closeout.finish(a, "agent:a", summary="a")
    tickets.update(b, "T1", {"status": "todo"})  # reopened (uncommitted: b's own worktree)
    git(b, "switch", "-q", "-c", "feat-2")
    assert sessions.start(b, "agent:b", ticket_id="T1").session.epoch == 2
    work(b, "agent:b", "b.py")
    closeout.finish(b, "agent:b", summary="b")
    human = {"EXO_ACTOR": "human:h@example.com"}
    git(b, "switch", "-q", "main")
    git(b, "fetch", "-q", "origin")
    for branch in ("origin/feat-2", "origin/feat-1"):
        git(b, "merge", "-q", "--no-ff", "--no-edit", branch, env=human)
    git(b, "push", "-q", "origin", "main")
    found = doctor_codes(tmp_path, git_remote)
    assert "CLAIM_STALE" not in found and "CLAIM_MISMATCH" not in found, found


def test_a_taken_over_holders_hooks_deny_from_its_next_heartbeat(team: tuple[Path, Path]) -> None:
    """The hooks read this machine's copy of the claim, so a takeover on another machine reaches
    them with the next broker operation here: the heartbeat that learns of it also stops the
    writes."""
    a, b = team
    started = datetime.now(UTC)
    assert exo("session-start", "--ticket-id", "T1", cwd=a, env={"EXO_ACTOR": "agent:a"}).code == 0
    (a / "src").mkdir()
    payload = json.dumps({"cwd": str(a), "tool_name": "Write", "tool_input": {"file_path": str(a / "src/x.py")}})
    assert exo("hook", "claude", "pre-tool-use", cwd=a, stdin=payload).code == 0
    watched_for_a_lease(b)
    assert sessions.start(b, "agent:b", ticket_id="T1", now=started + timedelta(seconds=1860)).session.epoch == 2
    beat = exo("session-heartbeat", cwd=a, env={"EXO_ACTOR": "agent:a"})
    assert beat.code == 1 and "error[LOCK_LOST]" in beat.err, beat.err
    denied = exo("hook", "claude", "pre-tool-use", cwd=a, stdin=payload)
    assert denied.code == 2, (denied.out, denied.err)
