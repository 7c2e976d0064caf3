"""The real Claude Code CLI, run against a loopback stand-in for the model API that replays
scripted tool calls: Claude Code itself runs exo's hooks, exo's MCP server and another MCP
server's tools, exactly as it does for a user. Pinned in tests/harness/tools.py, which `.ci/run`
runs and this module calls when the pinned version is missing (npm, into .ci/harness/)."""

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
from tests.harness.standin import StandIn

pytestmark = pytest.mark.heavy

CLAUDE_CODE = tools.PINS["@anthropic-ai/claude-code"]
FS_SERVER = Path(__file__).parent / "fs_server.py"
BIN = Path(sys.executable).parent
PWNED = "/tmp/exo-claude-code-pwned"


@pytest.fixture(scope="module")
def claude() -> Path:
    exe = tools.bin_path("@anthropic-ai/claude-code", "claude")
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert version.startswith(CLAUDE_CODE), version
    return exe


def path_without_exo() -> str:
    return os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "exo").exists())


def run_claude(claude: Path, root: Path, script: list[tuple[str, dict[str, Any]]], *, path: str) -> StandIn:
    """`claude -p` in `root` with exo's project settings and MCP configs, as a user runs it."""
    fs = {"mcpServers": {"fs": {"command": sys.executable, "args": [str(FS_SERVER)]}}}
    (root.parent / "fs.json").write_text(json.dumps(fs))
    env = {
        **os.environ,
        "PATH": path,
        "ANTHROPIC_API_KEY": "sk-loopback",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        **({"IS_SANDBOX": "1"} if os.geteuid() == 0 else {}),  # root may skip permission prompts only so
    }
    with StandIn(script) as standin:
        env["ANTHROPIC_BASE_URL"] = standin.url
        argv = [str(claude), "-p", "go", "--output-format", "stream-json", "--verbose"]
        argv += [
            "--dangerously-skip-permissions",
            "--mcp-config",
            str(root / ".mcp.json"),
            str(root.parent / "fs.json"),
        ]
        done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    return standin


