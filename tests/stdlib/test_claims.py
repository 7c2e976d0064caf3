"""Claims on the git remote: the lease contract holds for the local and the remote store alike;
across clones of one remote, one holder at a time, epochs that only grow, stale holders refused."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exo.kernel import ExoError, LeaseStore, LocalLeaseStore, acquire_lock, inspect_lock, release_lock, renew_lock
from exo.kernel.state import State
from exo.stdlib.claims import CLAIMS, MACHINE, Clock, RemoteLeaseStore
from tests.conftest import exo, git

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Machine = Callable[[], tuple[Path, LeaseStore]]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def wall_clock_only() -> Clock:
    """The clocks of a machine whose own watch never holds a takeover back (every tip looks watched
    for ages): expiry falls to the wall clock, which these tests move by hand with `now=`. The
    watch itself is tested below with a clock of its own."""
    ticks = itertools.count(0, 10**9)
    return Clock(lambda: float(next(ticks)), lambda: "wall-clock-only", lambda: datetime.max.replace(tzinfo=UTC))


class Stopwatch:
    """A monotonic clock the test advances by hand (`.t`), beside the real wall clock."""

    def __init__(self) -> None:
        self.t = 0.0
        self.boot = "boot-1"

    def clock(self) -> Clock:
        return Clock(lambda: self.t, lambda: self.boot, MACHINE.wall)


def code_of(call: Callable[[], object]) -> str:
    with pytest.raises(ExoError) as caught:
        call()
    return caught.value.code


@pytest.fixture
def git_remote(tmp_path: Path) -> Path:
    """A bare repository every clone shares, as a forge's would be."""
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    return bare


def machine(base: Path, name: str, remote: Path) -> Path:
    """A clone on its own machine: its own git directory, the shared remote as `origin`."""
    root = base / name
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    git(root, "remote", "add", "origin", str(remote))
    return root


@pytest.fixture(params=["local", "remote"])
def machines(request: pytest.FixtureRequest, tmp_path: Path, git_remote: Path) -> Machine:
    """Each call is a contender: for the local store, one clone's worktrees (all it can share); for
    the remote store, a clone of its own."""
    made: list[Path] = []

    def contender() -> tuple[Path, LeaseStore]:
        if request.param == "local":
            root = made[0] if made else machine(tmp_path, "only", git_remote)
            made.append(root)
            return root, LocalLeaseStore(root)
        root = machine(tmp_path, f"m{len(made)}", git_remote)
        made.append(root)
        return root, RemoteLeaseStore(root, "origin", clock=wall_clock_only())

    return contender


def test_one_live_holder_and_epochs_that_only_grow(machines: Machine) -> None:
    (a, sa), (b, sb) = machines(), machines()
    first = acquire_lock(a, "T1", "agent:a", 60, now=at(0), store=sa)
    assert (first.epoch, first.holder, first.state) == (1, "agent:a", "held")
    assert code_of(lambda: acquire_lock(b, "T1", "agent:b", 60, now=at(30), store=sb)) == "LOCK_HELD"
    assert release_lock(a, first, store=sa).state == "released"
    assert release_lock(a, first, store=sa).state == "released"  # idempotent for its holder
    second = acquire_lock(b, "T1", "agent:b", 60, now=at(31), store=sb)
    assert second.epoch == 2
    assert code_of(lambda: renew_lock(a, first, now=at(32), store=sa)) == "LOCK_LOST"
    assert code_of(lambda: release_lock(a, first, store=sa)) == "LOCK_LOST"
    assert inspect_lock(a, "T1", store=sa) == second == inspect_lock(b, "T1", store=sb)


def test_renew_extends_and_an_expired_lease_is_taken_over(machines: Machine) -> None:
    (a, sa), (b, sb) = machines(), machines()
    lease = acquire_lock(a, "T1", "agent:a", 60, now=at(0), store=sa)
    renewed = renew_lock(a, lease, now=at(50), store=sa)
    assert renewed.expires_at == T0 + timedelta(seconds=110) and renewed.renewals == 1 and renewed.epoch == 1
    taken = acquire_lock(b, "T1", "agent:b", 60, now=at(111), store=sb)
    assert (taken.epoch, taken.holder) == (2, "agent:b")
    assert code_of(lambda: renew_lock(a, renewed, now=at(112), store=sa)) == "LOCK_LOST"


