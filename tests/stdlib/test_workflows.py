"""WF-1: the team workflow matrix, with real git, a bare remote, a forge and fresh CI clones.

Every legitimate history must pass `exo doctor` over the ranges CI uses — a pull request's head
against its base (`BASE...HEAD`), the forge's test-merge commit (`BASE..MERGE`) and the push to
main (`BEFORE..AFTER`) — and every smuggled change must fail with the code that names it. The
forge is a clone with hooks off and the forge's identity: what it makes carries no exo stamp.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exo.stdlib import closeout, install, scaffold, sessions, tickets
from tests.conftest import exo, refusal

EXE = install.exo_command()
A, B = "agent:one", "agent:two"
HUMAN = "human:test@example.com"
FORGE = {
    "GIT_AUTHOR_NAME": "Forge",
    "GIT_AUTHOR_EMAIL": "noreply@forge.example",
    "GIT_COMMITTER_NAME": "Forge",
    "GIT_COMMITTER_EMAIL": "noreply@forge.example",
}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout.strip()


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def commit(root: Path, message: str, *paths: str, actor: str | None = None, flags: tuple[str, ...] = ()) -> str:
    """`git add` + `git commit` through the installed hooks, as `actor` (a human when None)."""
    if paths:
        git(root, "add", "--", *paths)
    git(root, "commit", "-q", *flags, "-m", message, env={"EXO_ACTOR": actor} if actor else None)
    return git(root, "rev-parse", "HEAD")


class Team:
    """A bare remote, the maintainer's clone with exo adopted, and helpers for agents, forge and CI."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.remote = tmp / "origin.git"
        git(tmp, "init", "-q", "--bare", "-b", "main", str(self.remote))
        self.main = self.clone("maintainer", hooks=False)
        write(self.main, "README.md", "# project\n")
        write(self.main, "src/app.py", "def app():\n    return 1\n")
        write(self.main, "docs/guide.md", "# Guide\n\nIntro.\n")
        commit(self.main, "the project before exo", "README.md", "src/app.py", "docs/guide.md")
        scaffold.init_repo(self.main)
        install.install(self.main, git_hooks=True, claude=False, cursor=False, exe=EXE)
        for ticket, scope in (("T1", "src/**"), ("T2", "docs/**"), ("T3", "lib/**")):
            tickets.create(self.main, HUMAN, title=f"work on {scope}", scope=[scope], ticket_id=ticket)
        commit(self.main, "adopt exo", ".exo")
        git(self.main, "push", "-q", "origin", "main")

    def clone(self, name: str, *, hooks: bool = True) -> Path:
        path = self.tmp / name
        git(self.tmp, "clone", "-q", str(self.remote), str(path))
        git(path, "config", "user.email", "test@example.com")
        git(path, "config", "user.name", "Test User")
        if hooks:
            install.install(path, git_hooks=True, claude=False, cursor=False, exe=EXE)
        return path

    def worktree(self, branch: str, start: str = "main") -> Path:
        path = self.tmp / f"wt-{branch}"
        git(self.main, "worktree", "add", "-q", "-b", branch, str(path), start)
        return path

    @contextmanager
    def session(self, where: Path, actor: str, ticket: str, **finish: object) -> Iterator[str]:
        """An agent's session in `where`: yields its id; finishes (and must pass) on the way out."""
        sid = sessions.start(where, actor, ticket_id=ticket).session.sid
        yield sid
        result = closeout.finish(where, actor, summary=f"work on {ticket}", **finish)  # type: ignore[arg-type]
        assert result.outcome == "finished"

    def work(self, where: Path, actor: str, ticket: str, files: dict[str, str]) -> str:
        """A whole session: write `files`, commit them through the hooks, finish. Returns the sid."""
        with self.session(where, actor, ticket) as sid:
            for rel, text in files.items():
                write(where, rel, text)
            commit(where, f"{ticket}: {', '.join(files)}", *files, actor=actor)
        return sid

    def forge(self) -> Path:
        """The forge's side: a clone with hooks off that makes commits as the forge."""
        path = self.tmp / "forge"
        if not path.exists():
            path = self.clone("forge", hooks=False)
            git(path, "config", "core.hooksPath", "/dev/null")
            git(path, "config", "user.email", FORGE["GIT_COMMITTER_EMAIL"])
            git(path, "config", "user.name", "Forge")
        git(path, "fetch", "-q", "origin")
        git(path, "checkout", "-q", "-B", "main", "origin/main")
        return path

    def tip(self, ref: str = "main") -> str:
        return git(self.main, "ls-remote", str(self.remote), f"refs/heads/{ref}").split()[0]

    def ci(self, *, fetch: tuple[str, ...] = (), depth: int | None = None) -> Path:
        """A fresh CI clone of the remote (all branches as origin/*)."""
        path = self.tmp / f"ci-{len(list(self.tmp.glob('ci-*')))}"
        args = ["clone", "-q", "--no-local", *(["--depth", str(depth)] if depth else []), str(self.remote), str(path)]
        git(self.tmp, *args)
        for sha in fetch:
            git(path, "fetch", "-q", "origin", sha)
        return path


