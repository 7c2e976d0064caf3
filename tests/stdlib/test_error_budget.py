"""Error budgets end to end: fence violations the agent hook denies and refused finishes count
against the actor; one past the budget it may not claim or start (CLI and MCP) until a human
restores it; revocation and restoration are audited and shown by `exo status`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from exo.kernel.state import State
from exo.stdlib import closeout, governance, sessions
from tests.conftest import exo, mcp_stdio, refusal
from tests.stdlib.test_agent_hooks import call, denied, tool
from tests.stdlib.test_doctor import commit, write

A = "agent:one"
H = "human:test@example.com"
RULE = """
```yaml exo-policy
id: errors
type: error_budget
actors: ["agent:*"]
max_refused_finishes: 0
max_fence_violations: 1
```
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def budgeted(governed: Path) -> Path:
    constitution = governed / ".exo/CONSTITUTION.md"
    constitution.write_text(constitution.read_text() + RULE)
    governance.build(governed, H)
    commit(governed, "add", "-A")
    commit(governed, "commit", "-qm", "error budget")
    return governed


def out_of_fence(root: Path) -> str:
    return denied(call("claude", "pre-tool-use", tool(root, "Write", {"file_path": "docs/x.md", "content": "x"})))


def local_events(root: Path) -> list[str]:
    stream = Path(State(root).stream("local"))
    return [json.loads(line)["event"] for line in stream.read_text().splitlines()] if stream.exists() else []


@pytest.mark.anyio
async def test_fence_violations_past_the_budget_revoke_until_a_human_restores(budgeted: Path) -> None:
    sessions.start(budgeted, A, ticket_id="T1")
    out_of_fence(budgeted)
    assert "actor.revoked" not in local_events(budgeted)  # the budget allows one
    out_of_fence(budgeted)
    assert "actor.revoked" in local_events(budgeted)
    assert (
        closeout.finish(budgeted, A, summary="nothing").outcome == "finished"
    )  # a session already open may still close

    refused = exo("session-start", "--ticket-id", "T2", cwd=budgeted, env={"EXO_ACTOR": A})
    assert refused.code == 1 and "ACTOR_REVOKED" in refused.err and "exo restore agent:one" in refused.err
    assert exo("next", cwd=budgeted, env={"EXO_ACTOR": A}).code == 1
    async with Client(mcp_stdio(budgeted, A)) as client:
        via_mcp = await client.call_tool("session_start", {"ticket_id": "T2"})
        assert via_mcp.is_error and "ACTOR_REVOKED" in via_mcp.content[0].text
        shown = (await client.call_tool("status", {})).structured_content
        assert shown["revoked"] and shown["revoked"][0].startswith(f"{A}: 2 fence violations")
    assert "REVOKED" in exo("status", cwd=budgeted).out

    by_agent = exo("restore", A, cwd=budgeted, env={"EXO_ACTOR": A})
    assert by_agent.code == 1 and "NOT_ALLOWED" in by_agent.err
    assert exo("restore", A, cwd=budgeted, env={"CLAUDECODE": "1"}).code != 0
    restored = exo("restore", A, "--json", cwd=budgeted)
    assert restored.code == 0, restored.err
    assert json.loads(restored.out)["revoked"] == []
    assert any(b'"actor.restored"' in p.read_bytes() for p in (budgeted / ".exo/audit").glob("ev-*.jsonl"))
    assert exo("session-start", "--ticket-id", "T2", cwd=budgeted, env={"EXO_ACTOR": A}).code == 0


def test_a_refused_finish_past_the_budget_revokes(budgeted: Path) -> None:
    sessions.start(budgeted, A, ticket_id="T1")
    write(budgeted, "docs/out.md")
    refusal(lambda: closeout.finish(budgeted, A, summary="out of scope"))
    assert "ACTOR_REVOKED" in exo("next", cwd=budgeted, env={"EXO_ACTOR": A}).err
    other = exo("session-start", "--ticket-id", "T2", cwd=budgeted, env={"EXO_ACTOR": "agent:two"})
    assert other.code != 0 and "ACTOR_REVOKED" not in other.err  # only the actor over budget (here: a session is open)


def test_without_the_rule_nothing_is_counted(governed: Path) -> None:
    sessions.start(governed, A, ticket_id="T1")
    for _ in range(5):
        out_of_fence(governed)
    assert not Path(State(governed).standing).exists()
