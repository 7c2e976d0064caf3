"""Packaging as a user meets it: the README's first command, verbatim, in a scratch copy of the
project, and a wheel that installs nothing but `exo` at top level."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.test_readme import ROOT, readme_commands

pytestmark = pytest.mark.heavy


def scratch_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "exo", copy / "exo", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_readme_demo_command_runs_as_written(tmp_path: Path) -> None:
    copy = scratch_copy(tmp_path)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_commands()[0]],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "DEMO=ok" in done.stdout.splitlines()


def test_wheel_installs_only_the_exo_package(tmp_path: Path) -> None:
    copy = scratch_copy(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(copy)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    (wheel,) = (tmp_path / "dist").glob("exo_kernel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"exo"}
    assert "exo/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "exo = exo.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    license_file = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
    assert "Apache License" in zipfile.ZipFile(wheel).read(license_file).decode()
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata and "Classifier: Typing :: Typed" in metadata
    checker = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel)], capture_output=True)
    assert checker.returncode == 0, checker.stdout


# Import names of the distributions exo declares (the ones whose import name differs are mapped).
IMPORT_NAMES = {"pyyaml": "yaml"}


def test_every_library_exo_imports_is_declared_and_only_where_it_is_used() -> None:
    """A module exo imports at run time that only arrives as another package's dependency breaks
    when that package drops it; a dependency declared for every platform but used on one is weight."""
    import ast
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {}
    for spec in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", spec).group().lower()  # type: ignore[union-attr]
        declared[IMPORT_NAMES.get(name, name)] = spec
    imported = set()
    for path in (ROOT / "exo").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            imported |= {n.split(".")[0] for n in names}
    third_party = {n for n in imported if n not in sys.stdlib_module_names and n != "exo"}
    assert sorted(third_party - set(declared)) == []
    assert "sys_platform == 'win32'" in declared["filelock"]  # imported only on Windows (kernel/fs.py)
