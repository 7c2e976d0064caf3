"""Every MCP tool in memory with the SDK's client, error paths included; structured output = CLI --json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from exo import mcp_server
from exo.kernel import CODES as ERROR_HINTS
from exo.mcp_server import build
from exo.stdlib import freeze, hooks, tickets
from tests.conftest import exo, git

A = "agent:one"
TOOLS = {
    "status",
    "next",
    "ticket_create",
    "ticket_list",
    "ticket_show",
    "session_start",
    "session_heartbeat",
    "session_finish",
    "session_handoff",
    "check",
    "doctor",
    "audit_verify",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def call(root: Path, name: str, args: dict[str, Any] | None = None, actor: str | None = A) -> Any:
    async with Client(build(root, actor), raise_exceptions=True) as client:
        return await client.call_tool(name, args or {})


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return result.structured_content  # type: ignore[no-any-return]


def error(result: Any) -> str:
    assert result.is_error
    text = result.content[0].text
    assert "\nhint: " in text
    return text  # type: ignore[no-any-return]


@pytest.mark.anyio
async def test_every_tool_has_a_description_and_an_output_schema(governed: Path) -> None:
    async with Client(build(governed, A), raise_exceptions=True) as client:
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == TOOLS == hooks.EXO_TOOLS  # Cursor's hook lets exo's own tools through
    for tool in tools:
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
        assert tool.input_schema.get("type") == "object"


@pytest.mark.anyio
async def test_the_whole_lifecycle(governed: Path) -> None:
    claimed = ok(await call(governed, "next"))
    assert claimed["ticket"]["id"] == "T1" and claimed["lease"]["holder"] == A
    started = ok(await call(governed, "session_start", {"task": "build"}))
    assert "## Your fence" in started["bootstrap"]
    assert ok(await call(governed, "status"))["current"]["sid"] == started["session"]["sid"]
    assert ok(await call(governed, "session_heartbeat"))["live"] is True
    decided = ok(await call(governed, "check", {"paths": ["src/a.py", "docs/x.md"]}))
    assert [d["allowed"] for d in decided["decisions"]] == [True, False] and decided["ok"] is False
    (governed / "src").mkdir()
    (governed / "src/a.py").write_text("x\n")
    finished = ok(await call(governed, "session_finish", {"summary": "done", "set_status": "done"}))
    assert finished["outcome"] == "finished" and finished["commit"]
    assert ok(await call(governed, "audit_verify"))["ok"] is True
    assert ok(await call(governed, "doctor"))["ok"] is True


@pytest.mark.anyio
async def test_a_ticket_created_outside_a_session_never_wedges_one(governed: Path) -> None:
    ok(await call(governed, "ticket_create", {"title": "Later", "scope": ["lib/**"], "ticket_id": "T9"}))
    ok(await call(governed, "session_start", {"ticket_id": "T1"}))
    (governed / "src").mkdir()
    (governed / "src/a.py").write_text("x\n")
    finished = ok(await call(governed, "session_finish", {"summary": "done"}))
    assert finished["outcome"] == "finished" and finished["drift"]["preexisting"] == [".exo/tickets/T9.yaml"]
    ok(await call(governed, "session_start", {"ticket_id": "T2"}, actor="agent:two"))
    assert (
        ok(await call(governed, "session_finish", {"summary": "nothing"}, actor="agent:two"))["outcome"] == "finished"
    )


@pytest.mark.anyio
async def test_structured_output_equals_the_cli_json(governed: Path) -> None:
    for tool, args, argv in (
        ("ticket_show", {"ticket_id": "T1"}, ["ticket", "show", "T1"]),
        ("ticket_list", {}, ["ticket", "list"]),
        ("status", {}, ["status"]),
        ("check", {"paths": ["src/a.py"], "scope": ["src/**"]}, ["check", "--paths", "src/a.py", "--scope", "src/**"]),
        ("audit_verify", {}, ["audit", "verify"]),
    ):
        structured = ok(await call(governed, tool, args))
        cli = exo(*argv, "--json", cwd=governed, env={"EXO_ACTOR": A})
        assert structured == json.loads(cli.out), tool


@pytest.mark.anyio
async def test_tickets_create_list_show(governed: Path) -> None:
    made = ok(await call(governed, "ticket_create", {"title": "Fix it", "scope": ["lib/**"], "priority": 1}))
    assert made["created_by"] == A and made["scope"]["allow"] == ["lib/**"]
    assert ok(await call(governed, "ticket_list"))["tickets"][0]["id"] == made["id"]
    assert ok(await call(governed, "ticket_show", {"ticket_id": made["id"]}))["title"] == "Fix it"


ERRORS = [
    ("ticket_show", {"ticket_id": "NOPE"}, "TICKET_NOT_FOUND"),
    ("ticket_show", {"ticket_id": "../x"}, "INVALID_ID"),
    ("ticket_create", {"title": "x", "scope": ["/abs/**"]}, "INVALID_PATTERN"),
    ("ticket_create", {"title": "x", "scope": ["a/**"], "depends_on": ["NOPE"]}, "TICKET_NOT_FOUND"),
    ("ticket_list", {"status": "bogus"}, "INVALID_ARGUMENT"),
    ("session_start", {"ticket_id": "NOPE"}, "TICKET_NOT_FOUND"),
    ("session_start", {}, "NO_TICKET"),
    ("session_heartbeat", {}, "SESSION_NOT_FOUND"),
    ("session_finish", {}, "SESSION_NOT_FOUND"),
    ("session_handoff", {"to": "agent:b", "summary": "x"}, "SESSION_NOT_FOUND"),
    ("check", {"paths": ["a"]}, "NO_SESSION"),
    ("check", {"paths": ["a"], "scope": ["../x"]}, "INVALID_PATTERN"),
    ("doctor", {"commit_range": "nope..HEAD"}, "INVALID_ARGUMENT"),
    ("audit_verify", {"anchors": ["junk"]}, "INVALID_ARGUMENT"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "args", "code"), ERRORS, ids=[f"{t}-{c}" for t, _, c in ERRORS])
async def test_domain_errors_are_tool_errors_with_code_and_hint(
    governed: Path, tool: str, args: dict[str, Any], code: str
) -> None:
    assert f"error[{code}]" in error(await call(governed, tool, args))


@pytest.mark.anyio
async def test_every_hint_speaks_of_tools_and_their_arguments(governed: Path) -> None:
    for tool, args, _code in ERRORS:
        hint = error(await call(governed, tool, args)).split("\nhint: ", 1)[1]
        assert "--" not in hint and not re.search(r"`exo (next|session-|check|doctor|status|ticket)", hint), hint
    hint = error(await call(governed, "session_start")).split("\nhint: ", 1)[1]
    assert hint == "call `next`, or pass the `ticket_id` argument"
    assert (
        mcp_server.for_tools(ERROR_HINTS["NO_TICKET"].hint)
        == "create tickets with `ticket_create`, or wait for leases to expire"
    )
    assert mcp_server.for_tools("e.g. --range a..b") == "e.g. pass the `commit_range` argument a..b"
    assert mcp_server.for_tools('exo freeze --reason "why"').startswith("exo freeze")  # a human's command


READ_ONLY = {"status", "ticket_list", "ticket_show", "check", "doctor", "audit_verify"}


@pytest.mark.anyio
async def test_titles_and_annotations_say_what_each_tool_does_to_the_repository(governed: Path) -> None:
    async with Client(build(governed, A), raise_exceptions=True) as client:
        tools = (await client.list_tools()).tools
    for tool in tools:
        hints = tool.annotations
        assert tool.title and hints is not None and hints.open_world_hint is False, tool.name
        assert hints.read_only_hint is (tool.name in READ_ONLY), tool.name
        assert tool.name in READ_ONLY or hints.destructive_hint is False, tool.name
        properties = tool.input_schema.get("properties", {})
        assert "title" not in tool.input_schema and all("title" not in p for p in properties.values()), tool.name


@pytest.mark.anyio
async def test_the_tool_listing_is_lean(governed: Path) -> None:
    """tools/list within 15 KB (bench/mcp.py prints the bytes on the wire), structured output kept:
    every call above is checked by the client against these schemas."""
    async with Client(build(governed, A), raise_exceptions=True) as client:
        listing = await client.list_tools()
    size = len(listing.model_dump_json(by_alias=True, exclude_none=True))
    assert size <= 15 * 1024, size
    finish = next(t for t in listing.tools if t.name == "session_finish").output_schema
    assert finish is not None and finish["properties"]["outcome"]["enum"] == [
        "finished",
        "handed_off",
        "abandoned",
    ]
    assert set(finish["required"]) >= {"session", "outcome", "drift", "checks"}


@pytest.mark.anyio
async def test_next_when_frozen_and_when_nothing_is_left(governed: Path) -> None:
    freeze.freeze(governed, "human:ops@example.com", "incident")
    assert "error[FROZEN]" in error(await call(governed, "next"))
    freeze.unfreeze(governed, "human:ops@example.com")
    assert ok(await call(governed, "next", actor="agent:a"))["ticket"]["id"] == "T1"
    assert ok(await call(governed, "next", actor="agent:b"))["ticket"]["id"] == "T2"
    assert "error[NO_TICKET]" in error(await call(governed, "next", actor="agent:c"))


@pytest.mark.anyio
async def test_a_refused_finish_is_an_error_naming_the_paths(governed: Path) -> None:
    ok(await call(governed, "session_start", {"ticket_id": "T1"}))
    (governed / "docs").mkdir()
    (governed / "docs/x.md").write_text("x\n")
    text = error(await call(governed, "session_finish"))
    assert "error[DRIFT]" in text and "docs/x.md" in text
    text = error(await call(governed, "session_handoff", {"to": "agent:b", "summary": "s"}))
    assert "error[DRIFT]" in text
    assert ok(await call(governed, "status"))["current"] is not None  # still open


@pytest.mark.anyio
async def test_a_failing_check_is_an_error_carrying_its_output(governed: Path) -> None:
    """The agent is told which check failed and what it printed, in the one error it gets."""
    tickets.update(governed, "T1", {"checks": ["echo 'assertion failed: 2 != 3' >&2; exit 4"]})
    git(governed, "commit", "-qam", "a check")
    ok(await call(governed, "session_start", {"ticket_id": "T1"}))
    text = error(await call(governed, "session_finish", {"summary": "s"}))
    assert "error[CHECKS_FAILED]" in text and "(exit 4)" in text and "assertion failed: 2 != 3" in text, text
    assert ok(await call(governed, "status"))["current"] is not None


@pytest.mark.anyio
async def test_the_actor_and_repository_are_the_servers_and_no_call_changes_them(
    governed: Path, tmp_path: Path
) -> None:
    assert ok(await call(governed, "next", actor="agent:server"))["lease"]["holder"] == "agent:server"
    async with Client(build(governed, A), raise_exceptions=True) as client:
        tools = (await client.list_tools()).tools
    assert all({"actor", "repo"}.isdisjoint(t.input_schema.get("properties", {})) for t in tools)
    other = tmp_path / "other"
    other.mkdir()
    result = await call(
        governed, "ticket_create", {"title": "x", "scope": ["**"], "actor": "human:boss", "repo": str(other)}
    )
    if not result.is_error:  # extra arguments are ignored: the ticket is the server's agent's, in its repository
        assert result.structured_content["created_by"] == A
    assert not list(other.iterdir())


@pytest.mark.anyio
async def test_a_server_outside_a_repository_says_so(tmp_path: Path) -> None:
    assert "error[NOT_A_REPOSITORY]" in error(await call(tmp_path, "status"))


@pytest.mark.anyio
async def test_a_human_name_is_refused_and_the_default_is_the_clients_agent(governed: Path) -> None:
    assert "error[NOT_ALLOWED]" in error(await call(governed, "next", actor="human:boss@example.com"))
    assert "error[INVALID_ACTOR]" in error(await call(governed, "next", actor="bad actor"))
    claimed = ok(await call(governed, "next", actor=None))
    assert claimed["lease"]["holder"].startswith("agent:")  # agent:<the client's name>


@pytest.mark.anyio
async def test_each_call_reads_fresh_state(governed: Path) -> None:
    server = build(governed, A)
    async with Client(server, raise_exceptions=True) as client:
        before = (await client.call_tool("ticket_list", {})).structured_content
        exo("ticket", "create", "Made by the CLI", "--scope", "cli/**", "--id", "T9", cwd=governed)
        after = (await client.call_tool("ticket_list", {})).structured_content
    assert before is not None and after is not None
    assert len(after["tickets"]) == len(before["tickets"]) + 1


@pytest.mark.anyio
async def test_finish_reports_progress(governed: Path) -> None:
    ok(await call(governed, "session_start", {"ticket_id": "T1"}))
    seen: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    async with Client(build(governed, A), raise_exceptions=True) as client:
        result = await client.call_tool("session_finish", {"summary": "s"}, progress_callback=on_progress)
    assert not result.is_error
    assert "measuring drift" in seen and "committing the session records" in seen


@pytest.mark.anyio
async def test_an_unexpected_exception_is_logged_not_leaked(
    governed: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from exo.stdlib import tickets

    def boom(*_args: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(tickets, "list_tickets", boom)
    async with Client(build(governed, A)) as client:
        result = await client.call_tool("ticket_list", {})
    assert result.is_error
    text = result.content[0].text
    assert "ticket_list" in text and "secret internal detail" not in text
    crashes = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert crashes and crashes[0].exc_info is not None
    assert "secret internal detail" in str(crashes[0].exc_info[1].__cause__)  # the traceback is in the log