def test_the_remote_keeps_one_linear_chain_per_ticket(tmp_path: Path, git_remote: Path) -> None:
    root = machine(tmp_path, "m", git_remote)
    store = RemoteLeaseStore(root, "origin")
    lease = acquire_lock(root, "T1", "agent:a", 60, now=at(0), store=store)
    lease = renew_lock(root, lease, now=at(10), store=store)
    release_lock(root, lease, store=store)
    parents = [line[1:].split() for line in git(git_remote, "log", "--format=x%P", CLAIMS + "T1").splitlines()]
    assert [len(p) for p in parents] == [1, 1, 0]  # grant, renew, release: one chain, first commit a root
    shown = json.loads(git(git_remote, "show", f"{CLAIMS}T1:lease.json"))
    assert (shown["holder"], shown["epoch"], shown["state"], shown["renewals"]) == ("agent:a", 1, "released", 1)


RACER = """
import sys
from exo.kernel import ExoError, acquire_lock
from exo.stdlib.claims import RemoteLeaseStore
root = sys.argv[1]
store = RemoteLeaseStore(root, "origin")
print("ready", flush=True)
sys.stdin.readline()  # start together
try:
    lease = acquire_lock(root, "T1", "agent:" + sys.argv[2], 600, store=store)
    print("won", lease.epoch)
except ExoError as exc:
    print(exc.code)
"""


def test_clones_racing_for_one_ticket_have_exactly_one_winner(tmp_path: Path, git_remote: Path) -> None:
    count = int(os.environ.get("EXO_RACERS", "8"))
    roots = [machine(tmp_path, f"m{i}", git_remote) for i in range(count)]
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(root), f"r{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, root in enumerate(roots)
    ]
    for racer in racers:
        assert racer.stdout and racer.stdout.readline() == "ready\n"
    for racer in racers:  # every racer is waiting: let them all go at once
        assert racer.stdin
        racer.stdin.write("go\n")
        racer.stdin.flush()
    outcomes = [racer.communicate(timeout=300) for racer in racers]
    said = sorted(out.strip() for out, _ in outcomes)
    assert said.count("won 1") == 1 and said.count("LOCK_HELD") == count - 1, (said, [err for _, err in outcomes])


def test_an_unreachable_remote_is_a_coded_error_never_the_local_store(tmp_path: Path) -> None:
    root = machine(tmp_path, "m", tmp_path / "gone.git")
    store = RemoteLeaseStore(root, "origin")
    assert code_of(lambda: acquire_lock(root, "T1", "agent:a", 60, store=store)) == "REMOTE_UNREACHABLE"
    assert code_of(lambda: inspect_lock(root, "T1", store=store)) == "REMOTE_UNREACHABLE"
    assert LocalLeaseStore(root).read("T1") is None


@pytest.mark.parametrize("name", ["-x", "--upload-pack=touch /tmp/exo-pwned", "a b", "", "missing"])
def test_a_remote_name_that_is_no_configured_remote_is_refused_before_git_runs(tmp_path: Path, name: str) -> None:
    root = machine(tmp_path, "m", tmp_path / "remote.git")
    assert code_of(lambda: RemoteLeaseStore(root, name)) == "INVALID_ARGUMENT"


def test_a_corrupt_claim_is_reported_not_overwritten(tmp_path: Path, git_remote: Path) -> None:
    root = machine(tmp_path, "m", git_remote)

    def fed(data: str, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, input=data, check=True, capture_output=True, text=True)
        return done.stdout.strip()

    blob = fed("not a lease\n", "hash-object", "-w", "--stdin")
    tree = fed(f"100644 blob {blob}\tlease.json\n", "mktree")
    commit = git(root, "commit-tree", tree, "-m", "junk")
    git(root, "push", "-q", "origin", f"{commit}:{CLAIMS}T1")
    store = RemoteLeaseStore(root, "origin")
    assert code_of(lambda: acquire_lock(root, "T1", "agent:a", 60, store=store)) == "LOCK_CORRUPT"
    assert git(git_remote, "rev-parse", CLAIMS + "T1") == commit
    junk = fed(f"100644 blob {blob}\tT9.json\n", "mktree")  # a retired claim that is not a lease
    git(root, "push", "-q", "origin", f"{git(root, 'commit-tree', junk, '-m', 'junk')}:refs/exo/retired")
    assert code_of(lambda: acquire_lock(root, "T9", "agent:a", 60, store=store)) == "LOCK_CORRUPT"
    assert git(git_remote, "for-each-ref", "--format=%(refname)", CLAIMS + "T9") == ""


