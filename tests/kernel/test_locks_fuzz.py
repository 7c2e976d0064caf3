"""FUZ-1: a state machine over acquire/renew/release/takeover/clock ticks against a model."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from exo.kernel import ExoError, Lease, LeaseStore, acquire_lock, inspect_lock, release_lock, renew_lock
from tests.conftest import STRESS

pytestmark = pytest.mark.heavy
TTL = 60
HOLDER_NAMES = ("agent:a", "agent:b", "agent:c")
HOLDERS = st.sampled_from(HOLDER_NAMES)


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="exo-fuz-"))
        (self.dir / ".git").mkdir()  # the local store needs only a git dir to hold its state
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.current: Lease | None = None  # the model: the lease the store must hold
        self.granted: list[Lease] = []  # every grant, stale ones included
        self.epochs: list[int] = []

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def where(self, holder: str) -> tuple[Path, LeaseStore | None]:
        """The clone `holder` works in and the store it uses (here: one clone, the local store)."""
        return self.dir, None

    def live(self) -> bool:
        return self.current is not None and self.current.state == "held" and self.current.expires_at > self.now

    @rule(seconds=st.integers(min_value=0, max_value=2 * TTL))
    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(holder=HOLDERS)
    def acquire(self, holder: str) -> None:
        root, store = self.where(holder)
        if self.live():
            with pytest.raises(ExoError) as caught:
                acquire_lock(root, "T", holder, TTL, now=self.now, store=store)
            assert caught.value.code == "LOCK_HELD"
            return
        lease = acquire_lock(root, "T", holder, TTL, now=self.now, store=store)
        expected_epoch = (self.current.epoch if self.current else 0) + 1
        assert lease.epoch == expected_epoch and lease.holder == holder
        self.current = lease
        self.granted.append(lease)
        self.epochs.append(lease.epoch)

    @rule(pick=st.integers(min_value=0, max_value=50))
    def renew(self, pick: int) -> None:
        if not self.granted:
            return
        lease = self.granted[pick % len(self.granted)]
        root, store = self.where(lease.holder)
        valid = self.current is not None and lease.lease_id == self.current.lease_id and self.live()
        if valid:
            renewed = renew_lock(root, lease, now=self.now, store=store)
            assert renewed.expires_at == self.now + timedelta(seconds=TTL)
            self.current = renewed
        else:
            with pytest.raises(ExoError) as caught:
                renew_lock(root, lease, now=self.now, store=store)
            assert caught.value.code == "LOCK_LOST"

    @rule(pick=st.integers(min_value=0, max_value=50))
    def release(self, pick: int) -> None:
        if not self.granted:
            return
        lease = self.granted[pick % len(self.granted)]
        root, store = self.where(lease.holder)
        if self.current is not None and lease.lease_id == self.current.lease_id:
            self.current = release_lock(root, lease, store=store)
            assert self.current.state == "released"
        else:
            with pytest.raises(ExoError) as caught:
                release_lock(root, lease, store=store)
            assert caught.value.code == "LOCK_LOST"

    @invariant()
    def store_matches_model(self) -> None:
        for holder in HOLDER_NAMES:  # what every contender reads
            root, store = self.where(holder)
            assert inspect_lock(root, "T", store=store) == self.current

    @invariant()
    def epochs_strictly_increase(self) -> None:
        assert all(a < b for a, b in zip(self.epochs, self.epochs[1:], strict=False))


LeaseMachine.TestCase.settings = settings(max_examples=40 * STRESS, stateful_step_count=30, deadline=None)
test_fuz1_lease_state_machine = LeaseMachine.TestCase
