"""Session figures (SPEC §10): `exo next` and `exo ticket list` over 10,000 tickets, and
session-finish drift on a 20,000-file repository with 2,000 changed files (checks excluded).

Usage: .venv/bin/python bench/sessions.py [--tickets N] [--files N] [--changed N] [--runs N]
Prints figures beside `python -c pass`; asserts nothing. Budgets: next / ticket list <= 0.5 s,
drift <= 1 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common

EXO = [sys.executable, "-c", "from exo.cli import main; main()"]


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    import os

    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def repo(base: Path, name: str) -> Path:
    from exo.stdlib.scaffold import init_repo

    root = base / name
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "bench@exo.invalid")
    git(root, "config", "user.name", "bench")
    init_repo(root)
    return root


def write_tickets(root: Path, count: int) -> None:
    """Ticket files written directly (creating them one by one would time the creation)."""
    from exo.stdlib.tickets import Scope, Ticket, path_of, render

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        ticket = Ticket(
            id=f"T{i:05d}",
            title=f"ticket {i}",
            priority=1 + i % 5,
            scope=Scope(allow=[f"area{i}/**"]),
            depends_on=[f"T{i - 1:05d}"] if i % 10 == 9 else [],
            created_at=t0 + timedelta(seconds=i),
            created_by="human:bench@exo.invalid",
        )
        path_of(root, ticket.id).parent.mkdir(parents=True, exist_ok=True)
        path_of(root, ticket.id).write_bytes(render(ticket))


def bench_tickets(base: Path, count: int, runs: int) -> dict[str, float]:
    root = repo(base, "tickets")
    write_tickets(root, count)
    cold = timed([*EXO, "ticket", "list", "--json"], root)
    listing = statistics.median(timed([*EXO, "ticket", "list", "--json"], root) for _ in range(runs))
    nexts = [timed([*EXO, "next"], root, {"EXO_ACTOR": f"agent:bench{i}"}) for i in range(runs)]
    return {
        "tickets": count,
        "ticket_list_cold_s": round(cold, 3),
        "ticket_list_s": round(listing, 3),
        "next_s": round(statistics.median(nexts), 3),
        "next_max_s": round(max(nexts), 3),
    }


def bench_drift(base: Path, files: int, changed: int) -> dict[str, float]:
    from exo.stdlib import drift, governance, runtime, sessions, tickets

    root = repo(base, "drift")
    for i in range(files):
        path = root / f"pkg{i % 100}" / f"mod{i}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"value = {i}\n" * 5)
    tickets.create(
        root, "human:bench@exo.invalid", title="wide", scope=["**"], ticket_id="WIDE", max_files=10**6, max_lines=10**8
    )
    git(root, "add", "-A")
    git(root, "commit", "-qm", "bench")
    sessions.start(root, "agent:bench", ticket_id="WIDE")
    for i in range(changed // 2):  # half modified tracked files, half new untracked ones
        (root / f"pkg{i % 100}" / f"mod{i}.py").write_text("changed\n")
        (root / f"pkg{i % 100}" / f"new{i}.py").write_text("new = 1\n")
    session = runtime.current(root)
    assert session is not None
    gov = governance.load_governance(root)
    start = time.perf_counter()
    report = drift.compute(root, session, gov, runtime.fence_of(session), session.budget)
    elapsed = time.perf_counter() - start
    assert len(report.files) == changed, len(report.files)
    return {"repo_files": files, "changed_files": changed, "drift_s": round(elapsed, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--changed", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="exo-bench-"))
    try:
        floor = statistics.median(timed([sys.executable, "-c", "pass"], base) for _ in range(10))
        figures: dict[str, float] = {"python_c_pass_s": round(floor, 4)}
        figures |= bench_tickets(base, args.tickets, args.runs)
        figures |= bench_drift(base, args.files, args.changed)
        _common.report(figures, "budgets: ticket list and next <= 0.5 s (warm), drift <= 1 s")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