def test_a_swap_from_a_stale_read_is_refused_however_late_it_is_pushed(tmp_path: Path, git_remote: Path) -> None:
    """The compare is against the tip this machine read, not the one git push sees when it runs:
    another machine's claim in between makes the swap fail, never overwrites it."""
    a, b = machine(tmp_path, "a", git_remote), machine(tmp_path, "b", git_remote)
    sa, sb = RemoteLeaseStore(a, "origin", clock=wall_clock_only()), RemoteLeaseStore(b, "origin")
    assert sa.read("T1") is None
    theirs = acquire_lock(b, "T1", "agent:b", 60, now=at(0), store=sb)
    mine = theirs.model_copy(update={"holder": "agent:a", "lease_id": "a" * 16})
    assert sa.swap("T1", None, mine) is False  # it read "no claim"; there is one now
    assert inspect_lock(b, "T1", store=sb) == theirs
    seen = sa.read("T1")
    renewed = renew_lock(b, theirs, now=at(10), store=sb)
    assert seen is not None and sa.swap("T1", seen, mine) is False  # it read the grant; a renewal since
    assert inspect_lock(a, "T1", store=sa) == renewed


def test_a_contender_whose_wall_clock_runs_ahead_waits_a_whole_lease_on_its_own_clock(
    tmp_path: Path, git_remote: Path
) -> None:
    """The holder's clock is two hours behind: by the contender's wall clock the claim expired long
    ago. The contender takes it over only once it has itself seen the tip unchanged for the lease's
    60 s; a renewal in between (a new tip) starts its watch again."""
    a, b = machine(tmp_path, "a", git_remote), machine(tmp_path, "b", git_remote)
    watch = Stopwatch()
    sa, sb = RemoteLeaseStore(a, "origin"), RemoteLeaseStore(b, "origin", clock=watch.clock())
    behind = datetime.now(UTC) - timedelta(hours=2)
    lease = acquire_lock(a, "T1", "agent:a", 60, now=behind, store=sa)
    refused = code_of(lambda: acquire_lock(b, "T1", "agent:b", 60, store=sb))
    assert refused == "LOCK_HELD"
    watch.t = 59.0
    assert code_of(lambda: acquire_lock(b, "T1", "agent:b", 60, store=sb)) == "LOCK_HELD"
    lease = renew_lock(a, lease, now=behind + timedelta(seconds=50), store=sa)  # a new tip
    watch.t = 100.0  # a whole lease since the first tip, but not since the renewal
    assert code_of(lambda: acquire_lock(b, "T1", "agent:b", 60, store=sb)) == "LOCK_HELD"
    watch.t = 160.0
    taken = acquire_lock(b, "T1", "agent:b", 60, store=sb)
    assert (taken.holder, taken.epoch) == ("agent:b", 2)
    assert code_of(lambda: renew_lock(a, lease, now=behind + timedelta(seconds=60), store=sa)) == "LOCK_LOST"


def test_a_holder_whose_wall_clock_runs_ahead_holds_no_longer_than_a_lease(tmp_path: Path, git_remote: Path) -> None:
    """The holder's clock is a year ahead, so the expiry it wrote is a year away. A contender that
    has watched the tip for a whole lease reads it as expired and takes it over."""
    a, b = machine(tmp_path, "a", git_remote), machine(tmp_path, "b", git_remote)
    watch = Stopwatch()
    sa, sb = RemoteLeaseStore(a, "origin"), RemoteLeaseStore(b, "origin", clock=watch.clock())
    acquire_lock(a, "T1", "agent:a", 60, now=datetime.now(UTC) + timedelta(days=365), store=sa)
    seen = sb.read("T1")
    assert seen is not None and seen.live()
    watch.t = 61.0
    judged = sb.read("T1")
    assert judged is not None and not judged.live()  # expired here, whatever the holder's clock wrote
    assert acquire_lock(b, "T1", "agent:b", 60, store=sb).epoch == 2


