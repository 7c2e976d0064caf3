"""The shape of the package: ten kernel functions, one-way imports, a standard-library hot path."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import exo.kernel as kernel

PACKAGE = Path(kernel.__file__).parent.parent
TEN = {
    "compile_constitution",
    "load_governance",
    "check_action",
    "acquire_lock",
    "renew_lock",
    "release_lock",
    "inspect_lock",
    "append_audit",
    "seal_audit",
    "verify_audit",
}


def test_kernel_exports_exactly_ten_functions() -> None:
    functions = {name for name in kernel.__all__ if inspect.isfunction(getattr(kernel, name))}
    assert functions == TEN
    assert set(kernel.FUNCTIONS) == TEN
    others = set(kernel.__all__) - TEN
    assert all(inspect.isclass(getattr(kernel, n)) or n == "CODES" for n in others)


def _imports(path: Path, package_dir: Path = PACKAGE) -> list[tuple[str, int]]:
    module = ".".join(path.relative_to(package_dir.parent).with_suffix("").parts).removesuffix(".__init__")
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.append((name, node.lineno))
            found += [(f"{name}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _violations(layer: str, forbidden: tuple[str, ...], package_dir: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted((package_dir / layer).rglob("*.py")):
        for name, line in _imports(path, package_dir):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(package_dir.parent)}:{line} imports {name}")
    return bad


def test_kernel_imports_no_upper_layer_or_heavy_library() -> None:
    heavy = ("exo.stdlib", "exo.cli", "exo.mcp_server", "typer", "click", "rich", "mcp", "git")
    assert _violations("kernel", heavy) == []


def test_stdlib_imports_no_adapter() -> None:
    assert _violations("stdlib", ("exo.cli", "exo.mcp_server", "typer", "click", "mcp")) == []


def test_stdlib_uses_only_the_kernel_facade_and_plumbing() -> None:
    private = [
        f"{path.name}: {name}"
        for path in (PACKAGE / "stdlib").rglob("*.py")
        for name, _ in _imports(path)
        if name.startswith("exo.kernel._")
    ]
    assert private == []


def test_cli_and_mcp_server_never_import_each_other() -> None:
    assert _violations("cli", ("exo.mcp_server", "mcp")) == []
    if (PACKAGE / "mcp_server").is_dir():
        assert _violations("mcp_server", ("exo.cli", "typer")) == []


def test_the_checker_sees_a_wrong_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "exo" / "kernel" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from exo.stdlib import repo\nfrom ..cli import app\nimport typer\n")
    found = _violations("kernel", ("exo.stdlib", "exo.cli", "typer"), tmp_path / "exo")
    assert [v.split(" imports ")[1] for v in found] == [
        "exo.stdlib",
        "exo.stdlib.repo",
        "exo.cli",
        "exo.cli.app",
        "typer",
    ]


def test_nothing_but_exo_is_installed_at_top_level() -> None:
    tops = {p.name for p in PACKAGE.parent.iterdir() if (p / "__init__.py").exists()}
    assert tops <= {"exo", "tests"}


def test_fence_hot_path_loads_only_the_standard_library(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from exo.kernel import Action, Fence, check_action, load_governance\n"
        "heavy = {'pydantic', 'typer', 'git', 'mcp', 'pathspec', 'filelock', 'yaml', 'click', 'rich'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def loaded_after(argv: list[str], stdin: str = "") -> set[str]:
    code = (
        "import sys\n"
        f"sys.argv = {['exo', *argv]!r}\n"
        "from exo.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True, text=True)
    return set(done.stderr.split())


def test_help_and_hooks_do_not_pay_for_pydantic() -> None:
    assert "pydantic" not in loaded_after(["--help"])  # the 150 ms budget of `exo --help`
    hook = loaded_after(["hook", "claude", "pre-tool-use"], stdin='{"tool_name": "Write", "tool_input": {}}')
    assert not hook & {"pydantic", "typer", "click", "rich", "yaml", "pathspec", "filelock", "mcp", "git"}


RUNTIME_NAMES = {"sessions", "leases", "locks", "claude-sandbox", "quarantine"}
RUNTIME_CONSTANTS = {"STATE_DIR", "FROZEN", "RUNTIME_AUDIT"}
GIT_DIRS = ("common", "git_dir", "own")  # how code names a git directory; `<git dir>/exo` is the runtime dir


def _runtime_joins(source: str) -> list[int]:
    """Lines that build a path (`/`, `os.path.join`, `joinpath`) from a runtime directory's name."""

    def named(node: ast.AST, under: ast.AST | None = None) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value.strip("/")
            in_git = name == "exo" and under is not None and any(g in ast.unparse(under) for g in GIT_DIRS)
            return name in RUNTIME_NAMES or in_git
        return isinstance(node, (ast.Name, ast.Attribute)) and (
            getattr(node, "id", None) in RUNTIME_CONSTANTS or getattr(node, "attr", None) in RUNTIME_CONSTANTS
        )

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and named(node.right, node.left):
            found.append(node.lineno)
        elif isinstance(node, ast.Call) and node.args and getattr(node.func, "attr", None) in {"join", "joinpath"}:
            first, *rest = node.args
            if named(first) or any(named(arg, first) for arg in rest):
                found.append(node.lineno)
    return sorted(found)


def test_no_module_but_the_state_layer_builds_a_runtime_path() -> None:
    """Every runtime file is located by `exo.kernel.state` alone, so moving one is a change there."""
    by_hand = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "kernel" / "state.py"
        for line in _runtime_joins(path.read_text())
    ]
    assert by_hand == []


def test_the_runtime_path_checker_sees_a_path_built_by_hand() -> None:
    source = 'x = common / "exo" / "leases"\ny = os.path.join(git_dir(r), "exo")\nz = a.joinpath("locks")\n'
    assert _runtime_joins(source) == [1, 1, 2, 3]
    fine = 'x = root / ".exo" / "tickets"\ny = "-".join(["a", "b"])\nz = Path(sys.executable).parent / "exo"\n'
    assert _runtime_joins(fine) == []
