"""Every runtime state file, damaged every way a crash, a full disk or an agent can damage it, read
through every entry point that reads it: the agent hook, the CLI (status, ticket list, doctor,
finish) and the MCP server. Each must answer with a decision or a coded error, never hang, never
crash (exit 3), and the session must still finish once the file is put back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from exo.kernel.state import State
from exo.stdlib import install, runtime, sessions, tickets
from tests.conftest import git, mcp_stdio

EXE = str(Path(sys.executable).parent / "exo")
A = "agent:one"
TIMEOUT = 60  # a hang is a failure; no reader may block on a planted file


def _sid(root: Path) -> str:
    session = runtime.current(root)
    assert session is not None
    return session.sid


# Each runtime file, located as a user's clone has it during an open session.
FILES: dict[str, Callable[[Path], list[Path]]] = {
    "pointer": lambda r: [Path(State(r).pointer)],
    "session": lambda r: [Path(State(r).session(_sid(r)))],
    "lease": lambda r: [Path(State(r).lease("T1"))],
    "stream": lambda r: [Path(State(r).stream(_sid(r)))],
    "freeze": lambda r: [Path(State(r).frozen)],
    "sandbox-settings": lambda r: [Path(State(r).sandbox_settings(_sid(r)))],
    "ticket-cache": lambda r: sorted(Path(State(r).cache("x")).parent.iterdir()),
    "locks": lambda r: sorted(Path(State(r).locks).iterdir()),
}


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _huge(path: Path) -> None:
    with path.open("wb") as out:
        out.truncate(64 << 20)  # sparse: 64 MiB of zeros on no disk


def _device(path: Path) -> None:
    path.symlink_to("/dev/zero")  # reads forever unless the reader checks the file type


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere" / "x.json")


def _fifo_link(path: Path) -> None:
    os.mkfifo(path.parent / f"{path.name}.fifo")
    path.symlink_to(path.parent / f"{path.name}.fifo")


KINDS: dict[str, Callable[[Path], Any]] = {
    "fifo": _fifo,
    "directory": Path.mkdir,
    "huge": _huge,
    "device-symlink": _device,
    "fifo-symlink": _fifo_link,
    "dangling-symlink": _dangling,
    "empty": lambda p: p.write_bytes(b""),
    "non-utf8": lambda p: p.write_bytes(b'{"sid": "\xff\xfe\xfd"}\n'),
    "deep-json": lambda p: p.write_bytes(b"[" * 100_000 + b"]" * 100_000),
    "wrong-type": lambda p: p.write_bytes(b'["not", "an", "object"]\n'),
    "wrong-fields": lambda p: p.write_bytes(b'{"sid": 5, "lease": "x", "fence": [], "expires_at": {}}\n'),
    "truncated": lambda p: p.write_bytes(b'{"sid": "S-'),
}


@pytest.fixture
def open_session(governed: Path) -> Path:
    """A session opened after `exo install` (so Claude Code's sandbox settings are kept too), with
    a ticket cache and the state locks on disk."""
    install.install(governed, git_hooks=True, claude=True, cursor=False, exe=EXE)
    git(governed, "add", "-A")
    git(governed, "commit", "-qm", "install exo")
    sessions.start(governed, A, ticket_id="T1")
    tickets.list_tickets(governed)
    return governed


class Planted:
    """Damage laid over a state file, and the original bytes to put back."""

    def __init__(self, paths: list[Path], kind: str) -> None:
        assert paths, "no such state file in this fixture"
        self.saved = {p: (p.read_bytes() if p.is_file() else None) for p in paths}
        for path in paths:
            _clear(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            KINDS[kind](path)

    def restore(self) -> None:
        for path, data in self.saved.items():
            _clear(path)
            for extra in path.parent.glob(f"{path.name}.fifo"):
                extra.unlink()
            if data is not None:
                path.write_bytes(data)


def _clear(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def run(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return together(root, [(list(args), stdin)])[0]


def together(root: Path, calls: list[tuple[list[str], str | None]]) -> list[subprocess.CompletedProcess[str]]:
    """Run exo commands at once, as a harness and a developer would; a hang is a failure."""
    env = {**os.environ, "EXO_ACTOR": A}
    started = [
        (
            args,
            stdin,
            subprocess.Popen(
                [EXE, *args],
                cwd=root,
                env=env,
                text=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
        )
        for args, stdin in calls
    ]
    try:
        answers = [(args, process, *process.communicate(stdin, timeout=TIMEOUT)) for args, stdin, process in started]
    finally:
        for _args, _stdin, process in started:
            process.kill()
    return [
        subprocess.CompletedProcess([EXE, *args], process.returncode, out, err) for args, process, out, err in answers
    ]


def coded(done: subprocess.CompletedProcess[str], *allowed: int) -> None:
    """An answer: an allowed exit status, and a failure is a coded error with a hint, never a crash."""
    said = f"exit {done.returncode}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    assert done.returncode in allowed, said
    assert "Traceback" not in done.stderr and "error[INTERNAL]" not in done.stderr, said
    assert "error[IO_ERROR]" not in done.stderr, said
    if done.returncode == 1:
        assert "error[" in done.stderr and "hint:" in done.stderr, said


def reported(done: subprocess.CompletedProcess[str]) -> None:
    """Doctor's answer: clean, or exit 1 with each problem named (or a coded error)."""
    if done.returncode == 1 and not done.stderr:
        report = json.loads(done.stdout)
        assert not report["ok"] and report["problems"], done.stdout
        return
    coded(done, 0, 1)


HOOK = ["hook", "claude", "pre-tool-use"]


def hook_payload(root: Path) -> str:
    payload = {
        "session_id": "s",
        "cwd": str(root),
        "hook_event_name": "PreToolUse",
        "tool_name": "Write",
        "tool_input": {"file_path": str(root / "src/a.py"), "content": "x"},
    }
    return json.dumps(payload)


@pytest.mark.heavy
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("name", sorted(FILES))
def test_a_damaged_state_file_gets_an_answer_and_nothing_is_lost(open_session: Path, name: str, kind: str) -> None:
    root = open_session
    planted = Planted(FILES[name](root), kind)

    readers = [(HOOK, hook_payload(root)), (["status", "--json"], None), (["ticket", "list", "--json"], None)]
    decided, status, listed, doctor = together(root, [*readers, (["doctor", "--json"], None)])
    coded(decided, 0, 2)
    if decided.returncode == 2:
        reason = json.loads(decided.stdout)["hookSpecificOutput"]["permissionDecisionReason"]
        assert "internal error" not in reason, reason
    coded(status, 0, 1)
    coded(listed, 0, 1)
    reported(doctor)
    finished = run(root, "session-finish", "--summary", "under damage", "--json")
    coded(finished, 0, 1)

    planted.restore()
    coded(run(root, "status", "--json"), 0)
    if runtime.current(root) is not None:  # refused under the damage: a retry completes it
        retried = run(root, "session-finish", "--summary", "after repair", "--json")
        coded(retried, 0)
        assert json.loads(retried.stdout)["outcome"] == "finished", retried.stdout
    assert run(root, "doctor").returncode == 0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.heavy
@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(FILES))
async def test_the_mcp_server_answers_every_damaged_state_file(open_session: Path, name: str) -> None:
    """One server across every kind of damage: each call is a result or a coded tool error, and the
    server stays up for the next call."""
    root = open_session
    async with Client(mcp_stdio(root, A)) as client:
        for kind in sorted(KINDS):
            planted = Planted(FILES[name](root), kind)
            for tool, args in (("status", {}), ("check", {"paths": ["src/a.py"]}), ("session_heartbeat", {})):
                with anyio.fail_after(TIMEOUT):
                    result = await client.call_tool(tool, args)
                if result.is_error:
                    text = result.content[0].text
                    coded_text = text.removeprefix(f"Error executing tool {tool}: ")  # the SDK's framing
                    assert coded_text.startswith("error[") and "\nhint: " in coded_text, (kind, tool, text)
                    assert "error[INTERNAL]" not in text and "error[IO_ERROR]" not in text, (kind, tool, text)
            planted.restore()
        healthy = await client.call_tool("status", {})
        assert not healthy.is_error and healthy.structured_content["current"] is not None