def test_the_watch_is_kept_across_processes_and_restarts_after_a_reboot(tmp_path: Path, git_remote: Path) -> None:
    a, b = machine(tmp_path, "a", git_remote), machine(tmp_path, "b", git_remote)
    watch = Stopwatch()
    acquire_lock(
        a, "T1", "agent:a", 60, now=datetime.now(UTC) - timedelta(hours=1), store=RemoteLeaseStore(a, "origin")
    )
    assert RemoteLeaseStore(b, "origin", clock=watch.clock()).read("T1") is not None  # first seen at t=0
    watch.t, watch.boot = 61.0, "boot-2"  # the machine rebooted: its monotonic clock says nothing of before
    store = RemoteLeaseStore(b, "origin", clock=watch.clock())
    assert code_of(lambda: acquire_lock(b, "T1", "agent:b", 60, store=store)) == "LOCK_HELD"
    watch.t = 122.0
    later = RemoteLeaseStore(b, "origin", clock=watch.clock())  # another process of the same clone
    assert acquire_lock(b, "T1", "agent:b", 60, store=later).epoch == 2


def test_with_the_machines_own_clocks_a_lapsed_claim_is_taken_after_a_lease_of_watching(
    tmp_path: Path, git_remote: Path
) -> None:
    a, b = machine(tmp_path, "a", git_remote), machine(tmp_path, "b", git_remote)
    lapsed = datetime.now(UTC) - timedelta(seconds=10)
    acquire_lock(a, "T1", "agent:a", 1, now=lapsed, store=RemoteLeaseStore(a, "origin"))
    sb = RemoteLeaseStore(b, "origin")
    assert code_of(lambda: acquire_lock(b, "T1", "agent:b", 1, store=sb)) == "LOCK_HELD"
    time.sleep(1.1)
    assert acquire_lock(b, "T1", "agent:b", 1, store=RemoteLeaseStore(b, "origin")).epoch == 2


def test_the_design_avoided_a_claim_file_pulled_and_rebased_lets_everyone_win(tmp_path: Path, git_remote: Path) -> None:
    """The negative control (SPEC §8: never implement claims this way). Each agent checks that no
    claim file exists, commits its own, and on a rejected push pulls with rebase and pushes again:
    the rebase succeeds, so every agent lands its claim and believes it won."""
    seed = machine(tmp_path, "seed", git_remote)
    (seed / "README.md").write_text("x\n")
    git(seed, "add", "README.md")
    git(seed, "commit", "-qm", "start")
    git(seed, "push", "-q", "origin", "main")
    agents = []
    for name in ("a", "b", "c"):
        root = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(git_remote), str(root)], check=True)
        agents.append(root)
    for root in agents:  # all look before any writes: nobody has claimed T1
        assert not list((root / "claims").glob("T1*"))
        (root / "claims").mkdir()
        (root / "claims" / f"T1.{root.name}").write_text(root.name + "\n")
        git(root, "add", "claims")
        git(root, "commit", "-qm", f"claim T1 for {root.name}")
    won = []
    for root in agents:
        if subprocess.run(["git", "push", "-q", "origin", "main"], cwd=root, capture_output=True).returncode != 0:
            git(root, "pull", "-q", "--rebase", "origin", "main")
            git(root, "push", "-q", "origin", "main")
        won.append(root.name)
    assert won == ["a", "b", "c"]  # three winners of one ticket
    git(seed, "pull", "-q", "origin", "main")
    assert sorted(p.name for p in (seed / "claims").iterdir()) == ["T1.a", "T1.b", "T1.c"]


