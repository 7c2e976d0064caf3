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


def run_codex(codex: Path, root: Path, script: list[tuple[str, dict[str, Any]]]) -> tuple[ResponsesStandIn, list[Any]]:
    with ResponsesStandIn(script) as standin:
        # exo's hooks are the project's own: a person approves them once in Codex's review; a
        # non-interactive run vouches for them with this flag. Codex's own sandbox needs helper
        # binaries it refuses to create under a temporary directory, where the test's CODEX_HOME
        # is; what is tested here is exo's hooks (exo's boundary for Codex is `exo run -- codex`).
        argv = [str(codex), "exec", "--json", "--dangerously-bypass-hook-trust", "-s", "danger-full-access", "go"]
        done = subprocess.run(argv, cwd=root, env=codex_env(root, standin.url), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
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


def test_codex_without_exo_on_path_blocks_instead_of_running(codex: Path, project: Path) -> None:
    """A gate that cannot start exits 2 (`|| exit 2`): Codex would let a failing hook through."""
    sessions.start(project, "agent:codex", ticket_id="T1")
    hooks = json.loads((project / ".codex/hooks.json").read_text())
    gate = hooks["hooks"]["PreToolUse"][0]["hooks"][0]
    gate["command"] = gate["command"].replace(str(BIN / "exo"), "/nonexistent/exo")
    (project / ".codex/hooks.json").write_text(json.dumps(hooks))
    standin, _ = run_codex(codex, project, [("exec_command", {"cmd": "mkdir -p src && echo x > src/in.py"})])
    assert not (project / "src/in.py").exists(), standin.result_text(0)
