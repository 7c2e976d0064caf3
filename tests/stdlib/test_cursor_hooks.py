"""Cursor's hooks, played as Cursor plays them: one fixture per documented payload shape, sent
through the entries `exo hook-install --cursor` writes into `.cursor/hooks.json` (matcher, command,
`failClosed`), and once more straight to the hook, so a Cursor that ignored the matcher would still
never have a read denied."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exo.stdlib import hooks, install, sessions

FIXTURES = Path(__file__).parents[1] / "harness" / "cursor"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
EXE = str(Path(sys.executable).parent / "exo")
EVENTS = {
    "pre-tool-use": "preToolUse",
    "before-shell": "beforeShellExecution",
    "session-start": "sessionStart",
    "stop": "stop",
}
# Every tool name Cursor's hooks page gives for preToolUse and its matchers.
DOCUMENTED_TOOLS = {"Shell", "Read", "Write", "Grep", "Delete", "Task"}


def fixture(name: str, root: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text().replace("$ROOT", str(root)))
    return doc


@pytest.fixture
def cursor_repo(governed: Path) -> Path:
    (governed / "docs").mkdir()
    (governed / "docs/guide.md").write_text("guide\n")
    (governed / "src").mkdir()
    (governed / "src/app.py").write_text("x = 0\n")
    install.install(governed, git_hooks=False, claude=False, cursor=True, exe=EXE)
    sessions.start(governed, "agent:cursor", ticket_id="T1")
    return governed


def play(root: Path, event: str, payload: dict[str, Any], *, matcher: bool = True) -> list[tuple[int, str]]:
    """Run every configured entry for `event` whose matcher takes the payload's tool, as Cursor does:
    (exit status, stdout) of each; an empty list when no entry applies."""
    config = json.loads((root / ".cursor/hooks.json").read_text())
    answers = []
    for entry in config["hooks"][event]:
        pattern, tool = entry.get("matcher"), payload.get("tool_name", "")
        if matcher and pattern and not re.fullmatch(pattern, tool):
            continue
        done = subprocess.run(
            entry["command"], shell=True, input=json.dumps(payload), capture_output=True, text=True, cwd=root
        )
        answers.append((done.returncode, done.stdout))
    return answers


@pytest.mark.parametrize("name", NAMES)
def test_each_documented_payload_is_decided(cursor_repo: Path, name: str) -> None:
    doc = fixture(name, cursor_repo)
    event, payload, expect = EVENTS[doc["event"]], doc["payload"], doc["expect"]
    for answers in (play(cursor_repo, event, payload), play(cursor_repo, event, payload, matcher=False)):
        if expect == "allow":
            assert all(a == (0, "") for a in answers), answers
            continue
        assert len(answers) == 1, answers
        code, out = answers[0]
        answer = json.loads(out)
        if expect == "deny":
            assert code == 2 and answer["permission"] == "deny", answers
            assert doc["reason_contains"] in answer["agent_message"] and answer["user_message"]
        elif expect == "context":
            assert code == 0 and doc["reason_contains"] in answer["additional_context"]
        elif expect == "followup":
            assert code == 0 and doc["reason_contains"] in answer["followup_message"]
        else:
            assert (code, answer) == (0, {}), answers


def test_the_matcher_sends_exo_only_the_tools_that_write(cursor_repo: Path) -> None:
    for name in NAMES:
        payload = fixture(name, cursor_repo)["payload"]
        tool = payload.get("tool_name")
        if payload["hook_event_name"] == "preToolUse":
            sent = bool(play(cursor_repo, "preToolUse", payload))
            assert sent == (tool not in hooks.CURSOR_READS), tool
    tools = {fixture(n, cursor_repo)["payload"].get("tool_name", "").partition(":")[0] for n in NAMES}
    assert DOCUMENTED_TOOLS | {"MCP"} <= tools  # a fixture for every documented tool


def test_the_installed_entries(cursor_repo: Path) -> None:
    config = json.loads((cursor_repo / ".cursor/hooks.json").read_text())
    assert config["version"] == 1
    hooks_ = config["hooks"]
    assert hooks_["preToolUse"] == [
        {"command": f"{EXE} hook cursor pre-tool-use", "matcher": hooks.CURSOR_WRITERS, "failClosed": True}
    ]
    assert hooks_["beforeShellExecution"][0]["failClosed"] is True
    assert "failClosed" not in hooks_["sessionStart"][0] and "failClosed" not in hooks_["stop"][0]


def test_without_a_session_writes_are_denied_and_context_says_how_to_start(governed: Path) -> None:
    install.install(governed, git_hooks=False, claude=False, cursor=True, exe=EXE)
    write = fixture("pre-write-in-fence", governed)["payload"]
    [(code, out)] = play(governed, "preToolUse", write)
    assert code == 2 and "exo next" in json.loads(out)["agent_message"]
    [(code, out)] = play(governed, "sessionStart", fixture("session-start", governed)["payload"])
    assert code == 0 and "exo session-start" in json.loads(out)["additional_context"]
    [(code, out)] = play(governed, "stop", fixture("stop-completed", governed)["payload"])
    assert (code, json.loads(out)) == (0, {})
    assert play(governed, "preToolUse", fixture("pre-read", governed)["payload"], matcher=False) == [(0, "")]


def test_junk_cursor_input_fails_closed(cursor_repo: Path) -> None:
    for raw in ("", "nope", "[]", json.dumps({"tool_name": "Write"}), json.dumps({"tool_name": 3, "tool_input": {}})):
        done = subprocess.run(
            [EXE, "hook", "cursor", "pre-tool-use"], input=raw, capture_output=True, text=True, cwd=cursor_repo
        )
        assert done.returncode == 2 and json.loads(done.stdout)["permission"] == "deny", raw
    unknown = fixture("pre-write-in-fence", cursor_repo)["payload"] | {"tool_name": "Teleport"}
    [(code, out)] = play(cursor_repo, "preToolUse", unknown, matcher=False)
    assert code == 2 and "does not know the Cursor tool" in json.loads(out)["agent_message"]
