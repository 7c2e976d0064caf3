"""`exo init`: create `.exo/` with a commented starter constitution and config, then compile."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from exo.kernel import StateError, compile_constitution
from exo.kernel.fs import atomic_write
from exo.kernel.layout import CONSTITUTION

from . import governance
from .config import CONFIG, STARTER, load_config
from .governance import BuildResult

STARTER_CONSTITUTION = """\
# Constitution

The rules every agent session in this repository runs under. exo compiles the fenced
`yaml exo-policy` blocks below into `.exo/governance.lock.json` (`exo build-governance`); a
constitution edited but not recompiled makes governed operations refuse with GOVERNANCE_STALE.
Commit this file and the lock together.

Rule types: `filesystem_deny`, `filesystem_allow`, `require_checks`, `budget`, `commit_policy`.
Globs are gitignore-style and relative to the repository root; see docs/constitution.md.

## Secrets stay out of agents' hands

```yaml exo-policy
id: no-secrets
type: filesystem_deny
description: credentials are never written or deleted by an agent
patterns: [".env", ".env.*", "!.env.example", "secrets/**", "*.pem", "*.key"]
actions: [write, delete]
actors: ["agent:*"]
```

## Commits need a governed session

Agents commit only inside a session; humans may commit without one, but their commits are still
stamped with an `Exo-Actor` trailer so a commit with no trailer at all stands out in CI.

```yaml exo-policy
id: commits
type: commit_policy
require_session: true
exempt_actors: ["human:*"]
```

## More rules you can add

A repository-wide allow-list (every ticket scope is intersected with it):

```yaml
id: source-only
type: filesystem_allow
patterns: ["src/**", "tests/**", "docs/**"]
```

Checks every session must pass before it can finish, and a default budget:

```yaml
id: tests-pass
type: require_checks
commands: ["python -m pytest -q"]
```

```yaml
id: small-sessions
type: budget
max_files: 40
max_lines: 1500
```

To turn one on, change its fence from `yaml` to `yaml exo-policy` and run `exo build-governance`.
"""


class InitResult(BaseModel):
    """What `exo init` did."""

    root: str = Field(description="Repository root.")
    created: list[str] = Field(description="Files written (repo-relative).")
    kept: list[str] = Field(description="Files that already existed and were left untouched.")
    governance: BuildResult = Field(description="The compile that followed.")


def init_repo(root: Path) -> InitResult:
    """Create the starter files that are missing (never overwriting one), validate config, compile.

    Everything that already exists is checked before anything is written, so a bad layout or an
    invalid kept file changes nothing. Raises StateError(IO_ERROR) when a target is not a regular
    file, GovernanceError(CONFIG_INVALID / CONSTITUTION_INVALID) when kept files are invalid.
    """
    starters = ((CONSTITUTION, STARTER_CONSTITUTION), (CONFIG, STARTER))
    kept = [rel for rel, _ in starters if _exists(root / rel)]
    load_config(root)
    if CONSTITUTION in kept:
        compile_constitution(root)  # refuse an invalid kept constitution before writing anything
    created = []
    for rel, text in starters:
        if rel not in kept:
            atomic_write(root / rel, text.encode())
            created.append(rel)
    return InitResult(root=str(root), created=created, kept=kept, governance=governance.build(root))


def _exists(path: Path) -> bool:
    """Whether `path` exists as a regular file; raises StateError(IO_ERROR) if something else is there."""
    for parent in (path.parent, path.parent.parent):
        if parent.exists() and not parent.is_dir():
            raise StateError(f"{parent} exists but is not a directory", code="IO_ERROR", hint="move it out of the way")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise StateError(f"{path} exists but is not a regular file", code="IO_ERROR", hint="move it out of the way")
    return path.exists()
