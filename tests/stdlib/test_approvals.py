"""The `approval` rule end to end — real git, the `exo` CLI and the MCP server: a ticket an agent
proposes (through MCP) or widens waits for a human's approval, `next` passes it by and a session
cannot start on it; only an approver sets `done`; the approval is a signed act doctor verifies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from exo.stdlib import governance
from exo.stdlib.doctor import diagnose
from tests.conftest import exo, git, mcp_stdio
from tests.stdlib.test_doctor import commit, fresh_clone, write
from tests.stdlib.test_signatures import H, list_keys

A = "agent:one"
RULES = (
    "\n```yaml exo-policy\nid: approvals\ntype: approval\n```\n"
    "\n```yaml exo-policy\nid: signed\ntype: signatures\n```\n"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def approving(keyed: Path) -> Path:
    """Signers listed; a constitution with the approval rule and signed human acts."""
    list_keys(keyed)
    constitution = keyed / ".exo/CONSTITUTION.md"
    constitution.write_text(constitution.read_text() + RULES)
    assert governance.build(keyed, H).changed
    commit(keyed, "add", "-A", ".exo")
    commit(keyed, "commit", "-qm", "approvals")
    return keyed


async def call(root: Path, name: str, args: dict[str, Any]) -> Any:
    async with Client(mcp_stdio(root, A)) as client:
        return await client.call_tool(name, args)


def as_agent(*args: str, cwd: Path) -> Any:
    return exo(*args, "--json", cwd=cwd, env={"EXO_ACTOR": A})


@pytest.mark.anyio
async def test_an_agents_ticket_waits_for_a_humans_approval(approving: Path) -> None:
    made = await call(approving, "ticket_create", {"title": "Anything", "scope": ["**"], "ticket_id": "W1"})
    assert not made.is_error and made.structured_content["status"] == "proposed"
    assert json.loads(exo("ticket", "show", "W1", "--json", cwd=approving).out)["status"] == "proposed"

    started = as_agent("session-start", "--ticket-id", "W1", cwd=approving)
    assert started.code == 1 and "TICKET_BLOCKED" in started.err
    nexted = await call(approving, "next", {})
    assert nexted.is_error or nexted.structured_content["ticket"]["id"] != "W1"
    assert as_agent("ticket", "update", "W1", "--status", "todo", cwd=approving).code == 1  # not by update
    refused = as_agent("ticket", "approve", "W1", cwd=approving)
    assert refused.code == 1 and "NOT_ALLOWED" in refused.err  # an agent cannot approve
    assert exo("ticket", "approve", "W1", cwd=approving, env={"CLAUDECODE": "1"}).code != 0  # nor as a human

    approved = exo("ticket", "approve", "W1", "--json", cwd=approving)
    assert approved.code == 0, approved.err
    assert json.loads(approved.out)["status"] == "todo"
    commit(approving, "add", "-A", ".exo")
    commit(approving, "commit", "-qm", "approve W1")
    report = diagnose(fresh_clone(approving))
    assert report.ok, report.problems
    assert any(s.startswith("ticket.approved") and s.endswith(f"by {H}") for s in report.signed)


def test_an_agent_widening_a_ticket_sends_it_back_to_proposed(approving: Path) -> None:
    widened = as_agent("ticket", "update", "T1", "--scope", "**", cwd=approving)
    assert widened.code == 0 and json.loads(widened.out)["status"] == "proposed"
    retitled = exo("ticket", "update", "T2", "--title", "Docs, better", "--json", cwd=approving, env={"EXO_ACTOR": A})
    assert json.loads(retitled.out)["status"] == "todo"  # a title is not a widening
    by_human = exo("ticket", "update", "T2", "--scope", "docs/**", "--scope", "site/**", "--json", cwd=approving)
    assert json.loads(by_human.out)["status"] == "todo"  # a human's change needs no approval


def test_only_an_approver_sets_done(approving: Path) -> None:
    assert as_agent("session-start", "--ticket-id", "T1", cwd=approving).code == 0
    write(approving, "src/app.py")
    commit(approving, "add", "src/app.py")
    commit(approving, "commit", "-qm", "app", actor=A)
    refused = as_agent("session-finish", "--summary", "done?", "--set-status", "done", cwd=approving)
    assert refused.code == 1 and "NOT_ALLOWED" in refused.err
    assert json.loads(exo("ticket", "show", "T1", "--json", cwd=approving).out)["status"] != "done"
    finished = as_agent("session-finish", "--summary", "app", cwd=approving)
    assert finished.code == 0, finished.err
    assert json.loads(exo("ticket", "show", "T1", "--json", cwd=approving).out)["status"] == "review"
    assert as_agent("ticket", "update", "T1", "--status", "done", cwd=approving).code == 1
    assert exo("ticket", "update", "T1", "--status", "done", cwd=approving).code == 0  # the human approver
    commit(approving, "add", "-A", ".exo")
    commit(approving, "commit", "-qm", "T1 done")
    assert diagnose(fresh_clone(approving)).ok


def test_without_the_rule_an_agents_ticket_is_todo(keyed: Path) -> None:
    made = as_agent("ticket", "create", "Anything", "--scope", "**", cwd=keyed)
    assert made.code == 0 and json.loads(made.out)["status"] == "todo"
    assert git(keyed, "status", "--porcelain")  # written, waiting to be committed
