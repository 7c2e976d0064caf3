"""The official MCP Inspector's CLI (pinned in tests/harness/tools.py) against the real `exo-mcp`
over stdio: its strict tool-schema portability check finds nothing, and a tool call works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import tools
from tests.mcp_server.test_tools import TOOLS

pytestmark = pytest.mark.heavy

SERVER = str(Path(sys.executable).parent / "exo-mcp")


def inspector(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = tools.bin_path("@modelcontextprotocol/inspector", "mcp-inspector")
    argv = [str(exe), "--cli", *args, "-e", "EXO_ACTOR=agent:inspector", "--cwd", str(root), SERVER]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180)


def test_strict_listing_is_clean(governed: Path) -> None:
    done = inspector(governed, "--strict", "--method", "tools/list")
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    listed = json.loads(done.stdout)["tools"]
    assert {t["name"] for t in listed} == TOOLS
    assert all(t["title"] and "readOnlyHint" in t["annotations"] for t in listed)


def test_a_tool_call(governed: Path) -> None:
    done = inspector(governed, "--method", "tools/call", "--tool-name", "ticket_show", "--tool-arg", "ticket_id=T1")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["structuredContent"]["id"] == "T1" and not answer.get("isError")