def test_every_clone_lists_every_claim_on_the_remote(tmp_path: Path, git_remote: Path) -> None:
    a, b, c = (machine(tmp_path, name, git_remote) for name in ("a", "b", "c"))
    acquire_lock(a, "T2", "agent:a", 60, store=RemoteLeaseStore(a, "origin"))
    taken = acquire_lock(b, "T1", "agent:b", 60, store=RemoteLeaseStore(b, "origin"))
    release_lock(b, taken, store=RemoteLeaseStore(b, "origin"))
    tip = git(git_remote, "rev-parse", CLAIMS + "T2")
    for junk in ("9lives", "nested/T3"):  # refs no ticket could be named for are left alone
        git(a, "push", "-q", "origin", f"{tip}:{CLAIMS}{junk}")
    listed = RemoteLeaseStore(c, "origin").all()
    expected = [("T1", "agent:b", "released"), ("T2", "agent:a", "held")]
    assert [(x.ticket_id, x.holder, x.state) for x in listed] == expected
    assert RemoteLeaseStore(tmp_path / "a", "origin").all() == listed  # the clone that has them already


def test_two_machines_with_the_remote_store_never_get_the_same_ticket(tmp_path: Path, git_remote: Path) -> None:
    """What two clones of one remote did before: both `exo next` got T1. With `claims: {store:
    remote}` in .exo/config.yaml, the second machine sees the first one's claim and gets T2; the
    first one's session heartbeats and finishes through the remote, and its hooks decide from the
    copy the broker keeps."""
    from exo.stdlib import scaffold, tickets

    seed = machine(tmp_path, "seed", git_remote)
    scaffold.init_repo(seed)
    with (seed / ".exo/config.yaml").open("a") as fh:
        fh.write("claims:\n  store: remote\n  remote: origin\n")
    tickets.create(seed, "human:h@example.com", title="code", scope=["src/**"], ticket_id="T1")
    tickets.create(seed, "human:h@example.com", title="docs", scope=["docs/**"], ticket_id="T2")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "govern")
    git(seed, "push", "-q", "origin", "main")
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        subprocess.run(["git", "clone", "-q", str(git_remote), str(root)], check=True)

    def as_agent(root: Path, name: str, *args: str) -> dict[str, object]:
        done = exo(*args, "--json", cwd=root, env={"EXO_ACTOR": f"agent:{name}"})
        assert done.code == 0, done.err
        return json.loads(done.out)  # type: ignore[no-any-return]

    assert as_agent(a, "a", "next")["ticket"]["id"] == "T1"  # type: ignore[index]
    took = as_agent(b, "b", "next")
    assert took["ticket"]["id"] == "T2"  # type: ignore[index]
    held = RemoteLeaseStore(b, "origin").read("T1")
    assert held is not None and (held.holder, held.epoch, held.state) == ("agent:a", 1, "held")
    shown = as_agent(b, "b", "status")  # machine b sees machine a's claim
    assert shown["claims_store"] == "remote origin"
    assert [(c["ticket_id"], c["holder"], c["epoch"]) for c in shown["claims"]] == [  # type: ignore[union-attr]
        ("T1", "agent:a", 1),
        ("T2", "agent:b", 1),
    ]
    text = exo("status", cwd=b, env={"EXO_ACTOR": "agent:b"}).out
    assert "claims on remote origin: 2 live" in text and "T1: agent:a, epoch 1, until " in text, text

    as_agent(a, "a", "session-start", "--ticket-id", "T1")
    (a / "src").mkdir()
    payload = {"cwd": str(a), "tool_name": "Write", "tool_input": {"file_path": str(a / "src/x.py")}}
    hook = exo("hook", "claude", "pre-tool-use", cwd=a, stdin=json.dumps(payload))
    assert (hook.code, hook.out) == (0, ""), hook.err  # the hook read the broker's copy of the remote lease
    as_agent(a, "a", "session-heartbeat")
    renewed = RemoteLeaseStore(b, "origin").read("T1")
    assert renewed is not None and renewed.renewals == 1
    (a / "src/x.py").write_text("x = 1\n")
    as_agent(a, "a", "session-finish", "--summary", "x")
    released = RemoteLeaseStore(b, "origin").read("T1")
    assert released is not None and released.state == "released"


