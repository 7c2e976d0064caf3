"""exo adapters and exo install: managed blocks are byte-stable and idempotent; user text is untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from exo.stdlib.adapters import BEGIN, END, write_adapters
from tests.conftest import exo, git


def test_adapters_write_the_block_and_keep_user_text(exo_repo: Path) -> None:
    (exo_repo / "AGENTS.md").write_text("# Our agents\n\nBe kind to the build.\n")
    first = write_adapters(exo_repo)
    assert sorted(first.changed) == [
        ".codex/config.toml",
        ".cursor/mcp.json",
        ".cursor/rules/exo.mdc",
        ".gemini/settings.json",
        ".mcp.json",
        ".vscode/mcp.json",
        "AGENTS.md",
        "CLAUDE.md",
    ]
    agents = (exo_repo / "AGENTS.md").read_text()
    assert agents.startswith("# Our agents\n\nBe kind to the build.\n\n" + BEGIN)
    assert "exo session-finish" in agents and "no-secrets" in agents and agents.endswith(END + "\n")
    assert (exo_repo / "CLAUDE.md").read_text().count("@AGENTS.md") == 1
    assert (exo_repo / ".cursor/rules/exo.mdc").read_text().startswith("---\ndescription:")
    snapshot = {p: (exo_repo / p).read_bytes() for p in ("AGENTS.md", "CLAUDE.md", ".cursor/rules/exo.mdc")}
    again = write_adapters(exo_repo)
    assert again.changed == [] and {p: (exo_repo / p).read_bytes() for p in snapshot} == snapshot


def test_user_edits_around_the_block_survive_a_rewrite(exo_repo: Path) -> None:
    write_adapters(exo_repo)
    path = exo_repo / "AGENTS.md"
    path.write_text("Intro.\n\n" + path.read_text() + "\nOutro by the user.\n")
    with (exo_repo / ".exo/CONSTITUTION.md").open("a") as fh:
        fh.write("\n```yaml exo-policy\nid: small\ntype: budget\nmax_files: 5\n```\n")
    assert exo("build-governance", cwd=exo_repo).code == 0
    assert write_adapters(exo_repo).changed == ["AGENTS.md", ".cursor/rules/exo.mdc"]
    text = path.read_text()
    assert text.startswith("Intro.\n\n" + BEGIN) and text.endswith("\nOutro by the user.\n")
    assert "small: default session budget" in text


def test_install_sets_everything_up_idempotently_and_never_commits(git_repo: Path) -> None:
    head = git(git_repo, "rev-parse", "HEAD")
    first = exo("install", "--json", cwd=git_repo)
    assert first.code == 0, first.err
    changed = json.loads(first.out)["changed"]
    for expected in (".exo/CONSTITUTION.md", ".exo/config.yaml", "AGENTS.md", "CLAUDE.md", ".cursor/rules/exo.mdc"):
        assert expected in changed
    assert any(p.endswith("pre-commit") for p in changed) and any(p.endswith(".claude/settings.json") for p in changed)
    second = json.loads(exo("install", "--json", cwd=git_repo).out)
    assert second["changed"] == []
    assert git(git_repo, "rev-parse", "HEAD") == head


def test_install_keeps_the_broker_key_from_claude_codes_file_tools(git_repo: Path) -> None:
    """Claude Code's Read, Grep, Glob and Edit run outside its sandbox: `exo install` denies them
    this machine's broker key in Claude Code's user settings, keeping what the user has there."""
    from exo.stdlib import keys

    user = Path.home() / ".claude/settings.json"
    user.parent.mkdir()
    user.write_text(json.dumps({"theme": "dark", "permissions": {"deny": ["Read(./.env)"]}}))
    first = exo("install", "--json", cwd=git_repo)
    assert first.code == 0, first.err
    assert str(user) in json.loads(first.out)["changed"]
    key = keys.broker()
    assert key is not None
    place = Path(key.source).parent
    doc = json.loads(user.read_text())
    assert doc["theme"] == "dark"
    assert doc["permissions"]["deny"] == ["Read(./.env)", f"Read(/{place}/**)", f"Edit(/{place}/**)"]
    assert str(user) in json.loads(exo("install", "--json", cwd=git_repo).out)["unchanged"]


def test_install_with_unreadable_claude_user_settings_warns_and_touches_nothing(git_repo: Path) -> None:
    user = Path.home() / ".claude/settings.json"
    user.parent.mkdir()
    user.write_text('{"permissions": {"deny": "Read(./.env)"}}')
    done = exo("install", "--json", cwd=git_repo)
    assert done.code == 0, done.err
    warnings = json.loads(done.out)["warnings"]
    assert any("Claude Code's file tools can read the broker key" in w for w in warnings), warnings
    assert user.read_text() == '{"permissions": {"deny": "Read(./.env)"}}'


def test_install_sandboxes_claude_codes_shell_between_sessions(git_repo: Path) -> None:
    """The sandbox `exo install` writes for Claude Code when no session is open: the broker key
    unreadable, exo's state and git's settings unwritable, the rest of the worktree as before,
    permission prompts unchanged; kept out of git, since it names this machine's paths."""
    from exo.stdlib import keys

    first = exo("install", "--json", cwd=git_repo)
    assert first.code == 0, first.err
    assert ".claude/settings.local.json" in json.loads(first.out)["changed"]
    sandbox = json.loads((git_repo / ".claude/settings.local.json").read_text())["sandbox"]
    assert sandbox["enabled"] and sandbox["failIfUnavailable"] and not sandbox["allowUnsandboxedCommands"]
    assert sandbox["autoAllowBashIfSandboxed"] is False
    key = keys.broker()
    assert key is not None and sandbox["filesystem"]["denyRead"] == [f"/{Path(key.source).parent}"]
    root = git_repo.resolve()
    denied = set(sandbox["filesystem"]["denyWrite"])
    assert {f"/{root}/.exo", f"/{root}/.git/config", f"/{root}/.git/hooks", f"/{root}/.claude"} <= denied
    assert f"/{root}/README.md" not in denied and f"/{root}" not in denied
    assert git(git_repo, "status", "--porcelain", "--ignored", "--", ".claude/settings.local.json").startswith("!!")
    assert ".claude/settings.local.json" in json.loads(exo("install", "--json", cwd=git_repo).out)["unchanged"]
    assert (git_repo / ".git/info/exclude").read_text().count("/.claude/settings.local.json") == 1
    from exo.stdlib import install, sessions, tickets

    tickets.create(git_repo, "human:h@example.com", title="t", scope=["src/**"], ticket_id="T9")
    sessions.start(git_repo, "agent:one", ticket_id="T9")
    during = (git_repo / ".claude/settings.local.json").read_bytes()  # the session's sandbox
    summary = install.install_all(git_repo, ["claude"])
    assert any("only while no session is open" in w for w in summary.warnings), summary.warnings
    assert (git_repo / ".claude/settings.local.json").read_bytes() == during
    from exo.stdlib import closeout

    assert closeout.finish(git_repo, "agent:one", summary="x").outcome == "finished"  # exo's write is not drift
    assert json.loads((git_repo / ".claude/settings.local.json").read_text())["sandbox"] == sandbox


