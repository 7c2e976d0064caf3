"""Agent hooks with recorded payload shapes: exit code, stdout JSON and stderr; SEC-5 (fail closed)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from exo.kernel.state import State
from exo.stdlib import hooks, sessions
from tests.conftest import exo

EXE = str(Path(sys.executable).parent / "exo")
A = "agent:one"


def base(root: Path, event: str) -> dict[str, Any]:
    return {
        "session_id": "abc123",
        "transcript_path": str(root / "t.jsonl"),
        "cwd": str(root),
        "permission_mode": "default",
        "hook_event_name": event,
    }


def tool(root: Path, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {**base(root, "PreToolUse"), "tool_name": name, "tool_input": tool_input, "tool_use_id": "toolu_1"}


def call(agent: str, event: str, payload: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    code = hooks.run([agent, event], io.StringIO(raw), out, err)
    return code, out.getvalue(), err.getvalue()


def denied(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 2, result
    decision = json.loads(out)["hookSpecificOutput"]
    assert decision["hookEventName"] == "PreToolUse" and decision["permissionDecision"] == "deny"
    assert err.strip() == decision["permissionDecisionReason"]
    return err


def allowed(result: tuple[int, str, str]) -> None:
    assert result == (0, "", ""), result  # never a blanket allow: nothing at all


@pytest.fixture
def working(governed: Path) -> Path:
    sessions.start(governed, A, ticket_id="T1")
    return governed


FILE_CALLS = {
    "Write": lambda p: {"file_path": p, "content": "x"},
    "Edit": lambda p: {"file_path": p, "old_string": "a", "new_string": "b", "replace_all": False},
    "MultiEdit": lambda p: {"file_path": p, "edits": [{"old_string": "a", "new_string": "b"}]},
    "NotebookEdit": lambda p: {"notebook_path": p, "new_source": "x", "cell_id": "c1"},
}


@pytest.mark.parametrize("name", sorted(FILE_CALLS))
def test_file_tools_in_and_out_of_the_fence(working: Path, name: str) -> None:
    allowed(call("claude", "pre-tool-use", tool(working, name, FILE_CALLS[name](str(working / "src/app.py")))))
    reason = denied(call("claude", "pre-tool-use", tool(working, name, FILE_CALLS[name](str(working / "docs/x.md")))))
    assert "exo:scope" in reason
    protected = denied(call("claude", "pre-tool-use", tool(working, name, FILE_CALLS[name](".exo/tickets/T1.yaml"))))
    assert "exo:protected" in protected


BASH = {
    "ls -la src": None,
    "pytest -q && echo done": None,
    "echo hi > src/out.txt": None,
    "echo hi > docs/out.txt": "exo:scope",
    "cat x | tee -a .exo/config.yaml": "exo:protected",
    "sed -i 's/a/b/' .github/workflows/ci.yml": "exo:protected",
    "cp src/a.py docs/a.py": "exo:scope",
    "mv src/a.py src/b.py": None,
    "rm -rf .git/hooks": "exo:protected",
    "touch src/new.py README.md": "exo:scope",
    "python3 -c \"open('secrets.txt','w').write('x')\"": "exo:scope",
    "git commit --no-verify -m wip": "--no-verify",
    "git commit -nm wip": "-n skips",
    "git -c core.hooksPath=/dev/null commit -m wip": "core.hooksPath",
    "git config core.hooksPath /tmp/none": "core.hooksPath",
    "git commit-tree HEAD^{tree} -m x": "commit-tree",
    # hook managers told to skip exo's hooks
    "HUSKY=0 git commit -m wip": "hook manager",
    "export HUSKY=0; git commit -m wip": "hook manager",
    "LEFTHOOK=0 git commit -m wip": "hook manager",
    "LEFTHOOK_EXCLUDE=exo git commit -m wip": "hook manager",
    "SKIP=exo-fence,exo-stamp git commit -m wip": "hook manager",
    "env SKIP=lint git status": None,
    # cd, pushd and git -C move where relative paths land
    "cd src && echo x > app.py": None,
    "cd src; echo x > ../docs/a.md": "exo:scope",
    "pushd src && touch a.py": None,
    "cd docs && touch a.md": "exo:scope",
    # nested shells and eval are read too
    'bash -c "echo x > docs/a.md"': "exo:scope",
    'sh -c "cd src && echo x > ok.py"': None,
    "eval 'echo x > .exo/config.yaml'": "exo:protected",
    # writers read since
    "cp -t docs src/a.py": "exo:scope",
    "cp -t src README.md": None,
    "tar xf a.tar -C docs": "exo:scope",
    "tar -xzf a.tgz": "exo:scope",
    "unzip a.zip -d src": None,
    "patch -p1 < x.diff": "exo:scope",
    "find docs -name '*.md' -delete": "exo:scope",
    "find src -name '*.pyc' -delete": None,
    "git checkout -- README.md": "exo:scope",
    "git restore docs/a.md": "exo:scope",
    "git -C src apply x.diff": None,
    "echo x >& docs/log": "exo:scope",
    "echo x 1<> docs/rw": "exo:scope",
    "pytest 2>&1 | tail -3": None,
    "env A=1 rm docs/x": "exo:scope",
}


@pytest.mark.parametrize("command", sorted(BASH))
def test_bash_commands(working: Path, command: str) -> None:
    result = call(
        "claude", "pre-tool-use", tool(working, "Bash", {"command": command, "description": "d", "timeout": 1})
    )
    expect = BASH[command]
    if expect is None:
        allowed(result)
    else:
        assert expect in denied(result)


def test_no_session_denies_with_the_hint(governed: Path) -> None:
    reason = denied(call("claude", "pre-tool-use", tool(governed, "Write", {"file_path": "src/a.py"})))
    assert "exo session-start" in reason


def test_an_expired_lease_denies(working: Path) -> None:
    from datetime import UTC, datetime

    later = datetime.now(UTC) + timedelta(days=2)
    assert not sessions.status(working, now=later).sessions[0].live

    lease_path = Path(State(working).lease("T1"))
    lease = json.loads(lease_path.read_text())
    lease["expires_at"] = "2020-01-01T00:00:00Z"
    lease_path.write_text(json.dumps(lease))
    assert "LOCK_LOST" in denied(call("claude", "pre-tool-use", tool(working, "Write", {"file_path": "src/a.py"})))


def test_a_tampered_fence_snapshot_denies(working: Path) -> None:
    from exo.stdlib import runtime

    session = runtime.current(working)
    assert session is not None
    path = Path(State(working).session(session.sid))
    doc = json.loads(path.read_text())
    doc["fence"]["allow"] = [["^", True]]  # widen to everything without the pin
    path.write_text(json.dumps(doc))
    assert "pinned hash" in denied(call("claude", "pre-tool-use", tool(working, "Write", {"file_path": "docs/x.md"})))


@pytest.mark.parametrize("source", ["startup", "resume", "clear", "compact"])
def test_session_start_injects_the_bootstrap(working: Path, source: str) -> None:
    code, out, _ = call("claude", "session-start", {**base(working, "SessionStart"), "source": source})
    context = json.loads(out)["hookSpecificOutput"]
    assert code == 0 and context["hookEventName"] == "SessionStart"
    assert "## Your fence" in context["additionalContext"] and "T1" in context["additionalContext"]


def test_session_start_without_a_session_says_how_to_start(governed: Path) -> None:
    code, out, _ = call("claude", "session-start", {**base(governed, "SessionStart"), "source": "startup"})
    assert code == 0 and "exo session-start" in json.loads(out)["hookSpecificOutput"]["additionalContext"]


def test_stop_reminds_once_and_never_loops(working: Path, governed: Path) -> None:
    code, out, _ = call("claude", "stop", {**base(working, "Stop"), "stop_hook_active": False})
    assert code == 0 and json.loads(out)["decision"] == "block" and "session-finish" in json.loads(out)["reason"]
    assert call("claude", "stop", {**base(working, "Stop"), "stop_hook_active": True}) == (0, "", "")


def test_session_end_is_quiet(working: Path) -> None:
    assert call("claude", "session-end", {**base(working, "SessionEnd"), "reason": "exit"}) == (0, "", "")


def cursor_base(root: Path, event: str) -> dict[str, Any]:
    return {"conversation_id": "c1", "generation_id": "g1", "hook_event_name": event, "workspace_roots": [str(root)]}


def test_cursor_events(working: Path) -> None:
    ok = call(
        "cursor",
        "pre-tool-use",
        {
            **cursor_base(working, "preToolUse"),
            "tool_name": "Write",
            "tool_input": {"file_path": str(working / "src/a.py")},
        },
    )
    assert ok == (0, "", "")
    code, out, err = call(
        "cursor",
        "pre-tool-use",
        {
            **cursor_base(working, "preToolUse"),
            "tool_name": "Write",
            "tool_input": {"file_path": str(working / "docs/a.md")},
        },
    )
    answer = json.loads(out)
    assert code == 2 and answer["permission"] == "deny" and "exo:scope" in answer["agent_message"] and err
    shell = call(
        "cursor", "before-shell", {**cursor_base(working, "beforeShellExecution"), "command": "echo x > docs/y"}
    )
    assert shell[0] == 2 and json.loads(shell[1])["permission"] == "deny"
    assert call("cursor", "before-shell", {**cursor_base(working, "beforeShellExecution"), "command": "ls"}) == (
        0,
        "",
        "",
    )


JUNK = [
    "",
    "not json",
    "[1, 2]",
    '"a string"',
    "\x00\xff binary",
    json.dumps({"tool_name": "Write"}),  # no tool_input
    json.dumps({"tool_name": "Write", "tool_input": {}}),  # no file_path
    json.dumps({"tool_name": "Bash", "tool_input": {"command": 5}}),
    json.dumps({"tool_name": "Write", "tool_input": {"file_path": "x"}, "cwd": 7}),
    "{" * 100_000,
]


@pytest.mark.parametrize("raw", JUNK, ids=range(len(JUNK)))
def test_sec5_junk_denies(working: Path, raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(working)
    denied(call("claude", "pre-tool-use", raw))


def test_deeply_nested_input_is_named_not_an_internal_error(working: Path) -> None:
    reason = denied(call("claude", "pre-tool-use", '{"x":' * 100_000 + "1" + "}" * 100_000))
    assert "nested too deeply" in reason and "internal error" not in reason


def test_sec5_unknown_tools_and_events_deny(working: Path) -> None:
    for name in ("Read", "WebFetch", "Task"):
        assert "does not know the tool" in denied(call("claude", "pre-tool-use", tool(working, name, {"x": 1})))
    assert "cannot tell which paths" in denied(call("claude", "pre-tool-use", tool(working, "mcp__other__write", {})))
    assert call("claude", "post-tool-use", tool(working, "Write", {}))[0] == 2
    assert call("cursor", "after-file-edit", {})[0] == 2
    assert call("copilot", "pre-tool-use", {})[0] == 2


def test_sec5_an_internal_failure_denies(working: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(hooks, "check_action", boom)
    reason = denied(call("claude", "pre-tool-use", tool(working, "Write", {"file_path": "src/a.py"})))
    assert "internal error" in reason and "disk on fire" in reason


def test_the_real_entry_point_over_stdin(working: Path) -> None:
    payload = json.dumps(tool(working, "Write", {"file_path": str(working / "docs/x.md")}))
    done = subprocess.run([EXE, "hook", "claude", "pre-tool-use"], input=payload, capture_output=True, text=True)
    assert done.returncode == 2 and json.loads(done.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "exo:scope" in done.stderr
    inside = json.dumps(tool(working, "Write", {"file_path": str(working / "src/x.py")}))
    done = subprocess.run(
        [EXE, "hook", "claude", "pre-tool-use", "--json"], input=inside, capture_output=True, text=True
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_read_only_bash_outside_any_repository_is_not_denied(tmp_path: Path) -> None:
    payload = {**tool(tmp_path, "Bash", {"command": "ls -la"}), "cwd": str(tmp_path)}
    allowed(call("claude", "pre-tool-use", payload))
    writing = {**tool(tmp_path, "Bash", {"command": "echo x > out.txt"}), "cwd": str(tmp_path)}
    assert "not inside a git repository" in denied(call("claude", "pre-tool-use", writing))


MCP_CALLS = [
    ("mcp__fs__write_file", {"path": "docs/x.md", "content": "x"}, "deny"),
    ("mcp__fs__write_file", {"path": "src/x.py", "content": "x"}, "allow"),
    ("mcp__fs__edit_file", {"path": "src/ok.py", "edits": []}, "allow"),
    ("mcp__fs__move_file", {"source": "src/a.py", "destination": "docs/a.py"}, "deny"),
    ("mcp__fs__create_directory", {"path": ".git/hooks/x"}, "deny"),
    ("mcp__fs__write_file", {"path": "file://" + "/etc/passwd", "content": "x"}, "deny"),
    ("mcp__fs__write_file", {"options": {"nested": {"file_path": ".exo/CONSTITUTION.md"}}}, "deny"),
    ("mcp__fs__writeMany", {"files": ["src/a.py", "README.md"]}, "deny"),
    ("mcp__fs__upload", {"blob": "x"}, "deny"),  # no path it can see: blocked, not guessed
    ("mcp__fs__read_file", {"path": "docs/x.md"}, "allow"),
    ("mcp__fs__list_directory", {"path": "/"}, "allow"),
    ("mcp__fs__getInfo", {"path": ".git/config"}, "allow"),
    ("mcp__exo__session_finish", {"summary": "x"}, "allow"),  # exo's own tools: the broker decides
]


@pytest.mark.parametrize(("name", "args", "verdict"), MCP_CALLS, ids=[f"{n}-{v}" for n, _, v in MCP_CALLS])
def test_other_mcp_servers_tools_are_fenced_by_the_paths_they_name(
    working: Path, name: str, args: dict[str, Any], verdict: str
) -> None:
    result = call("claude", "pre-tool-use", tool(working, name, args))
    if verdict == "allow":
        allowed(result)
    else:
        denied(result)


@pytest.mark.parametrize(
    "command",
    ["git config core.fsmonitor 'touch x'", "git -C . config alias.st '!sh'", "git config --unset core.hooksPath"],
)
def test_git_config_changes_are_denied_early(working: Path, command: str) -> None:
    assert "git config" in denied(call("claude", "pre-tool-use", tool(working, "Bash", {"command": command})))


def test_git_config_reads_are_allowed(working: Path) -> None:
    allowed(call("claude", "pre-tool-use", tool(working, "Bash", {"command": "git config --get user.email"})))


@pytest.fixture
def claude_sandboxed(governed: Path) -> Path:
    """A session started after `exo install`: exo wrote Claude Code's sandbox settings for it."""
    assert exo("install", cwd=governed).code == 0
    sessions.start(governed, A, ticket_id="T1")
    assert (governed / ".claude/settings.local.json").exists()
    return governed


