"""Git hooks end to end through a real `git commit`, and hook-install's chaining and merging."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from exo.stdlib import closeout, install, sessions
from tests.conftest import exo, git

EXE = install.exo_command()
A = "agent:one"


def commit(root: Path, *args: str, actor: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if actor:
        env["EXO_ACTOR"] = actor
    return subprocess.run(["git", "commit", *args], cwd=root, env=env, capture_output=True, text=True)


def trailers(root: Path) -> dict[str, str]:
    out = git(root, "log", "-1", "--format=%(trailers:only,unfold)")
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


@pytest.fixture
def hooked(governed: Path) -> Path:
    install.install(governed, git_hooks=True, claude=False, cursor=False, exe=EXE)
    return governed


def test_agent_without_a_session_is_refused(hooked: Path) -> None:
    (hooked / "src").mkdir()
    (hooked / "src/a.py").write_text("x\n")
    git(hooked, "add", "src/a.py")
    done = commit(hooked, "-m", "try", actor=A)
    assert done.returncode != 0
    assert "agent:one has no open exo session" in done.stderr


def test_in_scope_commit_is_stamped_and_bound_to_its_tree(hooked: Path) -> None:
    sid = sessions.start(hooked, A, ticket_id="T1").session.sid
    (hooked / "src").mkdir()
    (hooked / "src/a.py").write_text("x\n")
    git(hooked, "add", "src/a.py")
    done = commit(hooked, "-m", "add a", actor=A)
    assert done.returncode == 0, done.stderr
    stamp = trailers(hooked)
    assert stamp["Exo-Session"] == sid and stamp["Exo-Ticket"] == "T1" and stamp["Exo-Actor"] == A
    seq, digest = stamp["Exo-Audit"].split(":")
    record = json.loads((hooked / f".exo/audit/{sid}.jsonl").read_text().splitlines()[int(seq) - 1])
    assert record["h"] == digest and record["event"] == "commit.prepared"
    assert record["data"]["tree"] == git(hooked, "rev-parse", "HEAD^{tree}")
    assert record["data"]["parents"] == [git(hooked, "rev-parse", "HEAD^")]
    assert closeout.finish(hooked, A).ok  # the closeout commit passes its own hooks


def test_out_of_scope_staged_file_is_refused(hooked: Path) -> None:
    sessions.start(hooked, A, ticket_id="T1")
    (hooked / "docs").mkdir()
    (hooked / "docs/x.md").write_text("x\n")
    git(hooked, "add", "docs/x.md")
    done = commit(hooked, "-m", "stray", actor=A)
    assert done.returncode != 0
    assert "docs/x.md" in done.stderr and "exo:scope" in done.stderr


def test_commit_a_respects_the_index_git_commits_from(hooked: Path) -> None:
    sessions.start(hooked, A, ticket_id="T1")
    (hooked / "README.md").write_text("edited, not staged\n")
    done = commit(hooked, "-a", "-m", "all", actor=A)  # git commit -a stages into a temporary index
    assert done.returncode != 0 and "README.md" in done.stderr


def test_human_commit_is_stamped_with_its_actor(hooked: Path) -> None:
    (hooked / "notes.txt").write_text("x\n")
    git(hooked, "add", "notes.txt")
    done = commit(hooked, "-m", "human work")
    assert done.returncode == 0, done.stderr
    assert trailers(hooked) == {"Exo-Actor": "human:test@example.com"}


def test_no_verify_still_gets_stamped(hooked: Path) -> None:
    sessions.start(hooked, A, ticket_id="T1")
    (hooked / "docs").mkdir()
    (hooked / "docs/x.md").write_text("x\n")
    git(hooked, "add", "docs/x.md")
    done = commit(hooked, "--no-verify", "-m", "sneak", actor=A)
    assert done.returncode == 0  # pre-commit skipped: CI (exo doctor) is the backstop
    assert trailers(hooked)["Exo-Actor"] == A and "Exo-Audit" in trailers(hooked)


def test_install_is_idempotent_chains_and_uninstalls(governed: Path) -> None:
    hooks = governed / ".git/hooks"
    (hooks / "pre-commit").write_text('#!/bin/sh\necho user-hook-ran >> "$(git rev-parse --show-toplevel)/ran.txt"\n')
    (hooks / "pre-commit").chmod(0o755)
    first = install.install(governed, git_hooks=True, claude=False, cursor=False, exe=EXE)
    assert first.chained == [str(hooks / "pre-commit.exo-chained")]
    again = install.install(governed, git_hooks=True, claude=False, cursor=False, exe=EXE)
    assert again.changed == [] and len(again.unchanged) == 2
    (governed / "n.txt").write_text("x\n")
    git(governed, "add", "n.txt")
    assert commit(governed, "-m", "chained").returncode == 0
    assert (governed / "ran.txt").read_text() == "user-hook-ran\n"  # the user's hook still runs
    install.install(governed, git_hooks=True, claude=False, cursor=False, exe=EXE, uninstall=True)
    assert "user-hook-ran" in (hooks / "pre-commit").read_text()
    assert not (hooks / "prepare-commit-msg").exists()


def test_install_follows_core_hooks_path_and_worktrees(governed: Path) -> None:
    git(governed, "config", "core.hooksPath", ".githooks")
    install.install(governed, git_hooks=True, claude=False, cursor=False, exe=EXE)
    assert (governed / ".githooks/pre-commit").exists()
    git(governed, "config", "--unset", "core.hooksPath")
    other = governed.parent / "wt"
    git(governed, "worktree", "add", "-q", str(other), "-b", "wt")
    result = install.install(other, git_hooks=True, claude=False, cursor=False, exe=EXE)
    assert all(str(governed / ".git/hooks") in p for p in result.changed)  # hooks are shared by worktrees


def test_claude_and_cursor_configs_are_merged_without_losing_user_keys(governed: Path) -> None:
    settings = governed / ".claude/settings.json"
    settings.parent.mkdir()
    user = {
        "model": "opus",
        "hooks": {"PreToolUse": [{"matcher": "Read", "hooks": [{"type": "command", "command": "mine"}]}]},
    }
    settings.write_text(json.dumps(user))
    install.install(governed, git_hooks=False, claude=True, cursor=True, exe=EXE)
    install.install(governed, git_hooks=False, claude=True, cursor=True, exe=EXE)  # idempotent
    merged = json.loads(settings.read_text())
    assert merged["model"] == "opus"
    pre = merged["hooks"]["PreToolUse"]
    assert pre[0]["hooks"][0]["command"] == "mine" and len(pre) == 2
    assert pre[1]["matcher"] == "Write|Edit|MultiEdit|NotebookEdit|Bash"
    assert {"SessionStart", "Stop", "SessionEnd"} <= set(merged["hooks"])
    cursor = json.loads((governed / ".cursor/hooks.json").read_text())
    assert cursor["version"] == 1 and cursor["hooks"]["beforeShellExecution"] == [
        {"command": "exo hook cursor before-shell"}
    ]
    install.install(governed, git_hooks=False, claude=True, cursor=True, exe=EXE, uninstall=True)
    assert json.loads(settings.read_text()) == user


def test_invalid_json_config_is_left_alone(governed: Path) -> None:
    settings = governed / ".claude/settings.json"
    settings.parent.mkdir()
    settings.write_text("{not json")
    run = exo("hook-install", "--claude", cwd=governed)
    assert run.code == 3 and run.err.startswith("error[IO_ERROR]") and settings.read_text() == "{not json"


def test_amend_and_reused_messages_bind_the_right_parents(hooked: Path) -> None:
    sid = sessions.start(hooked, A, ticket_id="T1").session.sid
    (hooked / "src").mkdir()
    (hooked / "src/a.py").write_text("x\n")
    git(hooked, "add", "src/a.py")
    assert commit(hooked, "-m", "first", actor=A).returncode == 0
    first = git(hooked, "rev-parse", "HEAD")
    (hooked / "src/a.py").write_text("y\n")
    git(hooked, "add", "src/a.py")
    assert commit(hooked, "--amend", "--no-edit", actor=A).returncode == 0
    (hooked / "src/b.py").write_text("z\n")
    git(hooked, "add", "src/b.py")
    assert commit(hooked, "-C", first, actor=A).returncode == 0  # reuse a message, not an amend

    lines = (hooked / f".exo/audit/{sid}.jsonl").read_text().splitlines()
    for sha in (git(hooked, "rev-parse", "HEAD~1"), git(hooked, "rev-parse", "HEAD")):
        seq = int(git(hooked, "log", "-1", "--format=%(trailers:key=Exo-Audit,valueonly)", sha).split(":")[0])
        data = json.loads(lines[seq - 1])["data"]
        assert data["tree"] == git(hooked, "rev-parse", f"{sha}^{{tree}}")
        assert data["parents"] == git(hooked, "rev-parse", f"{sha}^@").split()
