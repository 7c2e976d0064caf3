"""The README opens with the two commands, and CI runs exactly those."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```sh")
    end = lines.index("```", start + 1)
    return [line for line in lines[start + 1 : end] if line.strip() and not line.startswith("#")]


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    before_block = text.split("```sh", 1)[0]
    assert before_block.count("\n") <= 4, "the two commands come first"
    demo, tests = readme_commands()
    assert demo.endswith("exo demo") and re.search(r"pip install (-q )?\. ", demo)
    assert "'.[dev]'" in tests and "pytest" in tests


def test_ci_runs_the_readme_commands_then_ruff_and_mypy() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in script and "ruff check" in script and "mypy --strict exo" in script
    assert "exo doctor" in script


def using_it_block() -> list[str]:
    """The commands of the README's "Using it" story, verbatim (comments and all)."""
    text = (ROOT / "README.md").read_text()
    story = text.split("## Using it", 1)[1]
    block = story.split("```sh\n", 1)[1].split("\n```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_using_it_story_runs_verbatim_in_a_fresh_repository(git_repo: Path) -> None:
    """Typed into a fresh repository, one line after another with no hand commit in between: the
    session finishes and doctor is green."""
    import os
    import subprocess
    import sys

    lines = using_it_block()
    record = git_repo.parent / "exits"
    script = "".join(f'{line}\necho $? >> "$EXITS"\n' for line in lines)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "EXITS": str(record)}
    done = subprocess.run(["bash", "-c", script], cwd=git_repo, env=env, capture_output=True, text=True, timeout=300)
    exits = [int(line) for line in record.read_text().split()]
    expected = [1 if line.startswith("exo check") else 0 for line in lines]
    assert exits == expected, (list(zip(lines, exits, strict=False)), done.stdout[-3000:], done.stderr[-3000:])
    assert "exo doctor: healthy" in done.stdout
    shipped = subprocess.run(
        ["git", "show", "--name-only", "--format=%(trailers:key=Exo-Actor,valueonly)", "HEAD"],
        cwd=git_repo, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert shipped[0] == "agent:claude-1" and any(p.startswith(".exo/sessions/") for p in shipped)
    assert ".exo/governance.lock.json" in shipped  # the first closeout carries the governance it ran under
