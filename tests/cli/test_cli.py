"""The CLI through its real entry point: exit codes, stdout/stderr separation, --json, never overwriting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from exo.cli import adapters, audit, claims, demo, doctor, governance, hooks, install, keys, sessions, tickets  # noqa: F401
from exo.cli.app import app
from exo.kernel.layout import CONSTITUTION, LOCK
from exo.stdlib.config import CONFIG
from tests.conftest import exo, git, snapshot

runner = CliRunner()


def test_help_lists_the_commands_and_exit_codes() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("init", "build-governance", "check", "audit", "demo", "Exit codes"):
        assert word in result.output


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    from exo import __version__

    done = exo("--version", cwd=tmp_path)  # outside a repository: it needs none
    assert done.code == 0 and done.out == f"exo {__version__}\n"
    assert version("exo-kernel") == __version__  # the one the package index sees


BAD_COMMAND_LINES = {
    "unknown-option": (["ticket", "create", "--title", "x", "--json"], "No such option: --title"),
    "missing-argument": (["ticket", "show", "--json"], "Missing argument 'ID'"),
    "out-of-range": (["ticket", "create", "x", "--scope", "src/**", "--priority", "0", "--json"], "'--priority'"),
    "not-a-number": (["audit", "show", "--limit", "many", "--json"], "'--limit'"),
    "unknown-command": (["nosuch", "--json"], "No such command 'nosuch'"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMAND_LINES))
def test_a_bad_command_line_is_a_coded_error_and_json_under_json(exo_repo: Path, case: str) -> None:
    """Click's usage text is not exo's error format: a script reading stderr, or stdout under
    --json, gets INVALID_ARGUMENT, exit 2, and the command's --help as the hint."""
    args, said = BAD_COMMAND_LINES[case]
    done = exo(*args, cwd=exo_repo)
    assert done.code == 2, done
    first, hint = done.err.splitlines()[:2]
    assert first.startswith("error[INVALID_ARGUMENT]: exo") and said in first, done.err
    assert hint.startswith("hint: see `exo") and hint.endswith(" --help`"), done.err
    error = json.loads(done.out)["error"]
    assert error["code"] == "INVALID_ARGUMENT" and said in error["message"]
    assert exo(*[a for a in args if a != "--json"], cwd=exo_repo).out == ""  # without --json, nothing on stdout


def test_a_group_without_its_command_prints_its_help(exo_repo: Path) -> None:
    done = exo("ticket", cwd=exo_repo)
    assert done.code == 2 and done.out.startswith("Usage: exo ticket") and "create" in done.out


def leaf_commands() -> list[list[str]]:
    """Every runnable command of the real CLI, found by walking its command tree."""
    import typer.main

    def walk(command: Any, path: list[str]) -> list[list[str]]:
        subs = getattr(command, "commands", None)
        if subs:
            return [leaf for name, sub in sorted(subs.items()) for leaf in walk(sub, [*path, name])]
        return [path]

    return walk(typer.main.get_command(app), [])


def test_the_command_tree_is_complete() -> None:
    names = {" ".join(c) for c in leaf_commands()}
    assert names >= {
        "init",
        "build-governance",
        "check",
        "audit verify",
        "audit show",
        "demo",
        "ticket create",
        "ticket list",
        "ticket show",
        "ticket update",
        "next",
        "session-start",
        "session-status",
        "status",
        "session-heartbeat",
        "session-finish",
        "session-handoff",
        "freeze",
        "unfreeze",
        "ticket approve",
        "restore",
        "keys create",
        "keys show",
        "keys list",
        "keys add",
        "keys remove",
        "claims gc",
    }


@pytest.mark.parametrize("argv", leaf_commands(), ids=" ".join)
def test_every_command_takes_json_repo_and_actor_after_its_name(argv: list[str]) -> None:
    result = runner.invoke(app, [*argv, "--help"])
    assert result.exit_code == 0
    for option in ("--json", "--repo", "--actor"):
        assert option in result.output


