"""Doctor figures (SPEC §10): `exo doctor` over a 5,000-commit governed history, in full and with
`--range` over the last 20 commits, and how the full run grows with the number of commits.

The history is built with `git fast-import`: 1,000 sessions, each three work commits (agent
trailers), a closeout adding its record, memento and sealed audit stream (real ones: the kernel
writes the streams), and a human commit. Every commit is judged by content, so doctor does all
of its work; the history is healthy, and the script checks that it says so.

Usage: .venv/bin/python bench/doctor.py [--sessions N] [--runs N]
Budgets: --range over 20 commits <= 0.5 s; full doctor over 5,000 commits <= 5 s, linear in commits.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common

EXO = str(Path(sys.executable).parent / "exo")
AGENT, HUMAN = "agent:bench", "human:b@exo.invalid"


def git(cwd: Path, *args: str, data: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, check=True)
    return done.stdout.decode().strip()


def adopted(base: Path) -> Path:
    from exo.stdlib import scaffold, tickets

    root = base / "repo"
    root.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "b@exo.invalid"], ["config", "user.name", "b"]):
        git(root, *args)
    (root / "README.md").write_text("bench\n")
    git(root, "add", "README.md")
    git(root, "commit", "-qm", "before exo")
    scaffold.init_repo(root)
    tickets.create(root, HUMAN, title="bench", scope=["src/**"], ticket_id="T1")
    git(root, "add", "-A")
    git(root, "commit", "-qm", f"adopt exo\n\nExo-Actor: {HUMAN}")
    return root


def session(
    scratch: Path, number: int, base_commit: str, at: datetime
) -> tuple[list[dict[str, bytes]], dict[str, bytes]]:
    """Three work commits' files and the closeout's files of one session, records made by exo's own code."""
    from exo.kernel import Anchor, Fence, append_audit, seal_audit
    from exo.stdlib import records, runtime
    from exo.stdlib.drift import DriftReport, Product, Version
    from exo.stdlib.history import blob_id

    sid = at.strftime("%Y%m%dT%H%M%SZ-") + f"{number:020x}"
    work = [{f"src/s{number}/f{k}.py": f"value = {number * 10 + k}\n".encode()} for k in range(3)]
    fence = Fence.from_globs(["src/**"], [], records.own_paths(sid)).to_dict()
    pin = runtime.fence_sha256(fence)
    started = {"ticket_id": "T1", "actor": AGENT, "base_commit": base_commit, "fence_sha256": pin}
    append_audit(scratch, sid, "session.started", started, now=at)
    append_audit(scratch, sid, "session.finished", {"files": 3}, now=at)
    seq, head = seal_audit(scratch, sid, now=at)
    products = [
        Product(path=path, versions=[Version(mode=None, blob=None), Version(mode="100644", blob=blob_id(data))])
        for files in work
        for path, data in files.items()
    ]
    budget = runtime.Budget(max_files=50, max_lines=2000)
    drift = DriftReport(
        ok=True, base_commit=base_commit, head_commit=base_commit, files=[p.path for p in products],
        ignored_written=[], lines_added=3, lines_removed=0, budget=budget, violations=[], score=0.0,
    )  # fmt: skip
    record = records.SessionRecord(
        sid=sid, ticket_id="T1", actor=AGENT, outcome="finished", task="", started_at=at, ended_at=at,
        base_commit=base_commit, scope_allow=["src/**"], scope_deny=[], fence=fence, fence_sha256=pin,
        ticket_sha256="0" * 64, governance_sha256="0" * 64, lease_epoch=number + 1, drift=drift, checks=[],
        summary=f"session {number}", follow_ups=[], status_set=None, audit=Anchor(stream=sid, seq=seq, h=head),
        products=products,
    )  # fmt: skip
    closeout = {
        f"{records.SESSIONS}/{sid}.json": record.model_dump_json(indent=2).encode() + b"\n",
        f"{records.MEMENTOS}/{sid}.md": records.memento(record).encode(),
        f".exo/audit/{sid}.jsonl": (scratch / f".exo/audit/{sid}.jsonl").read_bytes(),
    }
    return work, closeout, sid  # type: ignore[return-value]


