"""Claim figures (SPEC §10): an uncontended claim through a local bare remote — in process, and
as `exo next` from the command line — a fenced finish's push (work branch and release together),
and a round of N clones racing for one ticket, each beside the local store's figure measured in the
same run.

Usage: python bench/claims.py [--runs N] [--racers N]
Prints figures; asserts nothing (the budget is compared in the output, not enforced by tests).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

RACER = """
import sys, time
from exo.kernel import ExoError, acquire_lock
from exo.stdlib.claims import RemoteLeaseStore
store = RemoteLeaseStore(sys.argv[1], "origin")
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
try:
    acquire_lock(sys.argv[1], "RACE", "agent:" + sys.argv[2], 600, store=store)
    outcome = "won"
except ExoError as exc:
    outcome = exc.code
print(outcome, time.perf_counter() - start, flush=True)
"""


def clone(base: Path, name: str, remote: Path) -> Path:
    root = base / name
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "remote", "add", "origin", str(remote)], cwd=root, check=True)
    return root


def claim_ms(root: Path, runs: int, *, remote: bool) -> float:
    """Median time of acquire + release of a fresh ticket, in process (the store's own cost)."""
    from exo.kernel import LocalLeaseStore, acquire_lock, release_lock
    from exo.stdlib.claims import RemoteLeaseStore

    times = []
    for i in range(runs):
        store = RemoteLeaseStore(root, "origin") if remote else LocalLeaseStore(root)
        start = time.perf_counter()
        lease = acquire_lock(root, f"B{i}", "agent:bench", 600, store=store)
        times.append(time.perf_counter() - start)
        release_lock(root, lease, store=store)
    return statistics.median(times) * 1000


def next_ms(base: Path, remote: Path, runs: int, *, store: str, held: int = 0) -> float:
    """Median wall time of `exo next` as a fresh process claiming a fresh ticket (each run another
    agent, each ticket its own scope), in a governed clone whose claims are `store`, with `held`
    claims of other tickets already live on the remote (each listing reads them all)."""
    from exo.kernel import acquire_lock
    from exo.stdlib import scaffold, tickets
    from exo.stdlib.claims import RemoteLeaseStore

    root = clone(base, f"next-{store}-{held}", remote)
    scaffold.init_repo(root)
    with (root / ".exo/config.yaml").open("a") as fh:
        fh.write(f"claims:\n  store: {store}\n  remote: origin\n")
    for i in range(runs):
        tickets.create(root, "human:b@exo.invalid", title=f"t{i}", scope=[f"src/t{i}/**"], ticket_id=f"N{held}x{i}")
    if held:
        store = RemoteLeaseStore(root, "origin")
        for i in range(held):
            acquire_lock(root, f"H{held}x{i}", f"agent:h{i}", 3600, store=store)
    times = []
    for i in range(runs):
        argv = [sys.executable, "-m", "exo", "next", "--json", "--actor", f"agent:n{held}x{i}"]
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=root, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"exo next exited {done.returncode}: {done.stderr}")
    return statistics.median(times) * 1000


def landing_ms(base: Path, remote: Path, runs: int) -> float:
    """Median time of a fenced finish's push: a new commit on main and the claim's release, in one
    atomic push (claiming is not timed)."""
    from exo.kernel import acquire_lock
    from exo.stdlib.claims import RemoteLeaseStore, finish_claim

    root = clone(base, "lander", remote)
    times = []
    for i in range(runs):
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@exo.invalid", "commit", "-q", "--allow-empty",
                        "-m", f"work {i}"], cwd=root, check=True)  # fmt: skip
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        store = RemoteLeaseStore(root, "origin")
        lease = acquire_lock(root, f"L{i}", "agent:bench", 600, store=store)
        start = time.perf_counter()
        finish_claim(root, store, lease, head)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def race(base: Path, remote: Path, racers: int) -> tuple[float, int]:
    """One round: every clone claims the same ticket at once. (slowest contender's seconds, winners)"""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(clone(base, f"r{i}", remote)), f"r{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(racers)
    ]
    for proc in procs:
        assert proc.stdout and proc.stdout.readline() == "ready\n"
    for proc in procs:
        assert proc.stdin
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [proc.communicate(timeout=600)[0].split() for proc in procs]
    return max(float(seconds) for _, seconds in results), sum(outcome == "won" for outcome, _ in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--racers", type=int, default=16)
    parser.add_argument("--held", type=int, default=200, help="live claims on the remote for the listing figure")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="exo-bench-claims-"))
    try:
        remote = base / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
        root = clone(base, "one", remote)
        floor = _common.median_ms([sys.executable, "-c", "pass"], base, args.runs)
        local = claim_ms(root, args.runs, remote=False)
        uncontended = claim_ms(root, args.runs, remote=True)
        next_local = next_ms(base, remote, args.runs, store="local")
        next_remote = next_ms(base, remote, args.runs, store="remote")
        next_held = next_ms(base, remote, max(3, args.runs // 4), store="remote", held=args.held)
        landing = landing_ms(base, remote, args.runs)
        slowest, winners = race(base, remote, args.racers)
        _common.report(
            {
                "python_c_pass_ms": round(floor, 2),
                "local_claim_ms": round(local, 2),
                "remote_claim_uncontended_ms": round(uncontended, 2),
                "exo_next_local_ms": round(next_local, 1),
                "exo_next_remote_ms": round(next_remote, 1),
                "exo_next_remote_vs_python_c_pass": round(next_remote / floor, 2),
                f"exo_next_remote_with_{args.held}_live_claims_ms": round(next_held, 1),
                "remote_fenced_finish_push_ms": round(landing, 2),
                f"remote_round_{args.racers}_way_slowest_s": round(slowest, 3),
                f"remote_round_{args.racers}_way_winners": winners,
            },
            "budgets: exo_next_remote_ms <= 500 (SPEC §10: 0.5 s per uncontended claim through a local bare "
            "remote); winners == 1",
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