def doctor(clone: Path, commit_range: str | None = None) -> tuple[int, set[str]]:
    """`exo doctor --json` as CI runs it: exit code and problem codes."""
    args = ["doctor", "--json", *(["--range", commit_range] if commit_range else [])]
    run = exo(*args, cwd=clone)
    assert run.code in (0, 1), run.err
    report = json.loads(run.out)
    return run.code, {p["code"] for p in report["problems"]}


def pull_request(team: Team, branch: str) -> dict[str, tuple[int, set[str]]]:
    """What a pull-request job sees: the PR head against its base, and the forge's test-merge commit."""
    base = team.tip("main")
    clone = team.ci()
    head = git(clone, "rev-parse", f"origin/{branch}")
    out = {"pr-head": doctor(clone, f"{base}...{head}")}
    git(clone, "checkout", "-q", "--detach", base)
    git(clone, "-c", "core.hooksPath=/dev/null", "merge", "-q", "--no-ff", "--no-edit", head, env=FORGE)
    out["test-merge"] = doctor(clone, f"{base}..HEAD")
    return out


def push(team: Team, before: str) -> tuple[int, set[str]]:
    """What a push job sees after main moved from `before`."""
    return doctor(team.ci(), f"{before}..{team.tip('main')}")


def green(team: Team, branch: str | None, merge: object) -> None:
    """The PR of `branch` passes; `merge()` lands it on main; the push passes."""
    if branch is not None:
        for job, verdict in pull_request(team, branch).items():
            assert verdict == (0, set()), (job, verdict)
    before = team.tip("main")
    merge()  # type: ignore[operator]
    assert push(team, before) == (0, set())


def forge_merge(team: Team, branch: str, how: str = "merge", message: str | None = None) -> None:
    forge = team.forge()
    git(forge, "fetch", "-q", "origin", branch)
    head = f"origin/{branch}"
    if how == "merge":
        git(forge, "merge", "-q", "--no-ff", "-m", message or f"Merge pull request #1 from {branch}", head, env=FORGE)
    elif how == "squash":
        git(forge, "merge", "-q", "--squash", head, env=FORGE)
        if message is None:  # the forge's default: every commit message of the branch
            message = "Pull request #1\n\n" + git(forge, "log", "--format=* %B", f"main..{head}")
        git(forge, "commit", "-q", "-m", message, env=FORGE)
    else:  # rebase and merge: the branch's commits replayed onto main, messages kept
        git(forge, "checkout", "-q", "-B", "pr", head)
        git(forge, "rebase", "-q", "main", env=FORGE)
        git(forge, "checkout", "-q", "main")
        git(forge, "merge", "-q", "--ff-only", "pr")
    git(forge, "push", "-q", "origin", "main")