def test_init_creates_compiles_and_never_overwrites(git_repo: Path) -> None:
    first = exo("init", "--json", cwd=git_repo)
    assert first.code == 0, first.err
    out = json.loads(first.out)
    assert out["created"] == [CONSTITUTION, CONFIG] and out["kept"] == []
    assert {r["id"] for r in out["governance"]["rules"]} == {"no-secrets", "commits"}
    (git_repo / CONSTITUTION).write_text("# My own rules\n")
    (git_repo / CONFIG).write_text("lease_ttl_seconds: 600\n")
    second = exo("init", "--json", cwd=git_repo)
    assert second.code == 0, second.err
    assert json.loads(second.out)["kept"] == [CONSTITUTION, CONFIG]
    assert (git_repo / CONSTITUTION).read_text() == "# My own rules\n"
    assert (git_repo / CONFIG).read_text() == "lease_ttl_seconds: 600\n"
    assert json.loads((git_repo / LOCK).read_text())["rules"] == []


def test_init_from_a_subdirectory_uses_the_repository_root(git_repo: Path) -> None:
    sub = git_repo / "a" / "b"
    sub.mkdir(parents=True)
    assert exo("init", cwd=sub).code == 0
    assert (git_repo / CONSTITUTION).exists() and not (sub / ".exo").exists()


def test_outside_a_repository(tmp_path: Path) -> None:
    run = exo("init", cwd=tmp_path)
    assert run.code == 2 and run.out == ""
    assert run.err.startswith("error[NOT_A_REPOSITORY]: ") and "\nhint: " in run.err
    assert list(tmp_path.iterdir()) == []


def test_repo_option_points_elsewhere(git_repo: Path, tmp_path: Path) -> None:
    assert exo("init", "--repo", str(git_repo), cwd=tmp_path).code == 0
    assert (git_repo / LOCK).exists()


def test_check_decides_paths_and_exits_1_on_a_deny(exo_repo: Path) -> None:
    ok = exo("check", "--paths", "src/a.py", "src/b.py", "--scope", "src/**", cwd=exo_repo)
    assert ok.code == 0 and ok.err == ""
    assert ok.out.splitlines() == ["allow  src/a.py", "allow  src/b.py"]
    bad = exo("check", "--paths", "src/a.py", ".git/config", "docs/x", "--scope", "src/**", "--json", cwd=exo_repo)
    assert bad.code == 1
    result = json.loads(bad.out)
    assert result["ok"] is False
    assert [(d["path"], d["allowed"], d["rule"]) for d in result["decisions"]] == [
        ("src/a.py", True, None),
        (".git/config", False, "exo:protected"),
        ("docs/x", False, "exo:scope"),
    ]


def test_check_uses_the_actor(exo_repo: Path) -> None:
    agent = exo("check", "--paths", "src/.env", "--scope", "src/**", "--actor", "agent:claude", cwd=exo_repo)
    assert agent.code == 1 and "no-secrets" in agent.out
    via_env = exo("check", "--paths", "src/.env", "--scope", "src/**", cwd=exo_repo, env={"EXO_ACTOR": "agent:x"})
    assert via_env.code == 1
    human = exo("check", "--paths", "src/.env", "--scope", "src/**", cwd=exo_repo)
    assert human.code == 0  # the starter rule binds agents only


def test_check_paths_are_relative_to_the_current_directory(exo_repo: Path) -> None:
    (exo_repo / "src").mkdir()
    run = exo("check", "--paths", "a.py", "--scope", "src/**", "--json", cwd=exo_repo / "src")
    assert run.code == 0 and json.loads(run.out)["decisions"][0]["path"] == "src/a.py"


@pytest.mark.parametrize(
    ("args", "code", "status"),
    [
        (["check", "--paths", "a"], "NO_SESSION", 1),
        (["check", "--scope", "src/**"], "INVALID_ARGUMENT", 2),
        (["check", "--paths", "a", "--scope", "/abs/**"], "INVALID_PATTERN", 2),
        (["check", "--paths", "a", "--scope", "../**"], "INVALID_PATTERN", 2),
        (["check", "--paths", "a", "--scope", "x", "--actor", "bad actor"], "INVALID_ACTOR", 2),
        (["check", "--paths", "a", "--scope", "x", "--actor", "agent:"], "INVALID_ACTOR", 2),
        (["audit", "show", "--stream", "../../etc/passwd"], "INVALID_ID", 2),
        (["audit", "show", "--limit", "-1"], "INVALID_ARGUMENT", 2),
        (["audit", "verify", "--anchor", "nonsense"], "INVALID_ARGUMENT", 2),
    ],
)
def test_bad_input_is_a_coded_error_that_changes_nothing(
    exo_repo: Path, args: list[str], code: str, status: int
) -> None:
    before = snapshot(exo_repo)
    run = exo(*args, cwd=exo_repo)
    assert run.code == status, run.err
    assert run.err.startswith(f"error[{code}]: ") and "\nhint: " in run.err
    assert run.out == ""
    as_json = exo(*args, "--json", cwd=exo_repo)
    assert as_json.code == status and json.loads(as_json.out)["error"]["code"] == code
    assert snapshot(exo_repo) == before


