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