def push_branch(where: Path, branch: str) -> None:
    git(where, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")


def local_merge(team: Team, branch: str, *flags: str) -> None:
    """A human merges on main in the maintainer's clone and pushes."""
    git(team.main, "checkout", "-q", "main")
    git(team.main, "pull", "-q", "--ff-only", "origin", "main")
    git(team.main, "merge", "-q", *flags, branch)
    git(team.main, "push", "-q", "origin", "main")


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return Team(tmp_path)


# --- legitimate: merges


def test_fast_forward(team: Team) -> None:
    wt = team.worktree("ff")
    team.work(wt, A, "T1", {"src/app.py": "def app():\n    return 2\n"})
    push_branch(wt, "ff")
    green(team, "ff", lambda: local_merge(team, "ff", "--ff-only"))


def test_no_ff_merge_and_no_edit(team: Team) -> None:
    one, two = team.worktree("one"), team.worktree("two")
    team.work(one, A, "T1", {"src/feature.py": "x = 1\n"})
    team.work(two, B, "T2", {"docs/more.md": "more\n"})
    push_branch(one, "one")
    push_branch(two, "two")
    green(team, "one", lambda: local_merge(team, "one", "--no-ff", "--no-edit"))
    green(team, "two", lambda: local_merge(team, "two", "--no-edit"))  # main moved on: a real merge
    message = git(team.main, "log", "-1", "--format=%B")
    assert message.startswith("Merge branch 'two'\n\nExo-Policy: ") and "\nExo-Actor: human:" in message


def test_octopus_merge(team: Team) -> None:
    one, two, three = team.worktree("one"), team.worktree("two"), team.worktree("three")
    team.work(one, A, "T1", {"src/a.py": "a\n"})
    team.work(two, B, "T2", {"docs/b.md": "b\n"})
    team.work(three, "agent:three", "T3", {"lib/c.py": "c\n"})

    def octopus() -> None:
        git(team.main, "merge", "-q", "--no-edit", "one", "two", "three")
        git(team.main, "push", "-q", "origin", "main")

    green(team, None, octopus)
    assert len(git(team.main, "log", "-1", "--format=%P").split()) == 3


def test_pull_that_merges(team: Team) -> None:
    wt = team.worktree("agent")
    team.work(wt, A, "T1", {"src/new.py": "new\n"})
    push_branch(wt, "agent")
    local_merge(team, "agent", "--no-ff", "--no-edit")
    before = team.tip()
    git(wt, "checkout", "-q", "-b", "later", "origin/main~1")  # behind main, with work of its own
    team.work(wt, A, "T2", {"docs/pulled.md": "pulled\n"})
    git(wt, "pull", "-q", "--no-rebase", "--no-edit", "origin", "main")
    git(wt, "push", "-q", "origin", "HEAD:main")
    assert push(team, before) == (0, set())


def test_a_conflict_a_human_resolves(team: Team) -> None:
    wt = team.worktree("agent")
    team.work(wt, A, "T1", {"src/app.py": "def app():\n    return 'agent'\n"})
    write(team.main, "src/app.py", "def app():\n    return 'human'\n")
    commit(team.main, "human edit", "src/app.py")
    git(team.main, "push", "-q", "origin", "main")
    push_branch(wt, "agent")
    before = team.tip()
    merged = subprocess.run(["git", "merge", "-q", "agent"], cwd=team.main, capture_output=True, text=True)
    assert merged.returncode != 0  # a conflict
    write(team.main, "src/app.py", "def app():\n    return 'both'\n")
    git(team.main, "add", "src/app.py")
    git(team.main, "commit", "-q", "--no-edit")
    git(team.main, "push", "-q", "origin", "main")
    assert push(team, before) == (0, set())


# --- legitimate: what a forge does


def test_forge_merge_commit(team: Team) -> None:
    wt = team.worktree("pr")
    team.work(wt, A, "T1", {"src/pr.py": "pr\n"})
    push_branch(wt, "pr")
    write(team.main, "docs/meanwhile.md", "main moved on\n")
    commit(team.main, "meanwhile", "docs/meanwhile.md")
    git(team.main, "push", "-q", "origin", "main")
    green(team, "pr", lambda: forge_merge(team, "pr"))


@pytest.mark.parametrize("message", ["Add the feature (#1)", None], ids=["title-only", "default-message"])
def test_forge_squash_of_one_session(team: Team, message: str | None) -> None:
    wt = team.worktree("pr")
    with team.session(wt, A, "T1"):
        write(wt, "src/one.py", "one\n")
        commit(wt, "one", "src/one.py", actor=A)
        write(wt, "src/one.py", "one, better\n")
        write(wt, "src/two.py", "two\n")
        commit(wt, "two", "src/one.py", "src/two.py", actor=A)
    push_branch(wt, "pr")
    green(team, "pr", lambda: forge_merge(team, "pr", "squash", message))


def test_forge_squash_of_two_sessions_on_different_tickets(team: Team) -> None:
    wt = team.worktree("pr")
    team.work(wt, A, "T1", {"src/code.py": "code\n"})
    team.work(wt, B, "T2", {"docs/code.md": "docs for the code\n"})
    push_branch(wt, "pr")
    green(team, "pr", lambda: forge_merge(team, "pr", "squash", "Code and docs (#2)"))


def test_forge_rebase_merge_after_main_advanced(team: Team) -> None:
    wt = team.worktree("pr")
    team.work(wt, A, "T1", {"src/app.py": "def app():\n    return 1\n\n\ndef more():\n    return 2\n"})
    push_branch(wt, "pr")
    write(team.main, "src/app.py", "# the app\ndef app():\n    return 1\n")  # same file, another place
    commit(team.main, "a human edits the same file", "src/app.py")
    git(team.main, "push", "-q", "origin", "main")
    green(team, "pr", lambda: forge_merge(team, "pr", "rebase"))
    git(team.main, "fetch", "-q", "origin")
    landed = git(team.main, "show", "origin/main:src/app.py")
    assert landed.startswith("# the app") and "def more" in landed  # a three-way merge neither side made


# --- legitimate: rewriting commits inside and after a session


@pytest.mark.parametrize("how", ["-m", "-F", "--no-edit"])
def test_amend_in_a_session(team: Team, how: str, tmp_path: Path) -> None:
    wt = team.worktree("amend")
    with team.session(wt, A, "T1"):
        write(wt, "src/a.py", "first\n")
        commit(wt, "first", "src/a.py", actor=A)
        write(wt, "src/a.py", "second\n")
        git(wt, "add", "src/a.py")
        (tmp_path / "msg").write_text("amended from a file\n")
        flags = {"-m": ["-m", "amended"], "-F": ["-F", str(tmp_path / "msg")], "--no-edit": ["--no-edit"]}[how]
        git(wt, "commit", "-q", "--amend", *flags, env={"EXO_ACTOR": A})
    push_branch(wt, "amend")
    green(team, "amend", lambda: forge_merge(team, "amend"))


def test_reuse_a_message_with_dash_c_head(team: Team) -> None:
    wt = team.worktree("reuse")
    with team.session(wt, A, "T1"):
        write(wt, "src/a.py", "a\n")
        commit(wt, "a", "src/a.py", actor=A)
        write(wt, "src/b.py", "b\n")
        git(wt, "add", "src/b.py")
        git(wt, "commit", "-q", "-C", "HEAD", env={"EXO_ACTOR": A})
    push_branch(wt, "reuse")
    green(team, "reuse", lambda: forge_merge(team, "reuse"))


def test_fixup_and_autosquash(team: Team) -> None:
    wt = team.worktree("fixup")
    with team.session(wt, A, "T1"):
        write(wt, "src/a.py", "a\n")
        first = commit(wt, "a", "src/a.py", actor=A)
        write(wt, "src/b.py", "b\n")
        commit(wt, "b", "src/b.py", actor=A)
        write(wt, "src/a.py", "a, fixed\n")
        commit(wt, "fixup", "src/a.py", actor=A, flags=("--fixup", first))
        git(wt, "rebase", "-q", "-i", "--autosquash", "main", env={"GIT_SEQUENCE_EDITOR": "true", "EXO_ACTOR": A})
    push_branch(wt, "fixup")
    green(team, "fixup", lambda: forge_merge(team, "fixup"))


def _main_moves_on(team: Team) -> None:
    write(team.main, "docs/news.md", "news\n")
    commit(team.main, "news on main", "docs/news.md")
    git(team.main, "push", "-q", "origin", "main")


def test_agent_rebases_inside_its_session(team: Team) -> None:
    wt = team.worktree("rebase")
    with team.session(wt, A, "T1"):
        write(wt, "src/a.py", "a\n")
        commit(wt, "a", "src/a.py", actor=A)
        _main_moves_on(team)
        git(wt, "rebase", "-q", "main", env={"EXO_ACTOR": A})  # main's commit is not the session's drift
    push_branch(wt, "rebase")
    green(team, "rebase", lambda: local_merge(team, "rebase", "--ff-only"))


def test_agent_rebases_after_its_session(team: Team) -> None:
    wt = team.worktree("rebase")
    team.work(wt, A, "T1", {"src/a.py": "a\n"})
    _main_moves_on(team)
    git(wt, "rebase", "-q", "main", env={"EXO_ACTOR": A})
    push_branch(wt, "rebase")
    green(team, "rebase", lambda: local_merge(team, "rebase", "--ff-only"))


def test_a_human_rebases_the_agents_branch(team: Team) -> None:
    wt = team.worktree("rebase")
    sid = team.work(wt, A, "T1", {"src/a.py": "a\n"})
    _main_moves_on(team)
    git(wt, "rebase", "-q", "main")  # a human, in the agent's worktree once its session is over
    assert git(wt, "log", "-1", "--format=%(trailers:key=Exo-Session,valueonly)") == sid
    assert git(wt, "log", "-1", "--format=%(trailers:key=Exo-Actor,valueonly)", "HEAD~1") == A
    push_branch(wt, "rebase")
    green(team, "rebase", lambda: local_merge(team, "rebase", "--ff-only"))


@pytest.mark.parametrize("closeout_too", [True, False], ids=["with-closeout", "without-closeout"])
def test_a_human_cherry_picks_onto_a_release_branch(team: Team, closeout_too: bool) -> None:
    git(team.main, "push", "-q", "origin", "main:release")
    wt = team.worktree("agent")
    team.work(wt, A, "T1", {"src/fix.py": "fix\n"})
    before = team.tip("release")
    git(team.main, "fetch", "-q", "origin")
    git(team.main, "checkout", "-q", "-b", "release", "origin/release")
    git(team.main, "cherry-pick", "agent~1", *(["agent"] if closeout_too else []))
    git(team.main, "push", "-q", "origin", "release")
    assert doctor(team.ci(), f"{before}..{team.tip('release')}") == (0, set())


def test_git_am_of_an_agents_patches(team: Team, tmp_path: Path) -> None:
    wt = team.worktree("agent")
    team.work(wt, A, "T1", {"src/mailed.py": "mailed\n"})
    patches = tmp_path / "patches"
    git(wt, "format-patch", "-q", "-o", str(patches), "main..agent")
    before = team.tip()
    git(team.main, "am", "-q", *sorted(str(p) for p in patches.iterdir()))
    git(team.main, "push", "-q", "origin", "main")
    assert push(team, before) == (0, set())


def test_reverts_by_a_human_and_by_an_agent_in_a_session(team: Team) -> None:
    wt = team.worktree("agent")
    team.work(wt, A, "T1", {"src/a.py": "a\n"})
    with team.session(wt, B, "T1"):
        git(wt, "revert", "--no-edit", "HEAD~1", env={"EXO_ACTOR": B})  # the agent's own revert, in a session
    push_branch(wt, "agent")
    green(team, "agent", lambda: local_merge(team, "agent", "--no-ff", "--no-edit"))
    before = team.tip()
    git(team.main, "revert", "--no-edit", "HEAD^2~1")  # a human reverts the agent's revert
    git(team.main, "push", "-q", "origin", "main")
    assert push(team, before) == (0, set())


def test_a_human_reverts_a_merged_pull_request_and_keeps_its_records(team: Team) -> None:
    wt = team.worktree("agent")
    team.work(wt, A, "T1", {"src/a.py": "a\n"})
    push_branch(wt, "agent")
    forge_merge(team, "agent")
    git(team.main, "pull", "-q", "--ff-only", "origin", "main")
    before = team.tip()
    git(team.main, "revert", "--no-edit", "-m", "1", "HEAD")
    git(team.main, "push", "-q", "origin", "main")
    _smuggled(push(team, before), "RECORD_REWRITTEN")  # the records went with the content...
    git(team.main, "checkout", "HEAD~1", "--", ".exo/sessions", ".exo/mementos", ".exo/audit")
    git(team.main, "commit", "-q", "--amend", "--no-edit")  # ...so keep them: sessions happened
    git(team.main, "push", "-q", "--force", "origin", "main")
    assert push(team, before) == (0, set())
    assert not (team.main / "src/a.py").exists()


def test_stash_and_pop_in_a_session(team: Team) -> None:
    wt = team.worktree("stash")
    with team.session(wt, A, "T1"):
        write(wt, "src/a.py", "a\n")
        write(wt, "src/b.py", "b, for later\n")
        git(wt, "stash", "-u")
        write(wt, "src/a.py", "a first\n")
        commit(wt, "a first", "src/a.py", actor=A)
        git(wt, "stash", "pop", check=False)
        git(wt, "checkout", "--theirs", "--", "src/a.py", check=False)
        write(wt, "src/a.py", "a first\n")
        commit(wt, "b", "src/a.py", "src/b.py", actor=A)
    push_branch(wt, "stash")
    green(team, "stash", lambda: forge_merge(team, "stash"))


# --- legitimate: people and sessions


def test_takeover_in_the_same_worktree(team: Team) -> None:
    wt = team.worktree("takeover")
    t0 = datetime.now(UTC)
    dead = sessions.start(wt, A, ticket_id="T1", now=t0).session
    write(wt, "src/half.py", "half done\n")
    commit(wt, "half", "src/half.py", actor=A)
    later = dead.expires_at + timedelta(seconds=1)
    taken = sessions.start(wt, B, ticket_id="T1", now=later)
    assert taken.abandoned == [dead.sid]
    write(wt, "src/half.py", "done\n")
    commit(wt, "done", "src/half.py", actor=B)
    assert closeout.finish(wt, B, summary="finished what agent:one began", now=later).outcome == "finished"
    shipped = git(wt, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert f".exo/sessions/{dead.sid}.json" in shipped  # the abandoned session's record, sealed
    push_branch(wt, "takeover")
    green(team, "takeover", lambda: forge_merge(team, "takeover"))


def test_handoff(team: Team) -> None:
    wt = team.worktree("handoff")
    sessions.start(wt, A, ticket_id="T1")
    write(wt, "src/begun.py", "begun\n")
    commit(wt, "begun", "src/begun.py", actor=A)
    handed = closeout.handoff(wt, A, to=B, summary="half done", next_steps=["finish it"])
    assert handed.outcome == "handed_off"
    with team.session(wt, B, "T1"):
        write(wt, "src/begun.py", "finished\n")
        commit(wt, "finished", "src/begun.py", actor=B)
    push_branch(wt, "handoff")
    green(team, "handoff", lambda: forge_merge(team, "handoff"))


def test_human_commits_on_main_while_sessions_run(team: Team) -> None:
    one, two = team.worktree("one"), team.worktree("two")
    before = team.tip()
    with team.session(one, A, "T1"), team.session(two, B, "T2"):
        write(one, "src/x.py", "x\n")
        commit(one, "x", "src/x.py", actor=A)
        write(team.main, "NOTES.md", "a human's notes\n")
        commit(team.main, "notes", "NOTES.md")
        write(two, "docs/y.md", "y\n")
        commit(two, "y", "docs/y.md", actor=B)
        write(team.main, "src/app.py", "def app():\n    return 'human'\n")
        commit(team.main, "a human edits src too", "src/app.py")
    git(team.main, "merge", "-q", "--no-edit", "one", "two")
    git(team.main, "push", "-q", "origin", "main")
    assert push(team, before) == (0, set())


def test_a_branch_from_before_exo_was_installed(team: Team) -> None:
    old = git(team.main, "rev-list", "--max-parents=0", "HEAD")
    git(team.main, "checkout", "-q", "-b", "ancient", old)
    write(team.main, "legacy.txt", "written before exo\n")
    git(team.main, "-c", "core.hooksPath=/dev/null", "add", "legacy.txt")
    git(team.main, "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", "old work")
    git(team.main, "push", "-q", "origin", "ancient")
    git(team.main, "checkout", "-q", "main")
    green(team, "ancient", lambda: forge_merge(team, "ancient"))


def test_two_branches_that_compiled_governance_and_froze_merge_without_losing_an_event(team: Team) -> None:
    from exo.stdlib import freeze, governance

    before = team.tip()
    events: set[str] = set()
    for branch, pattern in (("rules-a", "*.secret"), ("rules-b", "*.dump")):
        git(team.main, "checkout", "-q", "-b", branch, "main")
        constitution = team.main / ".exo/CONSTITUTION.md"
        top = "" if branch == "rules-a" else "\n"
        block = f'{top}```yaml exo-policy\nid: {branch}\ntype: filesystem_deny\npatterns: ["{pattern}"]\n```\n\n'

        text = constitution.read_text()
        constitution.write_text(block + text if branch == "rules-a" else text + block)
        governance.build(team.main)
        freeze.freeze(team.main, HUMAN, f"checking {branch}")
        freeze.unfreeze(team.main, HUMAN)
        commit(team.main, f"{branch}: a rule, a drill", ".exo")
        events |= {p.name for p in (team.main / ".exo/audit").glob("ev-*.jsonl")}
    git(team.main, "checkout", "-q", "main")
    git(team.main, "merge", "-q", "--no-edit", "rules-a")
    merged = subprocess.run(["git", "merge", "--no-edit", "rules-b"], cwd=team.main, capture_output=True, text=True)
    conflicts = git(team.main, "diff", "--name-only", "--diff-filter=U").split()
    assert conflicts == [".exo/governance.lock.json"] and merged.returncode != 0  # the lock alone: it is compiled
    governance.build(team.main)  # resolve it the one right way: compile the merged constitution
    git(team.main, "add", ".exo")
    git(team.main, "commit", "-q", "--no-edit")
    assert {p.name for p in (team.main / ".exo/audit").glob("ev-*.jsonl")} >= events  # every event kept
    assert len(events) == 1 + 2 * 3  # adoption's compile; each branch: compile, freeze, unfreeze
    git(team.main, "push", "-q", "origin", "main")
    assert push(team, before) == (0, set())


# --- smuggled


def _smuggled(verdict: tuple[int, set[str]], *codes: str) -> None:
    assert verdict[0] == 1 and set(codes) <= verdict[1], verdict


def test_an_evil_merge(team: Team) -> None:
    wt = team.worktree("agent")
    team.work(wt, A, "T1", {"src/a.py": "a\n"})
    _main_moves_on(team)
    before = team.tip()
    git(team.main, "-c", "core.hooksPath=/dev/null", "merge", "-q", "--no-commit", "--no-ff", "agent")
    write(team.main, "docs/evil.md", "neither parent has this\n")
    git(team.main, "add", "docs/evil.md")
    git(team.main, "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", "Merge pull request #3", env=FORGE)
    git(team.main, "push", "-q", "origin", "main")
    _smuggled(push(team, before), "CONTENT_UNGOVERNED")


def test_a_squash_padded_with_an_unsessioned_file(team: Team) -> None:
    wt = team.worktree("pr")
    team.work(wt, A, "T1", {"src/ok.py": "ok\n"})
    push_branch(wt, "pr")
    forge = team.forge()
    before = team.tip()
    git(forge, "fetch", "-q", "origin", "pr")
    git(forge, "merge", "-q", "--squash", "origin/pr", env=FORGE)
    write(forge, "src/padding.py", "nobody's session wrote this\n")
    git(forge, "add", "src/padding.py")
    git(forge, "commit", "-q", "-m", "Squashed (#4)", env=FORGE)
    git(forge, "push", "-q", "origin", "main")
    _smuggled(push(team, before), "CONTENT_UNGOVERNED")


def test_an_amended_closeout_carrying_governance_changes(team: Team) -> None:
    wt = team.worktree("agent")
    team.work(wt, A, "T1", {"src/a.py": "a\n"})
    constitution = wt / ".exo/CONSTITUTION.md"
    constitution.write_text(constitution.read_text().replace('actors: ["agent:*"]', 'actors: ["nobody:*"]'))
    from exo.stdlib import governance

    governance.build(wt)
    git(wt, "add", ".exo")
    git(wt, "commit", "-q", "--amend", "--no-edit", "--no-verify", env={"EXO_ACTOR": A})
    push_branch(wt, "agent")
    for job, verdict in pull_request(team, "agent").items():
        assert verdict[0] == 1 and "CONTENT_UNGOVERNED" in verdict[1], (job, verdict)


@pytest.mark.parametrize("edit", ["accepted_drift", "scope", "drift", "memento", "delete-session"])
def test_a_later_commit_edits_or_deletes_a_record(team: Team, edit: str) -> None:
    wt = team.worktree("agent")
    sid = team.work(wt, A, "T1", {"src/a.py": "a\n"})
    local_merge(team, "agent", "--ff-only")
    before = team.tip()
    path = team.main / f".exo/sessions/{sid}.json"
    record = json.loads(path.read_text())
    if edit == "accepted_drift":
        record["accepted_drift"] = "fine by me"
    elif edit == "scope":
        record["scope_allow"] = ["**"]
    elif edit == "drift":
        record["drift"]["violations"] = []
        record["drift"]["files"] = []
    if edit == "memento":
        memento = team.main / f".exo/mementos/{sid}.md"
        memento.write_text(memento.read_text().replace("work on T1", "nothing to see"))
    elif edit == "delete-session":
        for rel in (f".exo/sessions/{sid}.json", f".exo/mementos/{sid}.md", f".exo/audit/{sid}.jsonl"):
            (team.main / rel).unlink()
    else:
        path.write_text(json.dumps(record, indent=2) + "\n")
    git(team.main, "add", "-A", ".exo")
    git(team.main, "commit", "-q", "--no-verify", "-m", "tidy records")
    git(team.main, "push", "-q", "origin", "main")
    _smuggled(push(team, before), "RECORD_REWRITTEN")


def _legacy_repo_stream(team: Team) -> Path:
    """The shared `repo` stream earlier versions appended to, committed by a human."""
    from exo.kernel import append_audit, seal_audit

    scratch = team.clone("legacy-writer", hooks=False)
    for i in range(3):
        append_audit(scratch, "repo", "governance.compiled", {"n": i})
    seal_audit(scratch, "repo")
    stream = team.main / ".exo/audit/repo.jsonl"
    lines = (scratch / ".exo/audit/repo.jsonl").read_bytes().splitlines(keepends=True)
    stream.write_bytes(b"".join(lines[:-1]))  # unsealed, as it was left
    commit(team.main, "the stream of an earlier version", ".exo/audit/repo.jsonl")
    git(team.main, "push", "-q", "origin", "main")
    return stream


@pytest.mark.parametrize("how", ["truncate", "rewrite", "delete", "truncate-legacy"])
def test_a_repository_event_stream_truncated_rewritten_or_deleted(team: Team, how: str) -> None:
    if how == "truncate-legacy":
        _legacy_repo_stream(team)
    wt = team.worktree("agent")
    stream = wt / ".exo/audit/repo.jsonl" if how == "truncate-legacy" else next((wt / ".exo/audit").glob("ev-*"))
    sessions.start(wt, A, ticket_id="T1")
    lines = stream.read_bytes().splitlines(keepends=True)
    if how.startswith("truncate"):
        stream.write_bytes(lines[0])
    elif how == "rewrite":
        stream.write_bytes(lines[0].replace(b'"rules":2', b'"rules":0') + lines[1])
    else:
        stream.unlink()
    git(wt, "add", "-A", ".exo/audit")
    git(wt, "commit", "-q", "--no-verify", "-m", "tidy the audit log", env={"EXO_ACTOR": A})
    refusal(lambda: closeout.finish(wt, A))  # finish refuses it too
    push_branch(wt, "agent")
    for job, verdict in pull_request(team, "agent").items():
        assert verdict[0] == 1 and "RECORD_REWRITTEN" in verdict[1], (job, verdict)


def test_a_history_rewrite_that_is_force_pushed(team: Team) -> None:
    wt = team.worktree("agent")
    team.work(wt, A, "T1", {"src/a.py": "a\n"})
    local_merge(team, "agent", "--ff-only")
    before = team.tip()
    git(team.main, "reset", "-q", "--hard", "HEAD~2")  # drop the governed work and its closeout
    write(team.main, "src/instead.py", "instead\n")
    commit(team.main, "something else", "src/instead.py")
    git(team.main, "push", "-q", "--force", "origin", "main")
    git(str(team.remote), "config", "uploadpack.allowAnySHA1InWant", "true")  # as forges serve old tips
    _smuggled(doctor(team.ci(fetch=(before,)), f"{before}..{team.tip()}"), "HISTORY_REWRITTEN")
    _smuggled(doctor(team.ci(), f"{before}..{team.tip()}"), "BASE_MISSING")  # not fetched: no verdict either


def test_no_verify_out_of_scope(team: Team) -> None:
    wt = team.worktree("agent")
    sessions.start(wt, A, ticket_id="T1")
    write(wt, "docs/sneak.md", "outside T1\n")
    commit(wt, "sneak", "docs/sneak.md", actor=A, flags=("--no-verify",))
    push_branch(wt, "agent")
    for job, verdict in pull_request(team, "agent").items():
        assert verdict[0] == 1 and "CONTENT_UNGOVERNED" in verdict[1], (job, verdict)


def test_a_hand_typed_session_trailer_on_a_hooks_off_commit(team: Team) -> None:
    wt = team.worktree("agent")
    sid = team.work(wt, A, "T1", {"src/a.py": "a\n"})
    write(wt, "docs/out.md", "out of T1's scope\n")
    git(wt, "add", "docs/out.md")
    trailers = ["--trailer", f"Exo-Actor: {A}", "--trailer", f"Exo-Session: {sid}", "--trailer", "Exo-Ticket: T1"]
    git(wt, "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", "looks governed", *trailers)
    push_branch(wt, "agent")
    for job, verdict in pull_request(team, "agent").items():
        assert verdict[0] == 1 and "CONTENT_UNGOVERNED" in verdict[1], (job, verdict)


def test_a_shallow_clone_gives_no_verdict(team: Team) -> None:
    wt = team.worktree("agent")
    team.work(wt, A, "T1", {"src/a.py": "a\n"})
    local_merge(team, "agent", "--ff-only")
    clone = team.ci(depth=1)
    _smuggled(doctor(clone), "SHALLOW_CLONE")
    _smuggled(doctor(clone, "HEAD~1..HEAD"), "SHALLOW_CLONE")


# --- known limits (docs/security.md): what doctor cannot tell until records and human acts are signed


def test_limit_a_hand_typed_human_trailer_is_taken_at_its_word(team: Team) -> None:
    """A name is not a signature: a hooks-off commit that types a human's stamp passes as a human's."""
    wt = team.worktree("agent")
    write(wt, "docs/anything.md", "outside every agent's fence\n")
    git(wt, "add", "docs/anything.md")
    trailers = ["--trailer", "Exo-Actor: human:lead@example.com"]
    git(wt, "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", "looks human", *trailers)
    push_branch(wt, "agent")
    assert pull_request(team, "agent")["pr-head"] == (0, set())


def test_limit_a_forge_squash_of_a_humans_commits_is_a_false_alarm(team: Team) -> None:
    """The forge's squash carries no human stamp, so a human's content in it is not accounted for."""
    wt = team.worktree("human")
    write(wt, "docs/by-hand.md", "a human's change\n")
    commit(wt, "by hand", "docs/by-hand.md")
    push_branch(wt, "human")
    before = team.tip()
    forge_merge(team, "human", "squash", "By hand (#3)")
    _smuggled(push(team, before), "CONTENT_UNGOVERNED")
    before = team.tip()  # the documented way: a merge commit keeps the human's own stamped commit
    git(team.main, "fetch", "-q", "origin")
    again = team.worktree("human-again", "origin/main")
    write(again, "docs/by-hand.md", "a second change\n")
    commit(again, "by hand again", "docs/by-hand.md")
    push_branch(again, "human-again")
    forge_merge(team, "human-again")
    assert push(team, before) == (0, set())


def test_limit_an_agent_can_give_itself_a_wide_ticket(team: Team) -> None:
    """Who created a ticket is a name too: an agent's `**` ticket, then a session on it, passes."""
    wt = team.worktree("agent")
    tickets.create(wt, A, title="everything", scope=["**"], ticket_id="T9")
    team.work(wt, A, "T9", {"docs/guide.md": "# Guide\n\nRewritten by the agent.\n"})
    push_branch(wt, "agent")
    assert pull_request(team, "agent")["pr-head"] == (0, set())