@pytest.mark.parametrize(
    ("setting", "said"),
    [("claims:\n  store: cloud\n", "claims.store"), ("claims:\n  store: remote\n  remote: -x\n", "claims.remote")],
)
def test_a_claims_setting_exo_cannot_use_is_a_config_error(git_repo: Path, setting: str, said: str) -> None:
    from exo.stdlib import scaffold

    scaffold.init_repo(git_repo)
    with (git_repo / ".exo/config.yaml").open("a") as fh:
        fh.write(setting)
    done = exo("next", cwd=git_repo, env={"EXO_ACTOR": "agent:a"})
    assert done.code == 1 and "error[CONFIG_INVALID]" in done.err and said in done.err, done.err


def test_with_the_remote_store_and_no_network_next_says_so_and_claims_nothing(tmp_path: Path) -> None:
    from exo.stdlib import scaffold, tickets

    root = machine(tmp_path, "m", tmp_path / "unreachable.git")
    scaffold.init_repo(root)
    with (root / ".exo/config.yaml").open("a") as fh:
        fh.write("claims:\n  store: remote\n")
    tickets.create(root, "human:h@example.com", title="code", scope=["src/**"], ticket_id="T1")
    done = exo("next", cwd=root, env={"EXO_ACTOR": "agent:a"})
    assert done.code == 3 and "error[REMOTE_UNREACHABLE]" in done.err and "never fall back" in done.err, done.err
    assert LocalLeaseStore(root).read("T1") is None
    shown = exo("status", cwd=root, env={"EXO_ACTOR": "agent:a"})
    assert shown.code == 0 and "WARNING: the claims remote 'origin' cannot be reached" in shown.out, shown.out


def test_claims_gc_removes_only_released_claims_of_finished_tickets(tmp_path: Path, git_remote: Path) -> None:
    from exo.stdlib import scaffold, tickets

    root = machine(tmp_path, "m", git_remote)
    scaffold.init_repo(root)
    with (root / ".exo/config.yaml").open("a") as fh:
        fh.write("claims:\n  store: remote\n")
    store = RemoteLeaseStore(root, "origin")
    for ticket_id, status, let_go in (("T1", "done", True), ("T2", "todo", True), ("T3", "cancelled", False)):
        tickets.create(root, "human:h@example.com", title=ticket_id, scope=["src/**"], ticket_id=ticket_id)
        lease = acquire_lock(root, ticket_id, "agent:a", 60, store=store)
        if let_go:
            release_lock(root, lease, store=store)
        if status != "todo":
            tickets.update(root, ticket_id, {"status": status}, "human:h@example.com")
    refused = exo("claims", "gc", cwd=root, env={"EXO_ACTOR": "agent:a"})
    assert refused.code == 1 and "NOT_ALLOWED" in refused.err
    done = exo("claims", "gc", "--json", cwd=root)
    assert done.code == 0, done.err
    assert json.loads(done.out) == {"removed": ["T1"], "kept": ["T2", "T3"]}  # a todo ticket's chain, a held claim
    left = git(git_remote, "for-each-ref", "--format=%(refname)", CLAIMS).split()
    assert left == [CLAIMS + "T2", CLAIMS + "T3"]
    retired = json.loads(git(git_remote, "show", "refs/exo/retired:T1.json"))
    assert (retired["ticket_id"], retired["epoch"], retired["state"]) == ("T1", 1, "released")
    # T1 reopened: its next claim goes on from the retired epoch, on any machine, never at 1 again
    other = machine(tmp_path, "other", git_remote)
    again = acquire_lock(other, "T1", "agent:b", 60, store=RemoteLeaseStore(other, "origin"))
    assert again.epoch == 2
    assert json.loads(exo("claims", "gc", "--json", cwd=root).out) == {"removed": [], "kept": ["T1", "T2", "T3"]}
    local = machine(tmp_path, "plain", git_remote)
    scaffold.init_repo(local)
    assert "error[INVALID_ARGUMENT]" in exo("claims", "gc", cwd=local).err


