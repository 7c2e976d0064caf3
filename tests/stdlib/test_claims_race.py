"""REL-2 (the store's half): 16 clones, 20 rounds, racing for one ticket through one remote — a
bare repository by path, and once through `git daemon` on loopback so the network path is used:
exactly one winner every round, its epoch one above the last. (A stale holder's fenced finish is
the other half, with finish pushing work and claim together.)"""

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

# One contender: waits for `go TICKET`, claims it, says "won EPOCH" or the error code; until "end".
RACER = """
import sys
from exo.kernel import ExoError, acquire_lock
from exo.stdlib.claims import RemoteLeaseStore
store = RemoteLeaseStore(sys.argv[1], "origin")
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "end":
        break
    try:
        lease = acquire_lock(sys.argv[1], line.split()[1], "agent:" + sys.argv[2], 600, store=store)
        print("won", lease.epoch, flush=True)
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


def test_rel2_one_winner_every_round(tmp_path: Path, remote_url: str) -> None:
    racers = []
    for i in range(CLONES):
        root = tmp_path / f"m{i}"
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(["git", "remote", "add", "origin", remote_url], cwd=root, check=True)
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
        for round_ in range(ROUNDS):
            ticket = "RACE" if round_ % 2 else f"R{round_}"  # fresh tickets, and one taken again and again
            for racer in racers:
                assert racer.stdin
                racer.stdin.write(f"go {ticket}\n")
                racer.stdin.flush()
            said = sorted(racer.stdout.readline().strip() for racer in racers if racer.stdout)
            winners = [s for s in said if s.startswith("won")]
            others = [s for s in said if s != "LOCK_HELD"]
            assert len(winners) == 1 and said.count("LOCK_HELD") == CLONES - 1, (round_, others)
            if ticket == "RACE":  # let it go so the next round's winner takes it over, one epoch up
                assert winners == [f"won {round_ // 2 + 1}"], (round_, winners)
                _release(tmp_path, remote_url)
    finally:
        for racer in racers:
            if racer.stdin:
                racer.stdin.write("end\n")
            racer.communicate(timeout=60)


def _release(tmp_path: Path, remote_url: str) -> None:
    """A human lets the RACE claim go (as finish would), from a clone of their own."""
    from exo.kernel import release_lock
    from exo.stdlib.claims import RemoteLeaseStore

    root = tmp_path / "releaser"
    if not root.exists():
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(["git", "remote", "add", "origin", remote_url], cwd=root, check=True)
    store = RemoteLeaseStore(root, "origin")
    lease = store.read("RACE")
    assert lease is not None and lease.state == "held"
    release_lock(root, lease, store=store)