def history(root: Path, sessions: int) -> None:
    """Append 5 commits per session to main with one `git fast-import`."""
    scratch = root.parent / "scratch"
    scratch.mkdir()
    git(scratch, "init", "-q")
    base_commit = git(root, "rev-parse", "HEAD")
    stream = bytearray()
    when = 1_800_000_000

    def commit(message: str, files: dict[str, bytes], first: bool) -> None:
        nonlocal when
        when += 1
        stream.extend(b"commit refs/heads/main\n")
        stream.extend(f"committer b <b@exo.invalid> {when} +0000\n".encode())
        body = message.encode()
        stream.extend(b"data %d\n%s\n" % (len(body), body))
        if first:
            stream.extend(f"from {base_commit}\n".encode())
        for path, data in files.items():
            stream.extend(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")

    t0 = datetime(2027, 1, 1, tzinfo=UTC)
    for number in range(sessions):
        work, closeout, sid = session(scratch, number, base_commit, t0 + timedelta(minutes=number))  # type: ignore[misc]
        stamp = f"Exo-Actor: {AGENT}\nExo-Session: {sid}\nExo-Ticket: T1"
        for k, files in enumerate(work):
            commit(f"work {number}.{k}\n\n{stamp}", files, first=number == 0 and k == 0)
        commit(f"exo: finish session on T1\n\n{stamp}", closeout, first=False)
        commit(f"human {number}\n\nExo-Actor: {HUMAN}", {f"notes/n{number}.md": b"note\n"}, first=False)
    git(root, "fast-import", "--quiet", data=bytes(stream))
    git(root, "reset", "-q", "--hard", "main")


def timed(argv: list[str], cwd: Path, runs: int) -> tuple[float, dict[str, object]]:
    times, report = [], {}
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        report = json.loads(done.stdout)
        if done.returncode != 0:
            raise SystemExit(f"{argv} found problems: {report['problems'][:3]}")
    return statistics.median(times), report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000, help="sessions (5 commits each)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="exo-bench-doctor-"))
    try:
        root = adopted(base)
        started = time.perf_counter()
        history(root, args.sessions)
        built = time.perf_counter() - started
        floor = statistics.median(timed_plain([sys.executable, "-c", "pass"], base) for _ in range(10))
        commits = 5 * args.sessions
        full, report = timed([EXO, "doctor", "--json"], root, args.runs)
        assert report["commits"] == commits, report["commits"]
        ranged, _ = timed([EXO, "doctor", "--json", "--range", "HEAD~20..HEAD"], root, args.runs)
        figures: dict[str, object] = {
            "python_c_pass_s": round(floor, 4),
            "history_built_s": round(built, 1),
            "commits": commits,
            "records": report["records"],
            f"doctor_full_{commits}_s": round(full, 3),
            "doctor_range_20_s": round(ranged, 3),
            "doctor_range_20_x_floor": round(ranged / floor, 1),
        }
        for share in (5, 2):  # the same history cut short: doctor over its first N commits
            n = commits // share
            head = git(root, "rev-list", "--reverse", "main").split()[2 + n - 1]
            clone = base / f"cut-{n}"
            git(base, "clone", "-q", "--no-local", "--branch", "main", str(root), str(clone))
            git(clone, "reset", "-q", "--hard", head)
            seconds, _ = timed([EXO, "doctor", "--json"], clone, args.runs)
            figures[f"doctor_full_{n}_s"] = round(seconds, 3)
        figures["doctor_full_ms_per_commit"] = round(1000 * full / commits, 3)
        _common.report(
            figures,
            "budgets: --range over 20 commits <= 0.5 s; full doctor over 5,000 commits <= 5 s, linear in commits",
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def timed_plain(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
