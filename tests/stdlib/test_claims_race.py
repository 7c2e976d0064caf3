"""REL-2: 16 clones, 20 rounds, racing for one ticket through one remote — a bare repository by
path, and once through `git daemon` on loopback so the network path is used: exactly one winner
every round, its epoch one above the last; and every round the holder it took over from tries a
fenced finish of its work (through finish, and as a raw push from its stale read), which is refused
as a whole with main untouched. At the end the last holder's finish lands its work."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import STRESS

pytestmark = pytest.mark.heavy
CLONES = 16
ROUNDS = 20 * STRESS

# One contender with a work commit on top of main. `go TICKET SECONDS`: claim it (its wall and
# monotonic clocks at SECONDS past T0), say "won EPOCH" or the error code. `finish TICKET`: a fenced finish of the work
# with the lease it won on TICKET ("landed" or the code). `late TICKET`: the same push from its own
# last read, past finish's checks ("landed" or "refused"). Until "end".
RACER = """
import subprocess, sys
from datetime import UTC, datetime, timedelta
from exo.kernel import ExoError, acquire_lock
from exo.stdlib.claims import Clock, RemoteLeaseStore, finish_claim
root, name = sys.argv[1], sys.argv[2]
t0, seconds = datetime(2026, 1, 1, tzinfo=UTC), [0]
clock = Clock(lambda: float(seconds[0]), lambda: "race", lambda: t0 + timedelta(seconds=seconds[0]))
store = RemoteLeaseStore(root, "origin", clock=clock)
head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
leases = {}
print("ready", flush=True)
for line in sys.stdin:
    verb, *args = line.split()
    if verb == "end":
        break
    try:
        if verb == "go":
            seconds[0] = int(args[1])
            leases[args[0]] = lease = acquire_lock(root, args[0], "agent:" + name, 600, now=clock.wall(), store=store)
            print("won", lease.epoch, flush=True)
        elif verb == "finish":
            finish_claim(root, store, leases[args[0]], head)
            print("landed", flush=True)
        else:
            lease = leases[args[0]]
            with store.carrying(store.landing(head)):
                swapped = store.swap(lease.ticket_id, lease, lease.model_copy(update={"state": "released"}))
            print("landed" if swapped else "refused", flush=True)
    except ExoError as exc:
        print(exc.code, flush=True)
"""


@pytest.fixture(params=["path", "git-daemon"])
def remote_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    if request.param == "path":
        yield str(bare)
        return
    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--listen=127.0.0.1", f"--port={port}", "--reuseaddr", "--export-all",
         "--enable=receive-pack", f"--base-path={tmp_path}", str(tmp_path)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"git://127.0.0.1:{port}/remote.git"
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["git", "ls-remote", url], capture_output=True).returncode != 0:
            assert daemon.poll() is None and time.monotonic() < deadline, "git daemon did not start"
            time.sleep(0.1)
        yield url
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_rel2_one_winner_every_round_and_stale_finishes_land_nothing(tmp_path: Path, remote_url: str) -> None:
    seed = _clone(tmp_path / "seed", remote_url)
    _commit(seed, "base")
    subprocess.run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], cwd=seed, check=True)
    base = _main(seed)
    racers = []
    for i in range(CLONES):
        root = _clone(tmp_path / f"m{i}", remote_url)
        subprocess.run(["git", "fetch", "-q", "origin", "main"], cwd=root, check=True)
        subprocess.run(["git", "checkout", "-q", "-b", "main", "FETCH_HEAD"], cwd=root, check=True)
        _commit(root, f"work of m{i}")
        racers.append(
            subprocess.Popen(
                [sys.executable, "-c", RACER, str(root), f"r{i}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for racer in racers:
            assert racer.stdout and racer.stdout.readline() == "ready\n"
        holder = None  # the racer holding RACE
        for round_ in range(ROUNDS):
            ticket = "RACE" if round_ % 2 else f"R{round_}"  # fresh tickets, and one taken over again and again
            # The holder of RACE sits its next round out, so what it last read is its own stale win.
            racing = [racer for racer in racers if ticket != "RACE" or racer is not holder]
            said = [_say(racer, f"go {ticket} {round_ * 1000}") for racer in racing]  # the last lease lapsed
            winners = [s for s in said if s.startswith("won")]
            others = [s for s in said if s != "LOCK_HELD"]
            assert len(winners) == 1 and said.count("LOCK_HELD") == len(racing) - 1, (round_, others)
            if ticket != "RACE":
                continue
            assert winners == [f"won {round_ // 2 + 1}"], (round_, winners)
            stale, holder = holder, racing[said.index(winners[0])]
            if stale is not None:
                assert _say(stale, "late RACE") == "refused", round_  # the server refused claim and branch
                assert _say(stale, "finish RACE") == "LOCK_LOST", round_
                assert _main(seed) == base, round_  # main untouched
        assert holder is not None and _say(holder, "finish RACE") == "landed"
        assert _main(seed) != base  # the live holder's work landed
    finally:
        for racer in racers:
            if racer.stdin:
                racer.stdin.write("end\n")
            racer.communicate(timeout=60)


def _say(racer: subprocess.Popen[str], line: str) -> str:
    assert racer.stdin and racer.stdout
    racer.stdin.write(line + "\n")
    racer.stdin.flush()
    return racer.stdout.readline().strip()


def _clone(root: Path, remote_url: str) -> Path:
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(["git", "remote", "add", "origin", remote_url], cwd=root, check=True)
    for key, value in (("user.email", "racer@example.com"), ("user.name", "racer")):
        subprocess.run(["git", "config", key, value], cwd=root, check=True)
    return root


def _commit(root: Path, message: str) -> None:
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=root, check=True)


def _main(root: Path) -> str:
    """main on the remote, as `ls-remote` tells it."""
    out = subprocess.run(["git", "ls-remote", "origin", "refs/heads/main"], cwd=root, capture_output=True, text=True)
    return out.stdout.split()[0]