def test_usage_errors_exit_2(exo_repo: Path) -> None:
    assert exo("check", "--no-such-flag", cwd=exo_repo).code == 2
    assert exo("no-such-command", cwd=exo_repo).code == 2


CONFIG_BAD = {
    "unknown-key": ("lease_ttl_secs: 60\n", "line 1: lease_ttl_secs: unknown key"),
    "wrong-type": ("lease_ttl_seconds: soon\n", "line 1: lease_ttl_seconds"),
    "out-of-range": ("lease_ttl_seconds: 1\n", "lease_ttl_seconds"),
    "nested-unknown": ("budget:\n  max_file: 3\n", "budget.max_file: unknown key"),
    "version": ("version: 2\n", "version"),
    "not-mapping": ("- a\n- b\n", "YAML mapping"),
    "invalid-yaml": ("checks: [unclosed\n", "invalid YAML"),
    "duplicate-key": ("checks: []\nchecks: [rm -rf /]\n", "duplicate key 'checks'"),
    "binary": ("\udcff\udcfe", "not UTF-8"),
    "huge": ("#" * 300_000, "larger than"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_BAD))
def test_bad_config_is_a_coded_error_that_changes_nothing(exo_repo: Path, case: str) -> None:
    text, fragment = CONFIG_BAD[case]
    (exo_repo / CONFIG).write_bytes(text.encode("utf-8", "surrogateescape"))
    before = snapshot(exo_repo)
    run = exo("build-governance", cwd=exo_repo)
    assert run.code == 1
    assert run.err.startswith("error[CONFIG_INVALID]: ") and fragment in run.err, run.err
    assert snapshot(exo_repo) == before


def test_build_governance_reports_and_audits_changes(exo_repo: Path) -> None:
    same = exo("build-governance", "--json", cwd=exo_repo)
    assert same.code == 0 and json.loads(same.out)["changed"] is False
    with (exo_repo / CONSTITUTION).open("a") as fh:
        fh.write("\n```yaml exo-policy\nid: budget\ntype: budget\nmax_files: 5\n```\n")
    changed = exo("build-governance", "--json", cwd=exo_repo)
    assert changed.code == 0 and json.loads(changed.out)["changed"] is True
    shown = json.loads(exo("audit", "show", "--json", cwd=exo_repo).out)
    assert [r["event"] for r in shown["records"]] == ["governance.compiled", "governance.compiled"]


def test_audit_verify_and_show(exo_repo: Path) -> None:
    verify = exo("audit", "verify", "--json", cwd=exo_repo)
    assert verify.code == 0 and json.loads(verify.out)["ok"] is True
    path = next((exo_repo / ".exo/audit").glob("ev-*.jsonl"))  # the governance.compiled event of `exo init`
    record = json.loads(path.read_text().splitlines()[0])
    anchored = exo("audit", "verify", "--anchor", f"{path.stem}:1:{record['h']}", cwd=exo_repo)
    assert anchored.code == 0 and "1 anchor(s) checked" in anchored.out
    wrong = exo("audit", "verify", "--anchor", f"{path.stem}:1:{'0' * 64}", cwd=exo_repo)
    assert wrong.code == 1 and "anchor_mismatch" in wrong.out
    path.write_text(path.read_text().replace('"rules":2', '"rules":9'))
    tampered = exo("audit", "verify", cwd=exo_repo)
    assert tampered.code == 1 and "hash_mismatch" in tampered.out and "FAILED" in tampered.out
    shown = exo("audit", "show", "--event", "governance", cwd=exo_repo)
    assert shown.code == 0 and "governance.compiled" in shown.out