@pytest.mark.parametrize("kind", ["empty", "truncated", "wrong-type"])
def test_finish_refuses_a_stream_that_lost_its_start_and_commits_nothing(open_session: Path, kind: str) -> None:
    root = open_session
    head = git(root, "rev-parse", "HEAD")
    planted = Planted(FILES["stream"](root), kind)
    refused = run(root, "session-finish", "--summary", "x", "--json")
    coded(refused, 1)
    assert json.loads(refused.stdout)["error"]["code"] == "AUDIT_CORRUPT"
    assert git(root, "rev-parse", "HEAD") == head and runtime.current(root) is not None
    planted.restore()
    assert json.loads(run(root, "session-finish", "--summary", "x", "--json").stdout)["outcome"] == "finished"
    assert run(root, "doctor").returncode == 0


def test_doctor_fix_removes_a_planted_lock_but_keeps_a_planted_session(open_session: Path) -> None:
    root = open_session
    state = State(root)
    lock = next(Path(state.locks).iterdir())
    lock.unlink()
    os.mkfifo(lock)
    stranger = Path(state.sessions) / "planted.json"
    os.mkfifo(stranger)
    report = json.loads(run(root, "doctor", "--json").stdout)
    found = {p["subject"]: p["fix"] for p in report["problems"] if p["code"] == "STATE_CORRUPT"}
    assert "exo doctor --fix" in found[str(lock)] and "backup" in found[str(stranger)], found
    fixed = json.loads(run(root, "doctor", "--fix", "--json").stdout)
    assert any(str(lock) in line for line in fixed["fixed"]), fixed
    assert not lock.exists() and stranger.exists()
    stranger.unlink()
    finished = run(root, "session-finish", "--summary", "after the fix", "--json")
    coded(finished, 0)
    assert run(root, "doctor").returncode == 0
