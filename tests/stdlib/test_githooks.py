"""Git hooks end to end through a real `git commit`, and hook-install's chaining and merging."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from exo.kernel.fs import audit_path
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


def policy(root: Path) -> str:
    from exo.kernel import load_governance

    return load_governance(root).lock_sha256


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
    record = json.loads(audit_path(hooked, sid).read_text().splitlines()[int(seq) - 1])
    assert record["h"] == digest and record["event"] == "commit.prepared"
    assert record["data"]["tree"] == git(hooked, "rev-parse", "HEAD^{tree}")
    assert record["data"]["head"] == git(hooked, "rev-parse", "HEAD^")
    assert closeout.finish(hooked, A).outcome == "finished"  # the closeout commit passes its own hooks


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
    assert trailers(hooked) == {"Exo-Policy": policy(hooked), "Exo-Actor": "human:test@example.com"}


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
    assert pre[1]["matcher"] == "Write|Edit|MultiEdit|NotebookEdit|Bash|mcp__.*"  # other servers' tools too
    ours = pre[1]["hooks"][0]
    assert ours["command"] == f"{EXE} hook claude pre-tool-use" and ours["onFailure"] == "block"  # fails closed
    assert {"SessionStart", "Stop", "SessionEnd"} <= set(merged["hooks"])
    cursor = json.loads((governed / ".cursor/hooks.json").read_text())
    assert cursor["version"] == 1 and cursor["hooks"]["beforeShellExecution"] == [
        {"command": f"{EXE} hook cursor before-shell", "failClosed": True}
    ]
    install.install(governed, git_hooks=False, claude=True, cursor=True, exe=EXE, uninstall=True)
    assert json.loads(settings.read_text()) == user


def test_codex_and_gemini_hook_configs_gate_with_exit_2_and_keep_user_keys(governed: Path) -> None:
    gemini = governed / ".gemini/settings.json"
    gemini.parent.mkdir()
    gemini.write_text(
        json.dumps({"theme": "dark", "hooks": {"BeforeTool": [{"hooks": [{"type": "command", "command": "mine"}]}]}})
    )
    for _ in range(2):  # idempotent
        install.install(governed, git_hooks=False, claude=False, cursor=False, codex=True, gemini=True, exe=EXE)
    codex = json.loads((governed / ".codex/hooks.json").read_text())
    assert "version" not in codex
    [gate] = codex["hooks"]["PreToolUse"]
    assert gate["matcher"] == "Bash|apply_patch|mcp__.*"
    assert gate["hooks"][0]["command"] == f"{EXE} hook codex pre-tool-use || exit 2"  # a failing hook would let it run
    assert codex["hooks"]["SessionStart"][0]["hooks"][0]["command"] == f"{EXE} hook codex session-start"
    merged = json.loads(gemini.read_text())
    assert merged["theme"] == "dark" and merged["hooks"]["BeforeTool"][0]["hooks"][0]["command"] == "mine"
    ours = merged["hooks"]["BeforeTool"][1]
    assert ours["matcher"] == "write_file|replace|run_shell_command|mcp_.*"
    assert ours["hooks"][0]["command"].endswith("hook gemini pre-tool-use || exit 2")
    assert {"SessionStart", "AfterAgent"} <= set(merged["hooks"])
    install.install(
        governed, git_hooks=False, claude=False, cursor=False, codex=True, gemini=True, exe=EXE, uninstall=True
    )
    assert json.loads(gemini.read_text()) == {
        "theme": "dark",
        "hooks": {"BeforeTool": [{"hooks": [{"type": "command", "command": "mine"}]}]},
    }
    assert json.loads((governed / ".codex/hooks.json").read_text()) == {"hooks": {}}


def test_invalid_json_config_is_left_alone(governed: Path) -> None:
    settings = governed / ".claude/settings.json"
    settings.parent.mkdir()
    settings.write_text("{not json")
    run = exo("hook-install", "--claude", cwd=governed)
    assert run.code == 3 and run.err.startswith("error[IO_ERROR]") and settings.read_text() == "{not json"


def test_amend_and_reused_messages_bind_the_right_tree(hooked: Path) -> None:
    sid = sessions.start(hooked, A, ticket_id="T1").session.sid
    (hooked / "src").mkdir()
    (hooked / "src/a.py").write_text("x\n")
    git(hooked, "add", "src/a.py")
    assert commit(hooked, "-m", "first", actor=A).returncode == 0
    first = git(hooked, "rev-parse", "HEAD")
    (hooked / "src/a.py").write_text("y\n")
    git(hooked, "add", "src/a.py")
    assert commit(hooked, "--amend", "-m", "first, amended", actor=A).returncode == 0
    (hooked / "src/b.py").write_text("z\n")
    git(hooked, "add", "src/b.py")
    assert commit(hooked, "-C", first, actor=A).returncode == 0  # reuse a message, not an amend
    (hooked / "src/c.py").write_text("w\n")
    git(hooked, "add", "src/c.py")
    assert commit(hooked, "-C", "HEAD", actor=A).returncode == 0  # -C HEAD is a new commit too

    lines = audit_path(hooked, sid).read_text().splitlines()
    for sha in (
        git(hooked, "rev-parse", "HEAD~2"),
        git(hooked, "rev-parse", "HEAD~1"),
        git(hooked, "rev-parse", "HEAD"),
    ):
        stamp = git(hooked, "log", "-1", "--format=%(trailers:key=Exo-Audit,valueonly)", sha)
        data = json.loads(lines[int(stamp.split(":")[0]) - 1])["data"]
        assert data["tree"] == git(hooked, "rev-parse", f"{sha}^{{tree}}")


def _message_of(root: Path, rev: str = "HEAD") -> str:
    return git(root, "log", "-1", "--format=%B", rev)


def test_a_merge_message_gets_its_trailers_after_a_blank_line(hooked: Path) -> None:
    git(hooked, "checkout", "-q", "-b", "side")
    (hooked / "side.txt").write_text("side\n")
    git(hooked, "add", "side.txt")
    assert commit(hooked, "-m", "side").returncode == 0
    git(hooked, "checkout", "-q", "main")
    (hooked / "main.txt").write_text("main\n")
    git(hooked, "add", "main.txt")
    assert commit(hooked, "-m", "main").returncode == 0
    done = subprocess.run(["git", "merge", "--no-edit", "side"], cwd=hooked, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = f"Merge branch 'side'\n\nExo-Policy: {policy(hooked)}\nExo-Actor: human:test@example.com"
    assert _message_of(hooked) == expected
    assert trailers(hooked) == {"Exo-Policy": policy(hooked), "Exo-Actor": "human:test@example.com"}


def test_a_user_trailer_config_does_not_move_the_stamp(hooked: Path) -> None:
    git(hooked, "config", "trailer.where", "start")
    git(hooked, "config", "trailer.ifexists", "addIfDifferent")
    (hooked / "n.txt").write_text("x\n")
    git(hooked, "add", "n.txt")
    assert commit(hooked, "-m", "subject", "-m", "Signed-off-by: someone", actor="human:me@example.com").returncode == 0
    assert _message_of(hooked).splitlines()[-1] == "Exo-Actor: human:me@example.com"


def test_the_pre_commit_framework_passes_source_in_its_variables(hooked: Path) -> None:
    sid = sessions.start(hooked, A, ticket_id="T1").session.sid
    (hooked / "src").mkdir()
    (hooked / "src/a.py").write_text("x\n")
    git(hooked, "add", "src/a.py")
    message = hooked / ".git/COMMIT_EDITMSG"
    message.write_text("framework commit\n")
    env = {
        **os.environ,
        "EXO_ACTOR": A,
        "PRE_COMMIT_COMMIT_MSG_SOURCE": "commit",
        "PRE_COMMIT_COMMIT_OBJECT_NAME": "HEAD",
    }
    done = subprocess.run([*EXE.split(), "hook", "git", "prepare-commit-msg", str(message)], cwd=hooked, env=env)
    assert done.returncode == 0
    data = json.loads(audit_path(hooked, sid).read_text().splitlines()[-1])["data"]
    assert data["source"] == "commit" and data["tree"] == git(hooked, "write-tree")
    assert f"Exo-Session: {sid}" in message.read_text()


def test_a_human_rebase_keeps_the_agents_stamp_and_a_cherry_pick_is_stamped_anew(hooked: Path) -> None:
    sid = sessions.start(hooked, A, ticket_id="T1").session.sid
    git(hooked, "checkout", "-q", "-b", "work")
    (hooked / "src").mkdir()
    (hooked / "src/a.py").write_text("x\n")
    git(hooked, "add", "src/a.py")
    assert commit(hooked, "-m", "agent work", actor=A).returncode == 0
    assert closeout.finish(hooked, A, summary="done").outcome == "finished"
    git(hooked, "checkout", "-q", "main")
    (hooked / "main.txt").write_text("main moved on\n")
    git(hooked, "add", "main.txt")
    assert commit(hooked, "-m", "human work").returncode == 0
    rebased = subprocess.run(["git", "rebase", "-q", "main", "work"], cwd=hooked, capture_output=True, text=True)
    assert rebased.returncode == 0, rebased.stderr
    assert trailers(hooked)["Exo-Session"] == sid  # the closeout, replayed, still says whose it is
    assert trailers(hooked)["Exo-Actor"] == A
    assert git(hooked, "log", "-1", "--format=%(trailers:key=Exo-Actor,valueonly)", "HEAD~1") == A
    git(hooked, "checkout", "-q", "-b", "release", "main~1")
    picked = subprocess.run(["git", "cherry-pick", "work~1"], cwd=hooked, capture_output=True, text=True)
    assert picked.returncode == 0, picked.stderr
    assert trailers(hooked) == {
        "Exo-Policy": policy(hooked),
        "Exo-Actor": "human:test@example.com",
    }  # the picker's commit now


def test_every_stamp_names_the_policy_it_was_made_under(hooked: Path) -> None:
    """Exo-Policy: the governance lock's hash — the one in force for a human's commit, the one the
    session pinned at its start for the session's commits and its closeout."""
    from exo.kernel import load_governance

    lock = load_governance(hooked).lock_sha256
    (hooked / "NOTES.md").write_text("x\n")
    git(hooked, "add", "NOTES.md")
    assert commit(hooked, "-m", "notes").returncode == 0
    assert trailers(hooked)["Exo-Policy"] == lock
    pinned = sessions.start(hooked, "agent:one", ticket_id="T1").session
    (hooked / "src").mkdir()
    (hooked / "src/app.py").write_text("x\n")
    git(hooked, "add", "src/app.py")
    assert commit(hooked, "-m", "app", actor="agent:one").returncode == 0
    assert trailers(hooked)["Exo-Policy"] == lock
    assert closeout.finish(hooked, "agent:one", summary="app").outcome == "finished"
    assert trailers(hooked)["Exo-Policy"] == lock and trailers(hooked)["Exo-Session"] == pinned.sid