def test_install_without_the_sandbox_programs_warns_and_writes_no_sandbox(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude Code refuses to start with a sandbox it cannot run (`failIfUnavailable`): without
    bubblewrap and socat, install writes none and says what is missing."""
    from exo.stdlib import hooks, install

    monkeypatch.setattr(install.shutil, "which", lambda name: None)
    summary = install.install_all(git_repo, ["claude"])
    needs = hooks.SANDBOX_NEEDS[0]
    assert any("unsandboxed between sessions" in w and needs in w for w in summary.warnings), summary.warnings
    assert not (git_repo / ".claude/settings.local.json").exists()


def test_the_pre_commit_framework_manifest_names_real_hooks() -> None:
    manifest = yaml.safe_load((Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())
    entries = {hook["id"]: hook["entry"] for hook in manifest}
    assert entries == {"exo-fence": "exo hook git pre-commit", "exo-stamp": "exo hook git prepare-commit-msg"}


def test_mcp_configs_register_exo_and_keep_other_servers(exo_repo: Path) -> None:
    (exo_repo / ".mcp.json").write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}, "note": 1}))
    write_adapters(exo_repo, ["claude", "cursor"])
    doc = json.loads((exo_repo / ".mcp.json").read_text())
    exo_server = {"command": "exo-mcp", "args": [], "env": {"EXO_ACTOR": "${EXO_ACTOR:-agent:claude-code}"}}
    assert doc == {"mcpServers": {"other": {"command": "x"}, "exo": exo_server}, "note": 1}
    cursor = json.loads((exo_repo / ".cursor/mcp.json").read_text())
    assert cursor["mcpServers"]["exo"]["command"] == "exo-mcp"
    assert write_adapters(exo_repo, ["claude", "cursor"]).changed == []


def test_codex_config_is_a_managed_toml_block_after_the_users_lines(exo_repo: Path) -> None:
    import tomllib

    (exo_repo / ".codex").mkdir()
    mine = '# my settings\nmodel = "o4"\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\n'
    (exo_repo / ".codex/config.toml").write_text(mine)
    assert write_adapters(exo_repo).changed == [".codex/config.toml", "AGENTS.md"]  # only Codex is in use here
    text = (exo_repo / ".codex/config.toml").read_text()
    assert text.startswith(mine)
    doc = tomllib.loads(text)
    assert doc["model"] == "o4" and doc["mcp_servers"]["docs"] == {"command": "docs-mcp"}
    exo_server = {"command": "exo-mcp", "args": [], "env": {"EXO_ACTOR": "agent:codex"}, "required": True}
    assert doc["mcp_servers"]["exo"] == exo_server
    assert write_adapters(exo_repo).changed == []
    (exo_repo / ".codex/config.toml").write_text(mine + "[mcp_servers.exo]\ncommand = 'other'\n")
    clash = exo("adapters", cwd=exo_repo)
    assert clash.code == 2 and "[mcp_servers.exo]" in clash.err and "hint:" in clash.err
    (exo_repo / ".codex/config.toml").write_text("not = [toml")
    broken = exo("adapters", cwd=exo_repo)
    assert broken.code != 0 and "not valid TOML" in broken.err
    assert (exo_repo / ".codex/config.toml").read_text() == "not = [toml"


def test_gemini_and_vscode_configs(exo_repo: Path) -> None:
    (exo_repo / ".gemini").mkdir()
    (exo_repo / ".gemini/settings.json").write_text(json.dumps({"theme": "dark", "context": {"fileName": "NOTES.md"}}))
    (exo_repo / ".vscode").mkdir()
    write_adapters(exo_repo)
    gemini = json.loads((exo_repo / ".gemini/settings.json").read_text())
    assert gemini["theme"] == "dark" and gemini["context"]["fileName"] == ["AGENTS.md", "NOTES.md"]
    assert gemini["mcpServers"]["exo"] == {"command": "exo-mcp", "args": [], "env": {"EXO_ACTOR": "agent:gemini"}}
    vscode = json.loads((exo_repo / ".vscode/mcp.json").read_text())
    assert vscode["servers"]["exo"]["type"] == "stdio" and vscode["servers"]["exo"]["command"] == "exo-mcp"
    assert not (exo_repo / ".mcp.json").exists() and not (exo_repo / ".cursor").exists()  # not in use here


def test_harness_choice_and_detection(exo_repo: Path) -> None:
    done = exo("adapters", "--harness", "codex", "--harness", "gemini", "--json", cwd=exo_repo)
    assert done.code == 0 and sorted(json.loads(done.out)["changed"]) == [
        ".codex/config.toml",
        ".gemini/settings.json",
        "AGENTS.md",
    ]
    bad = exo("adapters", "--harness", "windsurf", cwd=exo_repo)
    assert bad.code == 2 and "error[INVALID_ARGUMENT]" in bad.err and "claude, cursor, codex" in bad.err
    installed = exo("install", "--json", cwd=exo_repo)  # detects the two now in use
    changed = json.loads(installed.out)["changed"]
    assert any(p.endswith(".codex/hooks.json") for p in changed) and not any(".claude" in p for p in changed)