def _path_of(tmp: Path, names: tuple[str, ...]) -> str:
    tmp.mkdir()
    for name in names:
        (tmp / name).write_text("#!/bin/sh\n")
        (tmp / name).chmod(0o755)
    return str(tmp)


def test_without_the_sandbox_programs_claude_code_shell_is_denied(
    claude_sandboxed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude Code checks `failIfUnavailable` only when it starts; exo writes the sandbox when the
    session starts, so without bwrap/socat every later Bash call would run unsandboxed. The hook
    denies them all, even a command that writes nothing, and says what to install."""
    root = claude_sandboxed
    monkeypatch.setenv("PATH", _path_of(tmp_path / "bare", ()))
    for command in ("ls", "sh -c \"$(printf 'git conf%s core.fsmonitor x' ig)\""):
        reason = denied(call("claude", "pre-tool-use", tool(root, "Bash", {"command": command})))
        assert all(name in reason for name in hooks.SANDBOX_NEEDS) and "restart Claude Code" in reason
    allowed(call("claude", "pre-tool-use", tool(root, "Write", {"file_path": str(root / "src/a.py")})))
    monkeypatch.setenv("PATH", _path_of(tmp_path / "full", hooks.SANDBOX_NEEDS))
    assert call("claude", "config-change", config_change(root)) == (0, "", "")
    allowed(call("claude", "pre-tool-use", tool(root, "Bash", {"command": "ls"})))


def config_change(root: Path) -> dict[str, Any]:
    """What Claude Code sends when it notices its local settings changed (and applies them)."""
    local = str(root / hooks.CLAUDE_LOCAL)
    return {**base(root, "ConfigChange"), "source": "local_settings", "file_path": local}


def test_a_shell_call_waits_until_claude_code_has_loaded_the_sessions_sandbox(
    claude_sandboxed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude Code applies settings written mid-run about a second later, and says so with the
    ConfigChange hook; a Bash call before that would run without the session's sandbox (reading
    the broker key, writing .git/config), so it waits for the hook, and is denied if it never comes."""
    root = claude_sandboxed
    monkeypatch.setattr(hooks, "SANDBOX_WAIT", 0.3)
    reason = denied(call("claude", "pre-tool-use", tool(root, "Bash", {"command": "ls"})))
    assert "did not load this session's sandbox" in reason and "restart Claude Code" in reason
    local = root / hooks.CLAUDE_LOCAL
    written = local.read_bytes()
    local.write_bytes(written.replace(b'"enabled": true', b'"enabled": false'))  # not the sandbox exo wrote
    assert call("claude", "config-change", config_change(root)) == (0, "", "")
    denied(call("claude", "pre-tool-use", tool(root, "Bash", {"command": "ls"})))
    local.write_bytes(written)
    monkeypatch.setattr(hooks, "SANDBOX_WAIT", 30.0)
    late = threading.Timer(0.5, call, ("claude", "config-change", config_change(root)))
    late.start()  # Claude Code notices the change while the call waits
    allowed(call("claude", "pre-tool-use", tool(root, "Bash", {"command": "ls"})))
    late.join()
    allowed(call("claude", "pre-tool-use", tool(root, "Bash", {"command": "ls"})))  # seen stays seen


def test_claude_code_started_after_the_session_loaded_its_sandbox_at_start(claude_sandboxed: Path) -> None:
    root = claude_sandboxed
    assert call("claude", "session-start", {**base(root, "SessionStart"), "source": "startup"})[0] == 0
    allowed(call("claude", "pre-tool-use", tool(root, "Bash", {"command": "ls"})))


def test_a_damaged_sandbox_record_denies_the_shell(claude_sandboxed: Path) -> None:
    root = claude_sandboxed
    sid = State(root).read_pointer()
    assert sid is not None
    Path(State(root).sandbox_settings(sid)).write_text("{not json")
    assert "sandbox record cannot be read" in denied(
        call("claude", "pre-tool-use", tool(root, "Bash", {"command": "ls"}))
    )


def test_a_session_without_claude_sandbox_settings_is_not_held_to_them(
    working: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _path_of(tmp_path / "bare", ()))
    allowed(call("claude", "pre-tool-use", tool(working, "Bash", {"command": "ls"})))
    assert "exo:scope" in denied(call("claude", "pre-tool-use", tool(working, "Bash", {"command": "echo > docs/x"})))


def test_codex_events_are_claude_codes_with_apply_patch(working: Path) -> None:
    def pre(name: str, tool_input: dict[str, Any]) -> tuple[int, str, str]:
        return call("codex", "pre-tool-use", {**tool(working, name, tool_input), "turn_id": "t1", "model": "m"})

    assert "exo:scope" in denied(pre("Bash", {"command": "echo x > docs/a.md"}))
    patch = "*** Begin Patch\n*** Update File: src/a.py\n@@\n-a\n+b\n*** Move to: docs/a.py\n*** End Patch"
    assert "exo:scope" in denied(pre("apply_patch", {"command": patch}))  # the move lands outside
    allowed(pre("apply_patch", {"input": patch.replace("docs/a.py", "src/b.py")}))
    assert "names no file" in denied(pre("apply_patch", {"command": "*** Begin Patch\n*** End Patch"}))
    allowed(pre("mcp__exo__status", {}))
    code, out, _ = call("codex", "session-start", {**base(working, "SessionStart"), "source": "startup"})
    assert code == 0 and "src/**" in json.loads(out)["hookSpecificOutput"]["additionalContext"]
    code, out, _ = call("codex", "stop", {**base(working, "Stop"), "stop_hook_active": False})
    assert code == 0 and json.loads(out)["decision"] == "block"


def test_gemini_events(working: Path) -> None:
    def pre(name: str, tool_input: dict[str, Any], **extra: Any) -> tuple[int, str, str]:
        payload = {**base(working, "BeforeTool"), "tool_name": name, "tool_input": tool_input, **extra}
        return call("gemini", "pre-tool-use", payload)

    code, out, err = pre("write_file", {"file_path": "docs/a.md", "content": "x"})
    assert code == 2 and json.loads(out)["decision"] == "deny" and "exo:scope" in json.loads(out)["reason"] and err
    assert pre("replace", {"file_path": str(working / "src/a.py"), "old_string": "a", "new_string": "b"}) == (0, "", "")
    assert pre("run_shell_command", {"command": "touch a.md", "dir_path": "docs"})[0] == 2
    assert pre("run_shell_command", {"command": "ls"}) == (0, "", "")
    assert pre("read_file", {"file_path": ".exo/CONSTITUTION.md"}) == (0, "", "")
    exo_tool = {"server_name": "exo", "tool_name": "check", "command": "exo-mcp", "args": []}
    assert pre("mcp_exo_check", {"paths": ["docs/a.md"]}, mcp_context=exo_tool) == (0, "", "")
    other = {"server_name": "fs", "tool_name": "write_file"}
    assert pre("mcp_fs_write_file", {"path": "docs/a.md"}, mcp_context=other)[0] == 2
    assert "does not know the Gemini CLI tool" in pre("teleport", {})[1]
    code, out, _ = call("gemini", "session-start", {**base(working, "SessionStart"), "source": "startup"})
    assert code == 0 and "src/**" in json.loads(out)["hookSpecificOutput"]["additionalContext"]
    code, out, _ = call("gemini", "after-agent", {**base(working, "AfterAgent"), "stop_hook_active": False})
    assert code == 0 and json.loads(out)["decision"] == "deny" and "session-finish" in json.loads(out)["reason"]
    assert call("gemini", "after-agent", {**base(working, "AfterAgent"), "stop_hook_active": True})[1] == "{}"
