"""exo-mcp as a real subprocess over stdio with the official client; two servers racing for one ticket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from exo.stdlib import tickets
from tests.conftest import mcp_stdio

SERVER = str(Path(sys.executable).parent / "exo-mcp")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return result.structured_content  # type: ignore[no-any-return]


@pytest.mark.anyio
async def test_a_session_over_stdio(governed: Path) -> None:
    async with Client(mcp_stdio(governed, "agent:stdio")) as client:
        claimed = structured(await client.call_tool("next", {}))
        assert claimed["ticket"]["id"] == "T1" and claimed["lease"]["holder"] == "agent:stdio"
        started = structured(await client.call_tool("session_start", {"task": "over stdio"}))
        assert started["session"]["ticket_id"] == "T1"
        decided = structured(await client.call_tool("check", {"paths": ["src/app.py", ".git/config"]}))
        assert [d["allowed"] for d in decided["decisions"]] == [True, False]
        (governed / "src").mkdir()
        (governed / "src/app.py").write_text("print('hi')\n")
        finished = structured(await client.call_tool("session_finish", {"summary": "app", "set_status": "done"}))
        assert finished["outcome"] == "finished" and finished["commit"]
        verified = structured(await client.call_tool("audit_verify", {}))
        assert verified["ok"] and verified["anchors_checked"] >= 1
        refused = await client.call_tool("session_heartbeat", {})
        assert refused.is_error and "error[SESSION_NOT_FOUND]" in refused.content[0].text


@pytest.mark.anyio
async def test_two_servers_for_two_actors_race_for_one_ticket(exo_repo: Path) -> None:
    tickets.create(exo_repo, "human:t@example.com", title="only one", scope=["src/**"], ticket_id="ONLY")
    outcomes: dict[str, Any] = {}

    async def agent(actor: str, ready: anyio.Event, go: anyio.Event) -> None:
        async with Client(mcp_stdio(exo_repo, actor)) as client:
            await client.list_tools()  # fully started before the race
            ready.set()
            await go.wait()
            outcomes[actor] = await client.call_tool("next", {})

    readies = [anyio.Event(), anyio.Event()]
    go = anyio.Event()
    async with anyio.create_task_group() as group:
        for actor, ready in zip(("agent:left", "agent:right"), readies, strict=True):
            group.start_soon(agent, actor, ready, go)
        for ready in readies:
            await ready.wait()
        go.set()
    winners = [a for a, r in outcomes.items() if not r.is_error]
    losers = [r.content[0].text for r in outcomes.values() if r.is_error]
    assert len(winners) == 1 and len(losers) == 1
    assert "error[NO_TICKET]" in losers[0]
    assert outcomes[winners[0]].structured_content["lease"]["holder"] == winners[0]


@pytest.mark.anyio
async def test_the_server_says_its_version(governed: Path) -> None:
    from exo import __version__

    async with Client(mcp_stdio(governed, "agent:stdio")) as client:
        assert client.server_info.name == "exo" and client.server_info.version == __version__


@pytest.mark.parametrize("entry", [[SERVER], [sys.executable, "-m", "exo.mcp_server"]], ids=["exo-mcp", "python-m"])
def test_help_and_version_answer_and_a_stray_argument_is_refused(tmp_path: Path, entry: list[str]) -> None:
    """Neither starts the server (which would sit waiting on stdin): each answers and exits."""
    from exo import __version__

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*entry, *args],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    helped = run("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: exo-mcp") and "EXO_ACTOR" in helped.stdout
    assert run("--version").stdout == f"exo-mcp {__version__}\n"
    stray = run("--repo", "/elsewhere")
    assert stray.returncode == 2 and stray.stdout == ""
    assert stray.stderr.startswith("error[INVALID_ARGUMENT]") and "hint: run `exo-mcp --help`" in stray.stderr
