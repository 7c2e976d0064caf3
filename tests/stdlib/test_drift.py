"""Drift corpus: one test per violation kind through real files in a real repository, uncommitted
work included; a clean session finishes and its records verify."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from exo.kernel import verify_audit
from exo.kernel.fs import audit_path
from exo.kernel.layout import CONSTITUTION
from exo.stdlib import audit, closeout, sessions, tickets
from tests.conftest import git, refusal

AGENT = "agent:one"


def start(root: Path, ticket: str = "T1") -> str:
    return sessions.start(root, AGENT, ticket_id=ticket).session.sid


def refused(close: Callable[[], object]) -> dict[str, str]:
    return {v.path: v.kind for v in refusal(close).drift.violations}


def write(root: Path, rel: str, text: str = "x\n") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_clean_session_finishes_and_its_records_verify(governed: Path) -> None:
    sid = start(governed)
    write(governed, "src/app.py", "print('hi')\n")
    git(governed, "add", "src/app.py")
    git(governed, "commit", "-qm", "app")
    write(governed, "src/util.py", "x = 1\ny = 2\n")  # uncommitted, untracked
    result = closeout.finish(governed, AGENT, summary="built it", follow_ups=["add tests"], set_status="done")
    assert result.outcome == "finished"
    assert result.drift.files == ["src/app.py", "src/util.py"]
    assert (result.drift.lines_added, result.drift.lines_removed, result.drift.score) == (3, 0, 0.0)
    committed = git(governed, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert sorted(committed) == sorted(
        [f".exo/sessions/{sid}.json", f".exo/mementos/{sid}.md", f".exo/audit/{sid}.jsonl", ".exo/tickets/T1.yaml"]
    )
    trailers = git(governed, "log", "-1", "--format=%(trailers:only,unfold)")
    assert f"Exo-Session: {sid}" in trailers and "Exo-Ticket: T1" in trailers and f"Exo-Actor: {AGENT}" in trailers
    assert result.audit is not None and f"Exo-Audit: {result.audit.seq}:{result.audit.h}" in trailers
    record = json.loads((governed / f".exo/sessions/{sid}.json").read_text())
    assert record["outcome"] == "finished" and record["summary"] == "built it"
    assert "add tests" in (governed / f".exo/mementos/{sid}.md").read_text()
    assert tickets.read(governed, "T1").status == "done"
    report = audit.verify(governed, [])
    assert report.ok and report.anchors_checked >= 1
    events = [json.loads(line)["event"] for line in (governed / f".exo/audit/{sid}.jsonl").read_text().splitlines()]
    assert events == ["session.started", "session.finished", "audit.sealed"]
    assert git(governed, "status", "--porcelain", "--", ".exo") == ""  # the records are committed
    assert "src/util.py" in git(governed, "status", "--porcelain")  # the user's own work is left alone


def test_out_of_scope_untracked_file(governed: Path) -> None:
    start(governed)
    write(governed, "docs/notes.md")
    assert refused(lambda: closeout.finish(governed, AGENT)) == {"docs/notes.md": "out_of_scope"}
    assert sessions.status(governed).current is not None  # left open


def test_out_of_scope_in_a_commit_that_was_reverted_in_the_worktree(governed: Path) -> None:
    start(governed)
    write(governed, "docs/sneaky.md")
    git(governed, "add", "docs/sneaky.md")
    git(governed, "commit", "-qm", "sneak")
    git(governed, "rm", "-q", "docs/sneaky.md")
    git(governed, "commit", "-qm", "hide")
    assert refused(lambda: closeout.finish(governed, AGENT)) == {"docs/sneaky.md": "out_of_scope"}


def test_out_of_scope_staged_and_unstaged_changes(governed: Path) -> None:
    start(governed)
    write(governed, "README.md", "changed, unstaged\n")
    write(governed, "docs/staged.md")
    git(governed, "add", "docs/staged.md")
    assert refused(lambda: closeout.finish(governed, AGENT)) == {
        "README.md": "out_of_scope",
        "docs/staged.md": "out_of_scope",
    }


def test_deleting_outside_the_scope(governed: Path) -> None:
    start(governed)
    (governed / "README.md").unlink()
    assert refused(lambda: closeout.finish(governed, AGENT)) == {"README.md": "out_of_scope"}


def test_denied_by_the_constitution(governed: Path) -> None:
    start(governed)
    write(governed, "src/.env", "SECRET=1\n")
    violations = refused(lambda: closeout.finish(governed, AGENT))
    assert violations == {"src/.env": "denied"}


def test_protected_paths_even_inside_the_scope(governed: Path) -> None:
    tickets.update(governed, "T1", {"scope": {"allow": ["**"], "deny": []}})
    git(governed, "commit", "-qam", "wide")
    start(governed)
    write(governed, ".gitattributes", "* -text\n")
    write(governed, ".github/workflows/ci.yml", "on: push\n")
    write(governed, ".claude/settings.json", "{}\n")
    assert refused(lambda: closeout.finish(governed, AGENT)) == {
        ".gitattributes": "protected",
        ".github/workflows/ci.yml": "protected",
        ".claude/settings.json": "protected",
    }


def test_budget_files_and_lines(governed: Path) -> None:
    tickets.update(governed, "T1", {"budget": {"max_files": 2, "max_lines": 10}})
    git(governed, "commit", "-qam", "budget")
    start(governed)
    for i in range(3):
        write(governed, f"src/f{i}.py", "line\n" * 5)
    result = refusal(lambda: closeout.finish(governed, AGENT))
    kinds = [v.kind for v in result.drift.violations]
    assert kinds == ["budget", "budget"]
    assert {v.path for v in result.drift.violations} == {"3 files", "15 lines"}
    assert 0 < result.drift.score <= 1


def test_symlink_pointing_out_of_scope(governed: Path) -> None:
    start(governed)
    (governed / "src").mkdir()
    os.symlink("../README.md", governed / "src/readme_link")
    os.symlink("/etc/passwd", governed / "src/passwd_link")
    assert refused(lambda: closeout.finish(governed, AGENT)) == {
        "src/readme_link": "symlink",
        "src/passwd_link": "symlink",
    }


def test_hook_tampering(governed: Path) -> None:
    start(governed)
    hook = governed / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\nexit 0\n")
    git(governed, "config", "core.hooksPath", "/dev/null")
    assert refused(lambda: closeout.finish(governed, AGENT)) == {
        ".git/hooks/pre-commit": "hook_tamper",
        "core.hooksPath": "hook_tamper",
    }


def test_ignored_files_count_only_when_protected_or_denied(governed: Path) -> None:
    write(governed, ".gitignore", "build/\n*.log\n.env*\n")
    git(governed, "add", ".gitignore")
    git(governed, "commit", "-qm", "ignore")
    start(governed)
    write(governed, "src/app.py")
    write(governed, "build/out.bin")  # ignored build output: reported, not a violation
    write(governed, "debug.log")
    write(governed, ".env.local", "TOKEN=1\n")  # ignored, but denied by the constitution
    result = refusal(lambda: closeout.finish(governed, AGENT))
    assert {v.path: v.kind for v in result.drift.violations} == {".env.local": "denied"}
    assert result.drift.ignored_written == [".env.local", "build/out.bin", "debug.log"]


def test_frozen_mid_session_blocks_finish(governed: Path) -> None:
    from exo.stdlib import freeze

    start(governed)
    write(governed, "src/app.py")
    freeze.freeze(governed, "human:ops@example.com", "incident")
    assert refused(lambda: closeout.finish(governed, AGENT)) == {"src/app.py": "frozen"}
    freeze.unfreeze(governed, "human:ops@example.com")
    assert closeout.finish(governed, AGENT).outcome == "finished"


def test_a_human_may_accept_drift_and_it_is_audited(governed: Path) -> None:
    sid = start(governed)
    write(governed, "docs/notes.md")
    with pytest.raises(Exception) as agent_tries:
        closeout.finish(governed, AGENT, accept_drift="trust me")
    assert getattr(agent_tries.value, "code", None) == "NOT_ALLOWED"
    result = closeout.finish(governed, "human:lead@example.com", accept_drift="notes agreed in review")
    assert result.outcome == "finished" and result.drift.violations
    events = [json.loads(x) for x in (governed / f".exo/audit/{sid}.jsonl").read_text().splitlines()]
    accepted = next(e for e in events if e["event"] == "drift.accepted")
    assert accepted["data"] == {
        "actor": "human:lead@example.com",
        "reason": "notes agreed in review",
        "violations": ["docs/notes.md"],
    }
    record = json.loads((governed / f".exo/sessions/{sid}.json").read_text())
    assert record["accepted_drift"] == "notes agreed in review"


def test_failing_checks_keep_the_session_open(governed: Path) -> None:
    (governed / CONSTITUTION).write_text(
        (governed / CONSTITUTION).read_text()
        + "\n```yaml exo-policy\nid: must-have-app\ntype: require_checks\ncommands: ['test -f src/app.py']\n```\n"
    )
    from exo.stdlib import governance

    governance.build(governed)
    git(governed, "commit", "-qam", "checks")
    start(governed)
    lines: list[str] = []
    result = refusal(lambda: closeout.finish(governed, AGENT, progress=lines.append), "CHECKS_FAILED")
    assert [c.passed for c in result.checks] == [False]
    assert any("check 1/1" in line for line in lines)  # live progress
    write(governed, "src/app.py")
    assert closeout.finish(governed, AGENT).outcome == "finished"


def test_every_finish_verifies_from_its_committed_anchor(governed: Path) -> None:
    sid = start(governed)
    assert closeout.finish(governed, AGENT).outcome == "finished"
    clone = governed.parent / "clone"  # no runtime copy of the stream there: only the committed files
    git(governed, "clone", "-q", str(governed), str(clone))
    stream = clone / f".exo/audit/{sid}.jsonl"
    stream.write_text("\n".join(stream.read_text().splitlines()[:-1]) + "\n")  # drop the seal
    assert not audit.verify(clone, []).ok
    assert verify_audit(clone).ok  # without the record's anchor the truncation would go unseen
    (governed / f".exo/audit/{sid}.jsonl").write_bytes(stream.read_bytes())
    assert "copy_mismatch" in {p.kind for p in verify_audit(governed).problems}  # where exo sealed it


def test_a_failed_closeout_commit_can_be_retried(governed: Path) -> None:
    sid = start(governed)
    write(governed, "src/app.py")
    lock = governed / ".git/refs/heads/main.lock"
    lock.write_text("held by another git\n")
    with pytest.raises(Exception) as caught:
        closeout.finish(governed, AGENT, summary="first try")
    assert getattr(caught.value, "code", None) == "IO_ERROR"
    assert sessions.status(governed).current is not None  # still open, records written, stream sealed
    lock.unlink()
    retried = closeout.finish(governed, AGENT, summary="first try")
    assert retried.outcome == "finished" and retried.commit
    assert f".exo/sessions/{sid}.json" in git(governed, "show", "--name-only", "--format=", "HEAD")
    assert audit.verify(governed, []).ok


def test_no_git_identity_is_caught_before_anything_is_sealed(governed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = start(governed)
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var)
    git(governed, "config", "--unset", "user.email")
    git(governed, "config", "user.useConfigOnly", "true")
    with pytest.raises(Exception) as caught:
        closeout.finish(governed, AGENT)
    assert getattr(caught.value, "code", None) == "IO_ERROR" and "identity" in str(caught.value)
    events = [json.loads(x)["event"] for x in audit_path(governed, sid).read_text().splitlines()]
    assert events == ["session.started"]


SETTINGS_ATTACKS = [
    ["config", "core.fsmonitor", "touch /tmp/exo-pwned"],
    ["config", "core.sshCommand", "touch /tmp/exo-pwned"],
    ["config", "core.pager", "touch /tmp/exo-pwned"],
    ["config", "core.editor", "touch /tmp/exo-pwned"],
    ["config", "core.attributesFile", "/tmp/attrs"],
    ["config", "core.excludesFile", "/tmp/excludes"],
    ["config", "alias.st", "!touch /tmp/exo-pwned"],
    ["config", "gpg.program", "/tmp/exo-pwned"],
    ["config", "filter.x.clean", "touch /tmp/exo-pwned"],
    ["config", "diff.x.textconv", "touch /tmp/exo-pwned"],
    ["config", "merge.x.driver", "touch /tmp/exo-pwned"],
    ["config", "include.path", "/tmp/evil.config"],
    ["config", "url./tmp/evil.insteadOf", "https://example.com/"],
    ["config", "extensions.worktreeConfig", "true"],
    ["config", "credential.helper", "!touch /tmp/exo-pwned"],
]


@pytest.mark.parametrize("setting", SETTINGS_ATTACKS, ids=[s[1] for s in SETTINGS_ATTACKS])
def test_sec9_a_git_setting_that_runs_code_is_refused_at_finish(governed: Path, setting: list[str]) -> None:
    start(governed)
    git(governed, *setting)
    assert refused(lambda: closeout.finish(governed, AGENT)) == {setting[1].lower(): "git_settings"}


@pytest.mark.parametrize("name", ["info/attributes", "info/exclude", "info/sparse-checkout", "config.worktree"])
def test_sec9_a_file_git_reads_settings_from_is_refused_at_finish(governed: Path, name: str) -> None:
    start(governed)
    target = governed / ".git" / name
    target.parent.mkdir(exist_ok=True)
    with target.open("a") as fh:
        fh.write("* filter=x\n")
    assert set(refused(lambda: closeout.finish(governed, AGENT)).values()) == {"git_settings"}


def test_limit_a_global_git_setting_is_not_compared_at_finish(governed: Path) -> None:
    """Residual (docs/security.md): the human's own ~/.gitconfig is outside the repository, so a
    code-running setting written there during the session is not seen at finish (under a sandbox
    it is read-only: tests/sandbox/test_attacks.py, case `config-global`)."""
    start(governed)
    git(governed, "config", "--global", "core.fsmonitor", "touch /tmp/exo-pwned")
    assert git(governed, "config", "--global", "core.fsmonitor") == "touch /tmp/exo-pwned"
    assert closeout.finish(governed, AGENT).outcome == "finished"


def test_ordinary_git_config_changes_are_not_drift(governed: Path) -> None:
    start(governed)
    git(governed, "config", "branch.main.remote", "origin")  # what `git push -u` writes
    git(governed, "config", "user.name", "Someone Else")
    assert closeout.finish(governed, AGENT).outcome == "finished"


@pytest.mark.parametrize("flag", ["--skip-worktree", "--assume-unchanged"])
def test_a_file_hidden_from_git_during_the_session_is_drift(governed: Path, flag: str) -> None:
    """`git update-index --skip-worktree` hides an edit from `git status`: drift names the flag."""
    start(governed)
    (governed / "README.md").write_text("edited where git no longer looks\n")
    git(governed, "update-index", flag, "README.md")
    assert refused(lambda: closeout.finish(governed, AGENT)) == {"README.md": "git_settings"}


def test_a_nested_repository_made_in_the_session_is_drift(governed: Path) -> None:
    """`git init` inside the scope makes a `.git` of its own (hooks and config that run code when a
    human works in it); git shows only the directory, drift names the `.git`."""
    start(governed)
    (governed / "src/inner").mkdir(parents=True)
    git(governed / "src/inner", "init", "-q")
    (governed / "src/inner/x.py").write_text("x = 1\n")
    assert refused(lambda: closeout.finish(governed, AGENT)).get("src/inner/.git") == "protected"


@pytest.mark.parametrize("untracked", [False, True], ids=["tracked", "untracked"])
def test_an_out_of_scope_edit_stashed_during_the_session_is_drift(governed: Path, untracked: bool) -> None:
    """Stashed, the edit leaves the worktree clean; popped after finish, it would land unanswered."""
    start(governed)
    if untracked:
        (governed / "docs").mkdir()
        (governed / "docs/new.md").write_text("hidden in the stash\n")
        git(governed, "stash", "push", "-u", "-q")
    else:
        (governed / "README.md").write_text("edited, then stashed\n")
        git(governed, "stash", "push", "-q")
    path = "docs/new.md" if untracked else "README.md"
    assert refused(lambda: closeout.finish(governed, AGENT)) == {path: "out_of_scope"}


def test_an_in_scope_stash_and_a_stash_from_before_the_session_are_not_drift(governed: Path) -> None:
    (governed / "README.md").write_text("a human's stash, before the session\n")
    git(governed, "stash", "push", "-q")
    start(governed)
    (governed / "src").mkdir()
    (governed / "src/a.py").write_text("a = 1\n")
    git(governed, "add", "src/a.py")
    git(governed, "stash", "push", "-q")
    git(governed, "stash", "pop", "-q")
    (governed / "src/b.py").write_text("b = 1\n")
    git(governed, "stash", "push", "-u", "-q")
    assert closeout.finish(governed, AGENT).outcome == "finished"
