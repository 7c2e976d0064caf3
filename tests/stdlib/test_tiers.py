"""Trust tiers (`actor_tier`), decided inside `check_action`, end to end: a plan-only agent cannot
write through the agent hook, the MCP server, a real `git commit`, the sandbox or finish; a
protected-tier agent may write CI configuration in its scope, never `.git/` or `.exo/`; the
bootstrap tells each agent its tier."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from exo.stdlib import closeout, governance, install, sessions, tickets
from tests.conftest import exo, git, mcp_stdio, refusal
from tests.stdlib.test_agent_hooks import allowed, call, denied, tool
from tests.stdlib.test_doctor import EXE, commit, write

PLANNER, LEAD, DEV = "agent:planner", "agent:lead", "agent:dev"
RULE = """
```yaml exo-policy
id: tiers
type: actor_tier
tiers:
  - actors: ["agent:planner"]
    tier: plan
  - actors: ["agent:lead"]
    tier: protected
```
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def tiered(governed: Path) -> Path:
    install.install(governed, git_hooks=True, claude=False, cursor=False, exe=EXE)
    constitution = governed / ".exo/CONSTITUTION.md"
    constitution.write_text(constitution.read_text() + RULE)
    governance.build(governed, "human:test@example.com")
    tickets.create(governed, "human:test@example.com", title="CI", scope=[".github/**", "src/**"], ticket_id="T3")
    commit(governed, "add", "-A")
    commit(governed, "commit", "-qm", "tiers")
    return governed


async def mcp_check(root: Path, actor: str, path: str) -> Any:
    async with Client(mcp_stdio(root, actor)) as client:
        return (await client.call_tool("check", {"paths": [path]})).structured_content


@pytest.mark.anyio
async def test_a_plan_only_agent_cannot_write_anywhere(tiered: Path) -> None:
    started = sessions.start(tiered, PLANNER, ticket_id="T1")
    assert "Your trust tier (rule tiers): plan only" in started.bootstrap
    reason = denied(call("claude", "pre-tool-use", tool(tiered, "Write", {"file_path": "src/app.py", "content": "x"})))
    assert "[tiers]" in reason or "tiers" in reason
    reading = exo("check", "--operation", "read", "--paths", "src/app.py", cwd=tiered, env={"EXO_ACTOR": PLANNER})
    assert reading.code == 0  # planning means reading
    checked = await mcp_check(tiered, PLANNER, "src/app.py")
    assert checked["ok"] is False and checked["decisions"][0]["rule"] == "tiers"

    write(tiered, "src/app.py")
    git(tiered, "add", "src/app.py")
    done = exo("check", "--staged", cwd=tiered, env={"EXO_ACTOR": PLANNER})
    assert done.code == 1
    refused = commit_as(tiered, PLANNER, "plan only?")
    assert refused.returncode != 0 and "tiers" in refused.stderr
    if shutil.which("bwrap"):
        path = f"{Path(os.sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        inside = exo(
            "run", "--", "sh", "-c", "echo x > src/other.py", cwd=tiered, env={"EXO_ACTOR": PLANNER, "PATH": path}
        )
        assert inside.code != 0 and not (tiered / "src/other.py").exists()
    commit(tiered, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "sneak", actor=PLANNER)
    finished = refusal(lambda: closeout.finish(tiered, PLANNER, summary="plan"))
    assert [v.path for v in finished.drift.violations] == ["src/app.py"]


def commit_as(root: Path, actor: str, message: str) -> Any:
    import subprocess

    return subprocess.run(
        ["git", "commit", "-qm", message],
        cwd=root,
        env={**os.environ, "EXO_ACTOR": actor},
        capture_output=True,
        text=True,
    )


def test_a_protected_tier_agent_may_write_ci_configuration_in_scope_but_never_git_or_exo(tiered: Path) -> None:
    started = sessions.start(tiered, LEAD, ticket_id="T3")
    assert "protected" in started.bootstrap
    allowed(
        call("claude", "pre-tool-use", tool(tiered, "Write", {"file_path": ".github/workflows/ci.yml", "content": "x"}))
    )
    for path in (".exo/tickets/T3.yaml", ".git/config", "src/.git/config"):
        assert "exo:protected" in denied(
            call("claude", "pre-tool-use", tool(tiered, "Write", {"file_path": path, "content": "x"}))
        )
    write(tiered, ".github/workflows/ci.yml", "on: push\n")
    git(tiered, "add", ".github")
    assert commit_as(tiered, LEAD, "ci").returncode == 0
    assert closeout.finish(tiered, LEAD, summary="ci").outcome == "finished"
    assert exo("doctor", cwd=tiered).code == 0


def test_an_actor_no_tier_names_is_scoped(tiered: Path) -> None:
    sessions.start(tiered, DEV, ticket_id="T3")
    allowed(call("claude", "pre-tool-use", tool(tiered, "Write", {"file_path": "src/app.py", "content": "x"})))
    reason = denied(
        call("claude", "pre-tool-use", tool(tiered, "Write", {"file_path": ".github/workflows/ci.yml", "content": "x"}))
    )
    assert "exo:protected" in reason
    out = json.loads(
        exo("check", "--paths", ".github/x.yml", "--scope", "**", "--json", cwd=tiered, env={"EXO_ACTOR": LEAD}).out
    )
    assert out["ok"] is True  # the same path for the protected tier
