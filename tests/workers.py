"""Functions run in separate processes by the concurrency tests (importable for `spawn`)."""

from __future__ import annotations

import os
from multiprocessing.synchronize import Barrier
from typing import Any

from exo.kernel import ExoError, acquire_lock, append_audit, inspect_lock, release_lock, renew_lock


def race(root: str, holder: str, rounds: int, barrier: Barrier, results: Any) -> None:
    """Each round: all contenders claim one ticket at once; the winner lets go after the round."""
    for round_no in range(rounds):
        barrier.wait()
        lease = None
        try:
            lease = acquire_lock(root, "T-race", holder, 600)
            results.put((round_no, holder, lease.epoch))
        except ExoError as exc:
            results.put((round_no, holder, exc.code))
        barrier.wait()
        if lease is not None:
            release_lock(root, lease)


def churn(root: str, holder: str, attempts: int, results: Any) -> None:
    """Claim and release one ticket as fast as possible; report the epochs won."""
    won = []
    for _ in range(attempts):
        try:
            lease = acquire_lock(root, "T-churn", holder, 600)
        except ExoError as exc:
            if exc.code not in ("LOCK_HELD", "LOCK_BUSY"):
                raise
            continue
        won.append(lease.epoch)
        release_lock(root, lease)
    results.put(won)


def renew_many(root: str, times: int, results: Any) -> None:
    """Renew the shared lease `times` times (a read-modify-write under contention)."""
    lease = inspect_lock(root, "T-shared")
    assert lease is not None
    for _ in range(times):
        renew_lock(root, lease)
    results.put(times)


def crash_loop(root: str, ack_fd: int) -> None:
    """Write leases and audit records forever; acknowledge each durable audit record on `ack_fd`."""
    n = 0
    while True:
        current = inspect_lock(root, "T-crash")
        if current is not None and current.state == "held":
            release_lock(root, current)
        lease = acquire_lock(root, "T-crash", f"agent:w{os.getpid()}", 600)
        renew_lock(root, lease)
        release_lock(root, lease)
        record = append_audit(root, "crash", "test.tick", {"n": n, "pad": "x" * (n % 200)})
        os.write(ack_fd, f"{record.seq} {record.h}\n".encode())
        n += 1


def dispatcher(root: str, actor: str, rounds: int, barrier: Barrier, results: Any) -> None:
    """Each round: wait for the tickets, call `exo next` logic at once with the others, report."""
    from pathlib import Path

    from exo.stdlib import dispatch

    for round_no in range(rounds):
        barrier.wait()
        try:
            results.put((round_no, dispatch.next_ticket(Path(root), actor).ticket.id))
        except ExoError as exc:
            results.put((round_no, exc.code))
        barrier.wait()
