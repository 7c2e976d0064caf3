"""FUZ-2: FUZ-1's state machine (claim, renew, release, takeover, clock ticks) on the remote
store, each holder in a clone of its own whose expiry judgment runs on its own watch of the claim
(a monotonic clock ticking with the model's): epochs strictly increase, one holder at a time, every
clone reads the same lease, and a stale holder's renew or release is LOCK_LOST."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

from exo.kernel import LeaseStore
from exo.stdlib.claims import Clock, RemoteLeaseStore
from tests.conftest import STRESS
from tests.kernel.test_locks_fuzz import HOLDER_NAMES, LeaseMachine

pytestmark = pytest.mark.heavy


class RemoteLeaseMachine(LeaseMachine):
    def __init__(self) -> None:
        super().__init__()
        bare = self.dir / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
        self.clones: dict[str, tuple[Path, LeaseStore]] = {}
        start = self.now  # every clone's monotonic clock runs with the ticks, from its first step
        clock = Clock(lambda: (self.now - start).total_seconds(), lambda: "fuzz", lambda: self.now)
        for holder in HOLDER_NAMES:
            root = self.dir / holder.replace(":", "-")
            subprocess.run(["git", "init", "-q", str(root)], check=True)
            subprocess.run(["git", "remote", "add", "origin", str(bare)], cwd=root, check=True)
            self.clones[holder] = (root, RemoteLeaseStore(root, "origin", clock=clock))

    def where(self, holder: str) -> tuple[Path, LeaseStore | None]:
        return self.clones[holder]


RemoteLeaseMachine.TestCase.settings = settings(max_examples=8 * STRESS, stateful_step_count=20, deadline=None)
test_fuz2_remote_lease_state_machine = RemoteLeaseMachine.TestCase