def remote_governed(tmp_path: Path, git_remote: Path, *names: str) -> list[Path]:
    """A governed repository using the remote store, pushed, and a clone of it per machine."""
    from exo.stdlib import scaffold, tickets

    seed = machine(tmp_path, "seed", git_remote)
    scaffold.init_repo(seed)
    with (seed / ".exo/config.yaml").open("a") as fh:
        fh.write("claims:\n  store: remote\n  remote: origin\n")
    tickets.create(seed, "human:h@example.com", title="code", scope=["src/**"], ticket_id="T1")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "govern")
    git(seed, "push", "-q", "origin", "main")
    for name in names:
        subprocess.run(["git", "clone", "-q", str(git_remote), str(tmp_path / name)], check=True)
    return [tmp_path / name for name in names]


def test_a_freeze_on_one_machine_stops_every_machine_until_a_human_lifts_it(tmp_path: Path, git_remote: Path) -> None:
    a, b = remote_governed(tmp_path, git_remote, "a", "b")
    assert exo("freeze", "--reason", "incident 42", cwd=a).code == 0
    stopped = exo("next", cwd=b, env={"EXO_ACTOR": "agent:b"})
    assert stopped.code == 1 and "error[FROZEN]" in stopped.err and "incident 42" in stopped.err, stopped.err
    payload = {"cwd": str(b), "tool_name": "Write", "tool_input": {"file_path": str(b / "src/x.py")}}
    denied = exo("hook", "claude", "pre-tool-use", cwd=b, stdin=json.dumps(payload))
    assert denied.code == 2  # b's hooks read the freeze the broker brought over
    assert "error[FROZEN]" in exo("session-start", "--ticket-id", "T1", cwd=b, env={"EXO_ACTOR": "agent:b"}).err
    assert exo("unfreeze", cwd=a, env={"EXO_ACTOR": "agent:a"}).code == 1  # not an agent's to lift
    assert exo("unfreeze", cwd=a).code == 0  # a human, on the other machine
    assert exo("next", cwd=b, env={"EXO_ACTOR": "agent:b"}).code == 0
    assert not Path(State(b).frozen).exists()  # the copy went with the remote's freeze


def test_a_freeze_reaches_a_running_session_at_its_next_heartbeat(tmp_path: Path, git_remote: Path) -> None:
    a, b = remote_governed(tmp_path, git_remote, "a", "b")
    as_b = {"EXO_ACTOR": "agent:b"}
    assert exo("session-start", "--ticket-id", "T1", cwd=b, env=as_b).code == 0
    payload = json.dumps({"cwd": str(b), "tool_name": "Write", "tool_input": {"file_path": str(b / "src/x.py")}})
    assert exo("hook", "claude", "pre-tool-use", cwd=b, stdin=payload).code == 0
    assert exo("freeze", "--reason", "incident 43", cwd=a).code == 0
    assert exo("hook", "claude", "pre-tool-use", cwd=b, stdin=payload).code == 0  # hooks never ask the remote
    assert exo("session-heartbeat", cwd=b, env=as_b).code == 0  # a broker operation brings the freeze
    denied = exo("hook", "claude", "pre-tool-use", cwd=b, stdin=payload)
    assert denied.code == 2 and "incident 43" in denied.err, denied.err
    shown = json.loads(exo("status", "--json", cwd=b, env=as_b).out)
    assert "incident 43" in (shown["frozen"] or "")


def test_a_freeze_made_offline_stays_until_a_human_lifts_it_here(tmp_path: Path, git_remote: Path) -> None:
    (a,) = remote_governed(tmp_path, git_remote, "a")
    git(a, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    offline = exo("freeze", "--reason", "no network", cwd=a)
    assert offline.code == 3 and "frozen on this machine only" in offline.err, offline.err
    git(a, "remote", "set-url", "origin", str(git_remote))
    still = exo("next", cwd=a, env={"EXO_ACTOR": "agent:a"})  # the remote has no freeze: this one stays
    assert still.code == 1 and "no network" in still.err, still.err
    assert exo("unfreeze", cwd=a).code == 0
    assert exo("next", cwd=a, env={"EXO_ACTOR": "agent:a"}).code == 0