@pytest.fixture
def project(governed: Path) -> Path:
    """A governed repository after `exo install`, as a user commits it, with .git hooks in place."""
    assert exo("install", cwd=governed, env={"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}).code == 0
    git(governed, "add", "-A")
    git(governed, "commit", "-qm", "install exo")
    Path(PWNED).unlink(missing_ok=True)
    return governed


def test_claude_code_works_inside_the_fence_and_is_stopped_outside_it(claude: Path, project: Path) -> None:
    root = project
    script: list[tuple[str, dict[str, Any]]] = [
        ("mcp__exo__next", {}),
        ("mcp__exo__session_start", {"ticket_id": "T1", "task": "an in-fence file"}),
        ("Write", {"file_path": str(root / "src/ok.py"), "content": "ok = True\n"}),
        ("Write", {"file_path": str(root / "docs/out.md"), "content": "out of the fence\n"}),
        ("Bash", {"command": "echo x > docs/shell.md"}),
        ("mcp__fs__write_file", {"path": "docs/mcp.md", "content": "through another server\n"}),
        ("Bash", {"command": f"git config core.fsmonitor 'touch {PWNED}'"}),
        ("Bash", {"command": "exo unfreeze --actor human:boss@example.com; echo exit=$?"}),
        ("Bash", {"command": "git add src/ok.py && git commit -qm 'ok' && git log -1 --format=%B"}),
        # what the shell reader cannot see, Claude Code's own sandbox (compiled by exo) stops
        ("Bash", {"command": "python3 -c \"import os; os.system('ech'+'o x >> READ'+'ME.md')\""}),
        ("Bash", {"command": "sh -c \"$(printf 'git conf%s core.fsmonitor x' ig)\"; echo rc=$?"}),
        ("Bash", {"command": "mkdir -p src/pkg && echo 'y = 2' > src/pkg/y.py && echo wrote"}),
        ("mcp__exo__session_finish", {"summary": "an in-fence file, through the real harness"}),
    ]
    readme = (root / "README.md").read_text()
    between = (root / ".claude/settings.local.json").read_bytes()  # the sandbox between sessions
    standin = run_claude(claude, root, script, path=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    said = [standin.result_text(step) for step in range(len(script))]
    assert json.loads(said[0])["lease"]["holder"] == "agent:claude-code"  # .mcp.json's EXO_ACTOR, expanded
    assert "## Your fence" in json.loads(said[1])["bootstrap"]
    assert (root / "src/ok.py").read_text() == "ok = True\n"
    for step, path in ((3, "docs/out.md"), (4, "docs/shell.md"), (5, "docs/mcp.md")):
        assert not (root / path).exists(), (path, said[step])
        assert "hook error: exo: fence [exo:scope]" in said[step], said[step]
    assert "git config" in said[6]
    assert subprocess.run(["git", "config", "--get-all", "core.fsmonitor"], cwd=root).returncode == 1, said[6]
    assert "NOT_ALLOWED" in said[7] and "CLAUDECODE" in said[7], said[7]  # the harness marks its shell
    assert "Exo-Actor: agent:claude-code" in said[8] and "Exo-Session:" in said[8], said[8]
    assert "Read-only file system" in said[9] and (root / "README.md").read_text() == readme, said[9]
    assert "could not lock config file" in said[10], said[10]
    assert "wrote" in said[11] and (root / "src/pkg/y.py").exists(), said[11]  # in the fence, it works
    assert json.loads(said[12])["outcome"] == "finished", said[12]
    assert (root / ".claude/settings.local.json").read_bytes() == between  # the session's sandbox is gone with it
    assert sessions.status(root).current is None
    assert exo("doctor", cwd=root).code == 0
    assert not Path(PWNED).exists()


def test_without_exo_on_the_path_the_hooks_still_decide(claude: Path, project: Path) -> None:
    """The README's `.venv` install leaves exo off Claude Code's PATH: the hooks name exo by its
    absolute path, so writes are still fenced."""
    root = project
    sessions.start(root, "agent:claude-code", ticket_id="T1")
    script: list[tuple[str, dict[str, Any]]] = [
        ("Write", {"file_path": str(root / "docs/out.md"), "content": "x\n"}),
        ("Bash", {"command": "echo x > docs/shell.md"}),
        ("mcp__fs__write_file", {"path": "docs/mcp.md", "content": "x\n"}),
        ("Write", {"file_path": str(root / "src/in.py"), "content": "x = 1\n"}),
    ]
    standin = run_claude(claude, root, script, path=path_without_exo())
    assert [p for p in ("docs/out.md", "docs/shell.md", "docs/mcp.md") if (root / p).exists()] == []
    assert all("exo: fence [exo:scope]" in standin.result_text(step) for step in range(3))  # exo decided
    assert (root / "src/in.py").exists(), standin.result_text(3)


def test_a_hook_that_cannot_run_blocks_the_call(claude: Path, project: Path) -> None:
    """Fail closed: a PreToolUse hook whose command does not exist blocks instead of letting through."""
    root = project
    sessions.start(root, "agent:claude-code", ticket_id="T1")
    settings = root / ".claude/settings.json"
    doc = json.loads(settings.read_text())
    for entry in doc["hooks"]["PreToolUse"]:
        for hook in entry["hooks"]:
            hook["command"] = "/nonexistent/exo hook claude pre-tool-use"
    settings.write_text(json.dumps(doc))
    script: list[tuple[str, dict[str, Any]]] = [("Write", {"file_path": str(root / "src/in.py"), "content": "x\n"})]
    standin = run_claude(claude, root, script, path=path_without_exo())
    assert not (root / "src/in.py").exists(), standin.result_text(0)
    assert "hook" in standin.result_text(0).lower()  # blocked by the hook that could not run


def path_without(tmp: Path, names: tuple[str, ...]) -> str:
    """One directory linking every program on PATH but `names`: PATH as on a machine without them."""
    tmp.mkdir()
    for directory in [str(BIN), *os.environ["PATH"].split(os.pathsep)]:
        if not directory or not Path(directory).is_dir():
            continue
        for entry in Path(directory).iterdir():
            link = tmp / entry.name
            if entry.name not in names and not link.exists() and os.access(entry, os.X_OK):
                link.symlink_to(entry)
    return str(tmp)


def test_without_the_sandbox_programs_the_shell_is_stopped(claude: Path, project: Path, tmp_path: Path) -> None:
    """Without bwrap and socat Claude Code would fall back to running commands unsandboxed when
    exo writes the sandbox mid-run (at MCP session_start): exo's hook then denies every Bash call."""
    root = project
    (root / ".claude/settings.local.json").unlink()  # `exo install` on a machine without them writes none
    script: list[tuple[str, dict[str, Any]]] = [
        ("mcp__exo__session_start", {"ticket_id": "T1", "task": "no sandbox programs here"}),
        ("Bash", {"command": "sh -c \"$(printf 'git conf%s core.fsmonitor x' ig)\"; echo rc=$?"}),
        ("Bash", {"command": "ls"}),
        ("Write", {"file_path": str(root / "src/ok.py"), "content": "ok = True\n"}),
    ]
    standin = run_claude(claude, root, script, path=path_without(tmp_path / "bin", ("bwrap", "socat")))
    said = [standin.result_text(step) for step in range(len(script))]
    assert "## Your fence" in json.loads(said[0])["bootstrap"]
    for step in (1, 2):
        assert "bwrap and socat" in said[step] and "rc=" not in said[step], said[step]
    assert subprocess.run(["git", "config", "--get-all", "core.fsmonitor"], cwd=root).returncode == 1
    assert (root / "src/ok.py").read_text() == "ok = True\n", said[3]


def test_the_broker_key_is_out_of_reach_of_every_claude_code_tool(claude: Path, project: Path) -> None:
    """The key that signs session records (SPEC §12). Claude Code's file tools run in its own
    process, outside the sandbox: the permission rules `exo install` put in its user settings keep
    them out before and during a session (even with --dangerously-skip-permissions); its shell is
    kept out by the sandbox, between sessions by the one `exo install` wrote."""
    from exo.stdlib import keys

    root = project
    key = keys.broker()
    assert key is not None  # `exo install` made it
    private = Path(key.source)
    neighbour = private.parent.parent / "neighbour.txt"  # what shows the same reads work elsewhere
    neighbour.write_text("NOT A PRIVATE KEY\n")
    reach: list[tuple[str, dict[str, Any]]] = [
        ("Read", {"file_path": str(private)}),
        ("Grep", {"pattern": "PRIVATE", "path": str(private.parent), "output_mode": "content"}),
        ("Glob", {"pattern": "**/*", "path": str(private.parent)}),
        ("Write", {"file_path": str(private), "content": "forged\n"}),
    ]
    shell = ("Bash", {"command": f"cat {private}; echo rc=$?"})
    script: list[tuple[str, dict[str, Any]]] = [
        ("Read", {"file_path": str(neighbour)}),
        shell,  # before the session
        *reach,
        ("mcp__exo__session_start", {"ticket_id": "T1", "task": "reach for the broker key"}),
        shell,  # at once: Claude Code has not loaded the session's sandbox yet, so the hook holds it
        *reach,
        ("mcp__exo__session_finish", {"summary": "the key stayed out of reach"}),
    ]
    secret = private.read_text()
    between = (root / ".claude/settings.local.json").read_bytes()
    standin = run_claude(claude, root, script, path=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    said = [standin.result_text(step) for step in range(len(script))]
    assert "NOT A PRIVATE KEY" in said[0], said[0]
    for step in (*range(1, 6), *range(7, 12)):
        assert "PRIVATE KEY" not in said[step] and "id_ed25519" not in said[step].replace(str(private), ""), said[step]
    assert "rc=1" in said[1] and "rc=1" in said[7], said  # they ran, sandboxed
    assert private.read_text() == secret
    assert json.loads(said[12])["outcome"] == "finished", said[12]
    assert (root / ".claude/settings.local.json").read_bytes() == between  # the session's sandbox leaves with it


def test_the_humans_ssh_agent_cannot_sign_from_claude_codes_sandboxed_shell(
    claude: Path, project: Path, ssh_agent: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssh-agent signs for whoever reaches its socket, as the human: in a session, Claude Code's
    sandbox (as exo compiles it) keeps its shell from connecting, though the variable is there."""
    root = project
    sock, public = ssh_agent
    monkeypatch.setenv("SSH_AUTH_SOCK", sock)
    (root / "src").mkdir(exist_ok=True)
    (root / "src/data").write_text("approve T1\n")
    sign = f"ssh-keygen -Y sign -n exo -f {public} src/data && echo signed; echo sock=$SSH_AUTH_SOCK"
    script: list[tuple[str, dict[str, Any]]] = [
        ("mcp__exo__session_start", {"ticket_id": "T1", "task": "sign as the human"}),
        ("Bash", {"command": sign}),
    ]
    standin = run_claude(claude, root, script, path=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    said = standin.result_text(1)
    assert f"sock={sock}" in said and "signed" not in said.split(), said
    assert not (root / "src/data.sig").exists()


def test_between_sessions_claude_codes_shell_cannot_touch_what_exo_trusts(claude: Path, project: Path) -> None:
    """No session is open: the hooks refuse every write they can see, and the sandbox `exo install`
    wrote stops what they cannot (writes hidden from the shell reader, to `.exo/` and git's config); the
    rest of the worktree stays the shell's, as without exo."""
    root = project
    script: list[tuple[str, dict[str, Any]]] = [
        ("Bash", {"command": "sh -c \"$(printf 'git conf%s core.fsmonitor x' ig)\"; echo rc=$?"}),
        ("Bash", {"command": "sh -c \"$(printf 'echo x >> .e%s/config.yaml' xo)\"; echo rc=$?"}),
        ("Bash", {"command": "sh -c \"$(printf 'echo x > no%s.txt' tes)\"; echo rc=$?"}),
    ]
    config = (root / ".exo/config.yaml").read_text()
    standin = run_claude(claude, root, script, path=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    said = [standin.result_text(step) for step in range(len(script))]
    assert "could not lock config file" in said[0], said[0]
    assert subprocess.run(["git", "config", "--get-all", "core.fsmonitor"], cwd=root).returncode == 1
    assert "Read-only file system" in said[1] and (root / ".exo/config.yaml").read_text() == config, said[1]
    assert "rc=0" in said[2] and (root / "notes.txt").exists(), said[2]
