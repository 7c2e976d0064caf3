"""The lowest versions pyproject.toml allows actually work: a fresh virtual environment with every
direct dependency, and the build backend, pinned to its lower bound (`PIP_CONSTRAINT` reaches the
isolated build environment too); then the wheel passes the index's metadata check, and the CLI,
the agent hook, the git hooks and the MCP server run in a real repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.version import Version

pytestmark = pytest.mark.heavy

PROJECT = Path(__file__).parents[1]


def lower_bounds() -> dict[str, str]:
    """name -> lowest allowed version, for every requirement that applies here (build backend too)."""
    meta = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    out = {}
    for spec in [*meta["project"]["dependencies"], *meta["build-system"]["requires"]]:
        req = Requirement(spec)
        if req.marker is not None and not Marker(str(req.marker)).evaluate():
            continue
        lows = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        assert lows, f"{spec} has no lower bound"
        out[req.name] = lows[0]
    return out


def test_every_dependency_has_a_lower_bound() -> None:
    assert {"pydantic", "typer", "PyYAML", "pathspec", "mcp", "anyio", "hatchling"} <= set(lower_bounds())


def test_the_lowest_allowed_versions_work(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_ = env_dir / "bin"
    constraints = tmp_path / "constraints.txt"
    pins = lower_bounds()
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()))
    env = {**os.environ, "PIP_CONSTRAINT": str(constraints), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    dist = tmp_path / "dist"
    subprocess.run(
        [bin_ / "pip", "wheel", "-q", "--no-deps", "-w", dist, PROJECT], env=env, check=True, capture_output=True
    )
    [wheel] = dist.glob("*.whl")
    done = subprocess.run([bin_ / "pip", "install", "-q", wheel], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    frozen = subprocess.run([bin_ / "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    installed = dict(line.lower().split("==", 1) for line in frozen.splitlines() if "==" in line)
    for name, version in pins.items():
        if name != "hatchling":
            assert Version(installed[name.lower()]) == Version(version), (name, frozen)

    checker = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", wheel], capture_output=True, text=True
    )
    assert checker.returncode == 0, checker.stdout + checker.stderr

    repo = tmp_path / "repo"
    repo.mkdir()
    run_env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}

    def run(*argv: str, stdin: str | None = None, code: int = 0) -> str:
        done = subprocess.run(argv, cwd=repo, env=run_env, input=stdin, capture_output=True, text=True)
        assert done.returncode == code, (argv, done.stdout, done.stderr)
        return done.stdout

    run("git", "init", "-q", "-b", "main")
    (repo / "README.md").write_text("x\n")
    run("exo", "--version")
    run("exo", "install")
    run("exo", "ticket", "create", "Build", "--scope", "src/**", "--id", "T1")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "govern")
    run("exo", "next", "--actor", "agent:low")
    run("exo", "session-start", "--actor", "agent:low")
    payload = {"cwd": str(repo), "tool_name": "Write", "tool_input": {"file_path": str(repo / "docs/x.md")}}
    denied = json.loads(run("exo", "hook", "claude", "pre-tool-use", stdin=json.dumps(payload), code=2))
    assert denied["hookSpecificOutput"]["permissionDecision"] == "deny"
    (repo / "docs").mkdir()
    (repo / "docs/x.md").write_text("x\n")
    run("git", "add", "docs/x.md")
    run("git", "commit", "-qm", "outside", code=1)  # the pre-commit hook refuses it
    run("exo", "ticket", "list", "--json")
    assert run("exo", "--priority", "0", code=2) == ""  # a usage error in exo's format
    request = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    # Like a real client, stdin stays open until the answer is in: at end of input the server
    # stops, and a request still in flight then is not answered.
    with subprocess.Popen(
        ["exo-mcp"], cwd=repo, env=run_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdin and server.stdout
        server.stdin.write("".join(json.dumps(r) + "\n" for r in request))
        server.stdin.flush()
        answers = (json.loads(line) for line in server.stdout)
        listing = next(a for a in answers if a.get("id") == 2)
        server.stdin.close()
        assert server.wait(timeout=60) == 0
    assert len(listing["result"]["tools"]) == 12

    # The unit suites that lean hardest on the dependencies, on these versions.
    subprocess.run([bin_ / "pip", "install", "-q", "pytest>=8", "hypothesis>=6.100"], check=True, capture_output=True)
    suites = ["tests/kernel", "tests/mcp_server/test_tools.py", "tests/stdlib/test_agent_hooks.py", "tests/cli"]
    done = subprocess.run(
        [bin_ / "python", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not heavy", *suites],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:]
