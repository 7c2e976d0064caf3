"""The real Codex CLI (pinned in tests/harness/tools.py) in a repository set up by `exo install`,
its model endpoint a loopback stand-in for the Responses API that replays scripted tool calls:
Codex lists exo-mcp from the project's .codex/config.toml, calls its tools as the configured
agent, and runs exo's hooks from .codex/hooks.json on its shell and apply_patch edits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exo.stdlib import sessions
from tests.conftest import exo, git
from tests.harness import tools
from tests.harness.standin import ResponsesStandIn

pytestmark = pytest.mark.heavy

BIN = Path(sys.executable).parent
CODEX = tools.PINS["@openai/codex"]


@pytest.fixture(scope="module")
def codex() -> Path:
    exe = tools.bin_path("@openai/codex", "codex")
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert version.split()[-1] == CODEX, version
    return exe


@pytest.fixture
def project(governed: Path) -> Path:
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    assert exo("install", "--harness", "codex", cwd=governed, env=env).code == 0
    git(governed, "add", "-A")
    git(governed, "commit", "-qm", "install exo for Codex")
    return governed


def codex_env(root: Path, url: str) -> dict[str, str]:
    """A CODEX_HOME whose only model provider is the loopback stand-in, trusting this project."""
    home = root.parent / "codex-home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        f'model = "stand-in"\nmodel_provider = "loopback"\n\n[model_providers.loopback]\nname = "loopback"\n'
        f'base_url = "{url}/v1"\nwire_api = "responses"\nenv_key = "LOOPBACK_API_KEY"\n\n'
        f'[projects."{root}"]\ntrust_level = "trusted"\n'
    )
    return {
        **os.environ,
        "CODEX_HOME": str(home),
        "LOOPBACK_API_KEY": "loopback",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }


def run_codex(
    codex: Path, root: Path, script: list[tuple[str, dict[str, Any]]], env: dict[str, str] | None = None
) -> tuple[ResponsesStandIn, list[Any]]:
    with ResponsesStandIn(script) as standin:
        # exo's hooks are the project's own: a person approves them once in Codex's review; a
        # non-interactive run vouches for them with this flag. Codex's own sandbox needs helper
        # binaries it refuses to create under a temporary directory, where the test's CODEX_HOME
        # is; what is tested here is exo's hooks (exo's boundary for Codex is `exo run -- codex`).
        argv = [str(codex), "exec", "--json", "--dangerously-bypass-hook-trust", "-s", "danger-full-access", "go"]
        full = codex_env(root, standin.url) | (env or {})
        done = subprocess.run(argv, cwd=root, env=full, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    return standin, [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_codex_lists_exo_mcp_from_the_project(codex: Path, project: Path) -> None:
    env = codex_env(project, "http://127.0.0.1:9")
    done = subprocess.run([str(codex), "mcp", "list", "--json"], cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    [server] = [s for s in json.loads(done.stdout) if s["name"] == "exo"]
    assert server["enabled"] and server["transport"]["command"] == "exo-mcp"
    assert server["transport"]["env"] == {"EXO_ACTOR": "agent:codex"}


def test_codex_calls_exo_and_its_hooks_fence_the_shell_and_patches(codex: Path, project: Path) -> None:
    sessions.start(project, "agent:codex", ticket_id="T1")
    patch = "*** Begin Patch\n*** Add File: docs/patched.md\n+x\n*** End Patch"
    script = [
        ("mcp__exo::ticket_show", {"ticket_id": "T1"}),
        ("exec_command", {"cmd": "echo x > docs/out.md"}),
        ("exec_command", {"cmd": f"apply_patch <<'EOF'\n{patch}\nEOF"}),
        ("exec_command", {"cmd": "mkdir -p src && echo x > src/in.py"}),
        ("mcp__exo::status", {}),
    ]
    standin, events = run_codex(codex, project, script)
    calls = [e["item"] for e in events if e.get("type") == "item.completed" and e["item"]["type"] == "mcp_tool_call"]
    assert [c["tool"] for c in calls] == ["ticket_show", "status"] and all(c["status"] == "completed" for c in calls)
    assert calls[0]["result"]["structured_content"]["id"] == "T1"
    assert calls[1]["result"]["structured_content"]["current"]["actor"] == "agent:codex"  # the server's agent
    for step in (1, 2):
        assert "exo:scope" in standin.result_text(step), standin.result_text(step)
    assert not (project / "docs/out.md").exists() and not (project / "docs/patched.md").exists()
    assert (project / "src/in.py").exists(), standin.result_text(3)
    assert (project / "src/in.py").read_text() == "x\n"


def test_tracked_hook_config_names_no_path_of_this_machine(project: Path) -> None:
    text = (project / ".codex/hooks.json").read_text()
    assert str(BIN) not in text and str(project) not in text
    assert git(project, "config", "exo.command") == str(BIN / "exo")  # this clone's own record


@pytest.mark.parametrize("how", ["no exo at all", "a recorded exo that is gone"])
def test_codex_blocks_when_exo_cannot_run(codex: Path, project: Path, how: str) -> None:
    """Codex lets a failing hook through: the lookup exits 2 when there is no exo, and the gate's
    `|| exit 2` covers an exo that is recorded but cannot start."""
    sessions.start(project, "agent:codex", ticket_id="T1")
    if how == "no exo at all":
        git(project, "config", "--unset", "exo.command")
    else:
        git(project, "config", "exo.command", "/nonexistent/exo")
    only_mcp = project.parent / "only-exo-mcp"  # exo-mcp stays (Codex requires it), exo itself is gone
    only_mcp.mkdir()
    (only_mcp / "exo-mcp").symlink_to(BIN / "exo-mcp")
    kept = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "exo").exists()]
    env = {"PATH": os.pathsep.join([str(only_mcp), *kept])}
    standin, _ = run_codex(codex, project, [("exec_command", {"cmd": "mkdir -p src && echo x > src/in.py"})], env)
    assert not (project / "src/in.py").exists(), standin.result_text(0)
    if how == "no exo at all":
        assert "EXO_NOT_FOUND" in standin.result_text(0), standin.result_text(0)
