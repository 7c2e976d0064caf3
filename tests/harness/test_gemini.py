"""The real Gemini CLI (pinned in tests/harness/tools.py) in a repository set up by `exo install`,
its model endpoint a loopback stand-in for the Gemini API that replays scripted tool calls: Gemini
lists exo-mcp as connected from the project's .gemini/settings.json, calls its tools as the
configured agent, and runs exo's BeforeTool hook on its file and shell tools."""

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
from tests.harness.standin import GeminiStandIn

pytestmark = pytest.mark.heavy

BIN = Path(sys.executable).parent
GEMINI = tools.PINS["@google/gemini-cli"]


@pytest.fixture(scope="module")
def gemini() -> Path:
    exe = tools.bin_path("@google/gemini-cli", "gemini")
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120).stdout.strip()
    assert version == GEMINI, version
    return exe


@pytest.fixture
def project(governed: Path) -> Path:
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    assert exo("install", "--harness", "gemini", cwd=governed, env=env).code == 0
    git(governed, "add", "-A")
    git(governed, "commit", "-qm", "install exo for Gemini CLI")
    return governed


def gemini_env(root: Path, url: str) -> dict[str, str]:
    """A HOME whose Gemini CLI trusts this project and uses an API key, sent to the stand-in."""
    home = Path(os.environ["HOME"])
    (home / ".gemini").mkdir(exist_ok=True)
    (home / ".gemini/trustedFolders.json").write_text(json.dumps({str(root): "TRUST_FOLDER"}))
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}}, "privacy": {"usageStatisticsEnabled": False}}
    (home / ".gemini/settings.json").write_text(json.dumps(settings))
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "GEMINI_API_KEY": "loopback", "GOOGLE_GEMINI_BASE_URL": url, "PATH": path}


def run_gemini(gemini: Path, root: Path, script: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    with GeminiStandIn(script) as standin:
        argv = [str(gemini), "-m", "gemini-2.5-flash", "-p", "go", "--yolo", "--output-format", "stream-json"]
        done = subprocess.run(argv, cwd=root, env=gemini_env(root, standin.url), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_gemini_lists_exo_mcp_as_connected(gemini: Path, project: Path) -> None:
    env = gemini_env(project, "http://127.0.0.1:9")
    done = subprocess.run(
        [str(gemini), "mcp", "list"], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "exo: exo-mcp  (stdio) - Connected" in done.stdout + done.stderr, done.stdout + done.stderr


def test_gemini_calls_exo_and_its_hook_fences_files_and_shell(gemini: Path, project: Path) -> None:
    sessions.start(project, "agent:gemini", ticket_id="T1")
    script = [
        ("mcp_exo_ticket_show", {"ticket_id": "T1"}),
        ("run_shell_command", {"command": "echo x > docs/out.md"}),
        ("write_file", {"file_path": "docs/w.md", "content": "x"}),
        ("write_file", {"file_path": str(project / "src/in.py"), "content": "x\n"}),
        ("mcp_exo_status", {}),
    ]
    events = run_gemini(gemini, project, script)
    results = [e for e in events if e.get("type") == "tool_result"]
    assert [r["status"] for r in results] == ["success", "error", "error", "success", "success"], results
    assert json.loads(results[0]["output"])["id"] == "T1"
    assert json.loads(results[4]["output"])["current"]["actor"] == "agent:gemini"  # the server's agent
    assert all("exo:scope" in json.dumps(r) for r in results[1:3]), results[1:3]
    assert not (project / "docs/out.md").exists() and not (project / "docs/w.md").exists()
    assert (project / "src/in.py").read_text() == "x\n"