def test_internal_errors_are_coded_and_exit_3(exo_repo: Path) -> None:
    code = (
        "import exo.stdlib.governance as g\ng.build = lambda root, actor=None: 1 / 0\nfrom exo.cli import main\nmain()"
    )
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code, "build-governance"], cwd=exo_repo, capture_output=True, text=True
    )
    assert done.returncode == 3
    assert done.stderr.startswith("error[INTERNAL]: ZeroDivisionError") and "Traceback" not in done.stderr


def test_human_actor_comes_from_git(exo_repo: Path) -> None:
    git(exo_repo, "config", "user.email", "dev@example.org")
    run = exo("check", "--paths", "x", "--scope", "**", "--json", cwd=exo_repo)
    assert json.loads(run.out)["actor"] == "human:dev@example.org"


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda r: (r / ".exo").write_text("not a directory"), "IO_ERROR"),
        (lambda r: (r / CONSTITUTION).mkdir(parents=True), "IO_ERROR"),
        (lambda r: (r / CONFIG).mkdir(parents=True), "IO_ERROR"),
    ],
    ids=[".exo-is-a-file", "constitution-is-a-directory", "config-is-a-directory"],
)
def test_init_over_a_broken_layout_is_a_coded_error(git_repo: Path, setup: object, code: str) -> None:
    setup(git_repo)  # type: ignore[operator]
    before = snapshot(git_repo)
    run = exo("init", cwd=git_repo)
    assert run.code != 0 and run.err.startswith(f"error[{code}]: "), run.err
    assert "INTERNAL" not in run.err
    assert snapshot(git_repo) == before


def test_an_unreadable_stream_is_a_verify_problem(exo_repo: Path) -> None:
    (exo_repo / ".exo/audit/odd.jsonl").mkdir()
    run = exo("audit", "verify", "--json", cwd=exo_repo)
    assert run.code == 1
    assert [p["kind"] for p in json.loads(run.out)["problems"]] == ["unreadable"]


def test_init_with_an_invalid_kept_constitution_writes_nothing(git_repo: Path) -> None:
    (git_repo / ".exo").mkdir()
    (git_repo / CONSTITUTION).write_text("```yaml exo-policy\nid: x\ntype: nope\n```\n")
    before = snapshot(git_repo)
    run = exo("init", cwd=git_repo)
    assert run.code == 1 and run.err.startswith("error[CONSTITUTION_INVALID]: ")
    assert snapshot(git_repo) == before


def test_bash_completion_through_a_real_bash(exo_repo: Path) -> None:
    """The script `exo completion bash` prints, sourced into bash, completes commands and options."""
    exe = Path(sys.executable).parent / "exo"
    script = f"""
        eval "$({exe} completion bash)"
        complete -p exo
        COMP_WORDS=(exo tic); COMP_CWORD=1; _exo_completion exo; echo "1:${{COMPREPLY[*]}}"
        COMP_WORDS=(exo ticket create --pri); COMP_CWORD=3; _exo_completion exo; echo "2:${{COMPREPLY[*]}}"
        COMP_WORDS=(exo session-f); COMP_CWORD=1; _exo_completion exo; echo "3:${{COMPREPLY[*]}}"
    """
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", script], cwd=exo_repo, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "_exo_completion exo" in lines[0]
    assert lines[1:] == ["1:ticket", "2:--priority", "3:session-finish"]


def test_completion_for_zsh_fish_and_a_shell_it_does_not_know(exo_repo: Path) -> None:
    for shell in ("zsh", "fish"):
        done = exo("completion", shell, "--json", cwd=exo_repo)
        assert done.code == 0 and json.loads(done.out)["script"].count("_EXO_COMPLETE") >= 1
    env = {"_EXO_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "exo sessio"}
    assert '"session-finish"' in exo(cwd=exo_repo, env=env).out
    bad = exo("completion", "tcsh", cwd=exo_repo)
    assert bad.code == 2 and "error[INVALID_ARGUMENT]" in bad.err and "hint:" in bad.err


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path: Path) -> None:
    """`exo demo | head -1`: the command stops when its reader does, with SIGPIPE's status, no
    error message, and its throwaway repository removed."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", "from exo.cli import main; main()", "demo"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"# ")
    repo = proc.stdout.readline().decode().strip().removeprefix("DEMO_REPO=")
    proc.stdout.close()  # the reader goes away
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141 and err == b"", err
    assert not Path(repo).exists()
