"""Ticket leases: grant, renew, release, expiry and audited takeover, fencing epochs, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exo.kernel import (
    ExoError,
    InputError,
    LocalLeaseStore,
    LockError,
    acquire_lock,
    inspect_lock,
    release_lock,
    renew_lock,
    verify_audit,
)
from exo.kernel.state import State
from tests.conftest import git, snapshot

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def code_of(call: object) -> str:
    with pytest.raises(ExoError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code


def test_one_live_holder_and_epochs_that_only_grow(git_repo: Path) -> None:
    first = acquire_lock(git_repo, "T1", "agent:a", 60, now=at(0))
    assert (first.epoch, first.holder, first.state) == (1, "agent:a", "held")
    assert code_of(lambda: acquire_lock(git_repo, "T1", "agent:b", 60, now=at(30))) == "LOCK_HELD"
    assert code_of(lambda: acquire_lock(git_repo, "T1", "agent:a", 60, now=at(30))) == "LOCK_HELD"
    released = release_lock(git_repo, first)
    assert released.state == "released" and not released.live(at(1))
    assert release_lock(git_repo, first).state == "released"  # idempotent for its holder
    second = acquire_lock(git_repo, "T1", "agent:b", 60, now=at(31))
    assert second.epoch == 2
    assert code_of(lambda: renew_lock(git_repo, first, now=at(32))) == "LOCK_LOST"
    assert code_of(lambda: release_lock(git_repo, first)) == "LOCK_LOST"
    assert inspect_lock(git_repo, "T1") == second


def test_renew_extends_and_expiry_loses_the_lease(git_repo: Path) -> None:
    lease = acquire_lock(git_repo, "T1", "agent:a", 60, now=at(0))
    renewed = renew_lock(git_repo, lease, now=at(50))
    assert renewed.expires_at == at(110) and renewed.renewals == 1 and renewed.epoch == 1
    assert renew_lock(git_repo, lease, now=at(60)).renewals == 2  # the old copy still names the grant
    assert code_of(lambda: renew_lock(git_repo, lease, now=at(500))) == "LOCK_LOST"


def test_expired_lease_is_taken_over_and_audited(git_repo: Path) -> None:
    old = acquire_lock(git_repo, "T1", "agent:a", 60, now=at(0))
    new = acquire_lock(git_repo, "T1", "agent:b", 60, now=at(61))
    assert new.epoch == 2 and new.holder == "agent:b"
    assert code_of(lambda: renew_lock(git_repo, old, now=at(62))) == "LOCK_LOST"
    assert not (git_repo / ".exo").exists()  # a clone's own event: runtime state, never in the worktree
    lines = Path(State(git_repo).stream("local")).read_text().splitlines()
    takeover = json.loads(lines[-1])
    assert takeover["event"] == "lock.takeover"
    assert takeover["data"] | {} == {
        "ticket_id": "T1",
        "holder": "agent:b",
        "epoch": 2,
        "previous_holder": "agent:a",
        "previous_epoch": 1,
        "previous_expired_at": old.expires_at.isoformat(),
    }
    assert verify_audit(git_repo).ok


def test_acquire_after_release_is_not_a_takeover(git_repo: Path) -> None:
    lease = acquire_lock(git_repo, "T1", "agent:a", 60, now=at(0))
    release_lock(git_repo, lease)
    acquire_lock(git_repo, "T1", "agent:b", 60, now=at(1))
    assert not Path(State(git_repo).stream("local")).exists()


def test_leases_are_shared_by_all_worktrees_of_a_clone(git_repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "wt2"
    git(git_repo, "worktree", "add", "-q", str(other), "-b", "wt2")
    acquire_lock(git_repo, "T1", "agent:a", 60)
    assert code_of(lambda: acquire_lock(other, "T1", "agent:b", 60)) == "LOCK_HELD"
    assert LocalLeaseStore(other).path("T1") == LocalLeaseStore(git_repo).path("T1")
    assert not any(p.name == "T1.json" for p in other.rglob("*"))


BAD_IDS = ["", "1abc", "a/b", ".x", "a" * 65, "a b", "\u00e4", "../x", "a\x00", "-x", None, 5, ["T1"]]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_bad_ticket_ids_are_refused_and_write_nothing(git_repo: Path, bad: object) -> None:
    before = snapshot(git_repo)
    assert code_of(lambda: acquire_lock(git_repo, bad, "agent:a", 60)) == "INVALID_ID"  # type: ignore[arg-type]
    assert code_of(lambda: inspect_lock(git_repo, bad)) == "INVALID_ID"  # type: ignore[arg-type]
    assert snapshot(git_repo) == before


@pytest.mark.parametrize("holder", ["", "has space", "x" * 201, "tab\t", "nl\n", None, 3])
def test_bad_holders_are_refused(git_repo: Path, holder: object) -> None:
    assert code_of(lambda: acquire_lock(git_repo, "T1", holder, 60)) == "INVALID_ID"  # type: ignore[arg-type]
    assert inspect_lock(git_repo, "T1") is None


@pytest.mark.parametrize("ttl", [0, -1, 10**9, 1.5, "60", True, None])
def test_bad_ttls_are_refused(git_repo: Path, ttl: object) -> None:
    assert code_of(lambda: acquire_lock(git_repo, "T1", "agent:a", ttl)) == "INVALID_ARGUMENT"  # type: ignore[arg-type]
    assert inspect_lock(git_repo, "T1") is None


def test_corrupt_lease_file_is_reported_not_overwritten(git_repo: Path) -> None:
    acquire_lock(git_repo, "T1", "agent:a", 60)
    path = Path(State(git_repo).lease("T1"))
    path.write_bytes(b"\x00garbage")
    assert code_of(lambda: acquire_lock(git_repo, "T1", "agent:b", 60)) == "LOCK_CORRUPT"
    assert path.read_bytes() == b"\x00garbage"


def test_outside_a_repository_is_a_coded_error(tmp_path: Path) -> None:
    with pytest.raises(ExoError) as caught:
        acquire_lock(tmp_path, "T1", "agent:a", 60)
    assert caught.value.code == "NOT_A_REPOSITORY"


def test_errors_are_typed(git_repo: Path) -> None:
    lease = acquire_lock(git_repo, "T1", "agent:a", 60)
    with pytest.raises(LockError):
        acquire_lock(git_repo, "T1", "agent:b", 60)
    with pytest.raises(InputError):
        acquire_lock(git_repo, "bad id", "agent:b", 60)
    assert lease.live()


@pytest.mark.parametrize("now", [datetime(2026, 1, 1), "2026-01-01", 1767225600])
def test_injected_clocks_must_be_timezone_aware(git_repo: Path, now: object) -> None:
    assert code_of(lambda: acquire_lock(git_repo, "T1", "agent:a", 60, now=now)) == "INVALID_ARGUMENT"  # type: ignore[arg-type]
    assert inspect_lock(git_repo, "T1") is None
