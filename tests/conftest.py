"""Shared fixtures: an isolated HOME and git identity, real repositories, and a way to run `exo`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import StdioServerParameters

from exo.stdlib.closeout import Refusal, Refused
from exo.stdlib.scaffold import init_repo

# Heavy tests scale with EXO_STRESS (1 = the CI default).
STRESS = max(1, int(os.environ.get("EXO_STRESS", "1")))


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    from exo.stdlib.identity import MARKERS

    # Tests run as a human at a terminal, even when a harness runs the test suite.
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "EXO_ACTOR", "EXO_DEBUG", *(m[0] for m in MARKERS)):
        monkeypatch.delenv(var, raising=False)
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test User")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
        monkeypatch.setenv(f"GIT_{role}_DATE", "2026-01-01T00:00:00Z")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh, real git repository with one commit."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "Test User")
    (root / "README.md").write_text("hello\n")
    git(root, "add", "README.md")
    git(root, "commit", "-qm", "initial")
    return root


@pytest.fixture
def exo_repo(git_repo: Path) -> Path:
    """`git_repo` after `exo init`."""
    init_repo(git_repo)
    return git_repo


@pytest.fixture
def governed(exo_repo: Path) -> Path:
    """`exo_repo` with .exo committed and two tickets: T1 (src/**) and T2 (docs/**)."""
    from exo.stdlib import tickets

    tickets.create(exo_repo, "human:test@example.com", title="Build the app", scope=["src/**"], ticket_id="T1")
    tickets.create(exo_repo, "human:test@example.com", title="Write docs", scope=["docs/**"], ticket_id="T2")
    git(exo_repo, "add", "-A")
    git(exo_repo, "commit", "-qm", "govern")
    return exo_repo


@dataclass
class Run:
    code: int
    out: str
    err: str


def exo(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None) -> Run:
    """Run the real `exo` console entry point in a subprocess."""
    done = subprocess.run(
        [sys.executable, "-c", "from exo.cli import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def refusal(close: Callable[[], object], code: str = "DRIFT") -> Refusal:
    """The evidence of a finish or handoff that must be refused with `code`."""
    with pytest.raises(Refused) as refused:
        close()
    assert refused.value.code == code, refused.value.message
    return refused.value.refusal


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (except git objects, lock files and caches), for "nothing changed" assertions."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith((".git/objects", ".git/exo/locks", ".git/exo/cache")):
            out[rel] = path.read_bytes()
    return out


# The repository the suite runs from is governed by its own hooks: a test (or a tool a test installs)
# that writes into its `.git/hooks` or `.git/config` fails the run, however the tests themselves went.
PROJECT_GIT = Path(__file__).parents[1] / ".git"
PROJECT_STATE = pytest.StashKey[dict[str, bytes]]()


def project_git_state() -> dict[str, bytes]:
    if not PROJECT_GIT.is_dir():
        return {}
    hooks = PROJECT_GIT / "hooks"
    files = [PROJECT_GIT / "config", *(sorted(hooks.iterdir()) if hooks.is_dir() else [])]
    return {p.relative_to(PROJECT_GIT).as_posix(): p.read_bytes() for p in files if p.is_file()}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.stash[PROJECT_STATE] = project_git_state()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before, after = session.stash.get(PROJECT_STATE, {}), project_git_state()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        out = session.config.get_terminal_writer()
        out.line()
        out.line(f"the test run changed this repository's own .git: {', '.join(changed)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def ssh_agent(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A running ssh-agent holding the human's signing key: (its socket, the public key file)."""
    key = tmp_path / "human_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "human", "-f", key], check=True)
    sock = tmp_path / "agent" / "agent.sock"
    sock.parent.mkdir()
    daemon = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert daemon.poll() is None and time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True, capture_output=True)
        key.unlink()  # from now on only the agent holds the private half
        yield str(sock), key.with_suffix(".pub")
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def mcp_stdio(root: Path, actor: str) -> StdioServerParameters:
    """exo-mcp as a harness starts it: a subprocess over stdio in `root`, acting for `actor`."""
    server = str(Path(sys.executable).parent / "exo-mcp")
    return StdioServerParameters(command=server, args=[], cwd=str(root), env={**os.environ, "EXO_ACTOR": actor})
