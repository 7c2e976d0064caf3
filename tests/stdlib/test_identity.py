"""SEC-6: no route lets an agent act as a human — flags, environment, git identity, MCP, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from exo.stdlib import install, sessions
from exo.stdlib.identity import MARKERS, agent_marker
from tests.conftest import exo, git

EXE = install.exo_command()
MARKED = [{name: value or "1"} for name, value, _agent in MARKERS]
HUMAN_ONLY = [
    ["unfreeze"],
    ["session-finish", "--accept-drift", "it is fine"],
    ["ticket", "create", "everything", "--scope", "**"],
    ["next"],
    ["freeze", "--reason", "x"],
]


@pytest.mark.parametrize("marker", MARKED, ids=[next(iter(m)) for m in MARKED])
@pytest.mark.parametrize("how", ["flag", "env"])
@pytest.mark.parametrize("command", HUMAN_ONLY, ids=[c[0] for c in HUMAN_ONLY])
def test_a_human_name_is_refused_under_every_agent_marker(
    governed: Path, marker: dict[str, str], how: str, command: list[str]
) -> None:
    claim = ["--actor", "human:boss@example.com"] if how == "flag" else []
    env = {**marker, **({"EXO_ACTOR": "human:boss@example.com"} if how == "env" else {})}
    done = exo(*command, *claim, cwd=governed, env=env)
    assert done.code == 1 and "error[NOT_ALLOWED]" in done.err, (done.code, done.err)
    assert "runs under an agent" in done.err


@pytest.mark.parametrize("marker", MARKED, ids=[next(iter(m)) for m in MARKED])
def test_under_a_marker_the_default_actor_is_the_agent_not_the_git_user(governed: Path, marker: dict[str, str]) -> None:
    done = exo("next", "--json", cwd=governed, env=marker)
    assert done.code == 0, done.err
    assert '"holder": "agent:' in done.out


def test_without_a_marker_the_human_at_the_terminal_is_the_git_user(governed: Path) -> None:
    done = exo("ticket", "create", "by hand", "--scope", "x/**", "--json", cwd=governed)
    assert done.code == 0 and '"created_by": "human:test@example.com"' in done.out


def test_markers_need_their_value_where_one_is_documented() -> None:
    assert agent_marker({"CURSOR_EXTENSION_HOST_ROLE": "user"}) is None
    assert agent_marker({"CURSOR_EXTENSION_HOST_ROLE": "agent-exec"}) == ("CURSOR_EXTENSION_HOST_ROLE", "cursor")
    assert agent_marker({"CLAUDECODE": ""}) is None


def commit(root: Path, env: dict[str, str]) -> tuple[int, str]:
    import os
    import subprocess

    (root / "src").mkdir(exist_ok=True)
    (root / "src/x.py").write_text("x = 1\n")
    git(root, "add", "src/x.py")
    done = subprocess.run(
        ["git", "commit", "-qm", "x"], cwd=root, env={**os.environ, **env}, capture_output=True, text=True
    )
    return done.returncode, done.stderr


def test_git_hooks_refuse_a_human_name_under_a_marker(governed: Path) -> None:
    install.install(governed, git_hooks=True, claude=False, cursor=False, exe=EXE)
    code, err = commit(governed, {"CLAUDECODE": "1", "EXO_ACTOR": "human:boss@example.com"})
    assert code != 0 and "NOT_ALLOWED" in err


def test_git_hooks_under_a_marker_without_a_session_stamp_the_agent_and_the_policy_refuses(governed: Path) -> None:
    install.install(governed, git_hooks=True, claude=False, cursor=False, exe=EXE)
    code, err = commit(governed, {"CLAUDECODE": "1"})  # no EXO_ACTOR: once, this was the git user, a human
    assert code != 0 and "agent:claude-code" in err
    sessions.start(governed, "agent:claude-code", ticket_id="T1")
    code, err = commit(governed, {"CLAUDECODE": "1"})
    assert code == 0, err
    assert "Exo-Actor: agent:claude-code" in git(governed, "log", "-1", "--format=%B")


def test_adapters_fix_the_mcp_servers_agent(governed: Path) -> None:
    import json

    assert exo("adapters", cwd=governed).code == 0
    claude = json.loads((governed / ".mcp.json").read_text())["mcpServers"]["exo"]
    cursor = json.loads((governed / ".cursor/mcp.json").read_text())["mcpServers"]["exo"]
    assert claude["env"]["EXO_ACTOR"] == "${EXO_ACTOR:-agent:claude-code}"
    assert cursor["env"]["EXO_ACTOR"] == "${EXO_ACTOR:-agent:cursor}"
