"""The fence decision: `check_action`, the one allow/deny used by every layer, and path canonicalization.

Standard library only (SPEC §10). A path is canonicalized before any rule sees it: separators
unified, `.`/`..` folded (leaving the repository is a deny), symlinks resolved (both the path as
written and where it really lands must pass), NTFS aliases and control characters refused.
Protected names compare case-insensitively after Unicode normalization, ignoring the code points
HFS+ drops.
"""

from __future__ import annotations

import os
import re

from ._governance import Governance
from ._patterns import Compiled, Matcher, compile_patterns
from ._record import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

OPERATIONS = frozenset({"read", "write", "delete"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"[A-Za-z]:")
# Code points HFS+ ignores in names (the list git's core.protectHFS uses).
_IGNORABLE = dict.fromkeys([0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF])
_SHORT_NAME = re.compile(r"([^~]{1,6})~[0-9]+")  # NTFS 8.3 alias such as GIT~1

# Names no agent session may write, whatever its scope (compared after folding).
_PROTECTED_ANYWHERE = frozenset({".git", ".gitattributes", ".gitmodules"})
_PROTECTED_TOP = frozenset(
    {
        ".exo",
        # agent harnesses: hooks, MCP servers, sandbox and instructions they load
        ".claude",
        ".cursor",
        ".cursorrules",
        ".mcp.json",
        ".codex",
        ".gemini",
        ".windsurf",
        ".windsurfrules",
        ".vscode",
        ".devcontainer",
        "agents.md",
        "claude.md",
        "gemini.md",
        # hook managers and files that run code on a developer's next command
        ".githooks",
        ".husky",
        ".pre-commit-config.yaml",
        ".pre-commit-hooks.yaml",
        "lefthook.yml",
        "lefthook.yaml",
        ".lefthook.yml",
        ".lefthook.yaml",
        ".lefthook",
        "lefthook-local.yml",
        ".envrc",
        # CI and code ownership
        ".github",
        ".gitlab",
        ".gitlab-ci.yml",
        ".circleci",
        ".buildkite",
        "azure-pipelines.yml",
        "bitbucket-pipelines.yml",
        "jenkinsfile",
        "codeowners",
    }
)
_PROTECTED_PAIRS = frozenset({("docs", "codeowners")})
_SHORT_TARGETS = tuple(sorted({name.lstrip(".") for name in (*_PROTECTED_ANYWHERE, *_PROTECTED_TOP, ".github")}))


class Action(Frozen):
    """Something an actor wants to do to a path: operation is `read`, `write` or `delete`."""

    __slots__ = _fields = ("actor", "operation", "path")
    actor: str
    operation: str
    path: str

    def __init__(self, actor: str, operation: str, path: str) -> None:
        self._set(actor=actor, operation=operation, path=path)


class Decision(Frozen):
    """The fence's answer: allowed or not, the deciding rule id (`exo:*` for built-in rules) and why."""

    __slots__ = _fields = ("allowed", "path", "rule", "reason")
    allowed: bool
    path: str
    rule: str | None
    reason: str

    def __init__(self, allowed: bool, path: str, rule: str | None, reason: str) -> None:
        self._set(allowed=allowed, path=path, rule=rule, reason=reason)

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "path": self.path, "rule": self.rule, "reason": self.reason}


class Fence(Frozen):
    """A session's scope: compiled allow and deny globs plus the exact `.exo/` files exo writes for it.

    Build one with `Fence.from_globs` (validates and compiles) or `Fence.from_dict` (trusts a
    hash-pinned compiled snapshot: the hot path).
    """

    _fields = ("allow", "deny", "exo_paths", "allow_globs", "deny_globs")
    __slots__ = (*_fields, "_allow", "_deny")
    allow: Compiled
    deny: Compiled
    exo_paths: frozenset[str]
    allow_globs: tuple[str, ...]
    deny_globs: tuple[str, ...]
    _allow: Matcher
    _deny: Matcher

    def __init__(
        self,
        allow: Compiled,
        deny: Compiled = (),
        exo_paths: frozenset[str] = frozenset(),
        allow_globs: tuple[str, ...] = (),
        deny_globs: tuple[str, ...] = (),
    ) -> None:
        self._set(
            allow=allow,
            deny=deny,
            exo_paths=exo_paths,
            allow_globs=allow_globs,
            deny_globs=deny_globs,
            _allow=Matcher(allow),
            _deny=Matcher(deny, ignore_case=True),
        )

    @classmethod
    def from_globs(cls, allow: Sequence[str], deny: Sequence[str] = (), exo_paths: Iterable[str] = ()) -> Fence:
        """Validate and compile scope globs. Raises InputError(INVALID_PATTERN)."""
        return cls(
            allow=compile_patterns(allow),
            deny=compile_patterns(deny),
            exo_paths=frozenset(exo_paths),
            allow_globs=tuple(allow),
            deny_globs=tuple(deny),
        )

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Fence:
        return cls(
            allow=tuple((str(rx), bool(inc)) for rx, inc in doc["allow"]),
            deny=tuple((str(rx), bool(inc)) for rx, inc in doc["deny"]),
            exo_paths=frozenset(doc.get("exo_paths", ())),
            allow_globs=tuple(doc.get("allow_globs", ())),
            deny_globs=tuple(doc.get("deny_globs", ())),
        )

    def covers(self, path: str) -> bool:
        """Whether the scope alone takes in the repo-relative `path` (no canonicalization, no rules)."""
        return self._allow(path) and not self._deny(_fold(path))

    def to_dict(self) -> dict[str, Any]:
        return {
            "allow": [list(pair) for pair in self.allow],
            "deny": [list(pair) for pair in self.deny],
            "exo_paths": sorted(self.exo_paths),
            "allow_globs": list(self.allow_globs),
            "deny_globs": list(self.deny_globs),
        }


def check_action(governance: Governance, fence: Fence, action: Action) -> Decision:
    """Decide whether `action` may happen inside `fence` under the compiled `governance`.

    Order: path canonicalization (invalid, outside the repo, symlink escape, NTFS alias), protected
    paths, the constitution's filesystem_deny rules, its filesystem_allow lists, then the fence's
    allow and deny globs. Never raises for a bad path or action: those are denies. Reads the
    filesystem only to resolve symlinks.
    """
    if action.operation not in OPERATIONS:
        return Decision(False, str(action.path), "exo:invalid-action", f"unknown operation {action.operation!r}")
    if governance.frozen is not None and action.operation != "read":
        return Decision(False, str(action.path), "exo:frozen", f"the repository is frozen: {governance.frozen}")
    located = _canonical(governance, action.path)
    if isinstance(located, Decision):
        return located
    literal, resolved = located
    for rel in (literal,) if resolved is None else (literal, resolved):
        denied = _decide(governance, fence, action, rel)
        if denied is not None:
            if rel is not literal:
                denied = Decision(False, literal, denied.rule, f"{literal} is a symlink to {rel}: {denied.reason}")
            return denied
    return Decision(True, literal, None, "inside the fence")


def _deny(path: str, rule: str, reason: str) -> Decision:
    return Decision(False, path, rule, reason)


def _canonical(gov: Governance, raw: object) -> tuple[str, str | None] | Decision:
    """(repo-relative literal path, resolved path if a symlink changes it) or a deny."""
    if not isinstance(raw, str) or not raw or len(raw) > 4096:
        return _deny(str(raw)[:200], "exo:invalid-path", "not a usable path")
    if _CONTROL.search(raw):
        return _deny(raw.encode("unicode_escape").decode(), "exo:invalid-path", "control character in path")
    path = raw.replace("\\", "/")  # a backslash is a separator to Windows and to many tools
    if not path.isascii():
        import unicodedata  # only non-ASCII paths pay for it

        path = unicodedata.normalize("NFC", path)
    if path.startswith("/"):
        for base in (gov.root, gov.root_real):
            if path == base or path.startswith(base.rstrip("/") + "/"):
                path = path[len(base.rstrip("/")) :]
                break
        else:
            return _deny(raw, "exo:outside-repo", "absolute path outside the repository")
    elif _DRIVE.match(path) or path.startswith("~"):
        return _deny(raw, "exo:outside-repo", "absolute or home-relative path")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return _deny(raw, "exo:outside-repo", "path leaves the repository through '..'")
            parts.pop()
            continue
        if ":" in part or part[-1] in ". ":
            return _deny(raw, "exo:ntfs-alias", f"{part!r} is an alternate name on Windows filesystems")
        parts.append(part)
    if not parts:
        return _deny(raw, "exo:invalid-path", "the path names the repository root, not a file")
    literal = "/".join(parts)
    real = os.path.realpath(os.path.join(gov.root_real, literal))
    expected = os.path.join(gov.root_real, literal)
    if real == expected:
        if os.path.islink(real):  # realpath gives a looping link back unresolved
            return _deny(literal, "exo:symlink-loop", f"{literal} is a symlink loop")
        return literal, None
    if not real.startswith(gov.root_real.rstrip("/") + "/"):
        return _deny(literal, "exo:symlink-escape", f"{literal} resolves outside the repository (to {real})")
    resolved = real[len(gov.root_real.rstrip("/")) + 1 :]
    return literal, (resolved if resolved != literal else None)


def _fold(rel: str) -> str:
    if rel.isascii():
        return rel.lower()
    import unicodedata

    return unicodedata.normalize("NFKC", rel.translate(_IGNORABLE)).casefold()


def _protected(folded: str) -> bool:
    parts = folded.split("/")
    if parts[0] in _PROTECTED_TOP or tuple(parts[:2]) in _PROTECTED_PAIRS:
        return True
    for part in parts:
        if part in _PROTECTED_ANYWHERE:
            return True
        short = _SHORT_NAME.fullmatch(part.split(".", 1)[0])
        if short and any(name.startswith(short.group(1)) for name in _SHORT_TARGETS):
            return True
    return False


def _core(folded: str) -> bool:
    """Protected from every tier: git's own directory and exo's state (the rest of the protected
    paths — hook, harness and CI configuration — an actor in the `protected` tier may write)."""
    parts = folded.split("/")
    shorts = (_SHORT_NAME.fullmatch(part.split(".", 1)[0]) for part in parts)
    return parts[0] == ".exo" or ".git" in parts or any(m and "git".startswith(m.group(1)[:3]) for m in shorts)


def _decide(gov: Governance, fence: Fence, action: Action, rel: str) -> Decision | None:
    folded = _fold(rel)
    writing = action.operation != "read"
    tier = gov.tier(action.actor) if writing and gov.tiers else None
    if tier is not None and tier[0] == "plan":
        return _deny(rel, tier[1], f"{action.actor} is in the plan tier of rule {tier[1]}: it may not write")
    trusted = tier is not None and tier[0] == "protected" and not _core(folded)
    if writing and rel not in fence.exo_paths and not trusted and _protected(folded):
        return _deny(rel, "exo:protected", f"{rel} is a protected path (git, exo, hook or CI configuration)")
    for rule in gov.deny:
        if action.operation in rule.actions and rule.actors.fullmatch(action.actor) and rule.match(folded):
            why = f": {rule.description}" if rule.description else ""
            return _deny(rel, rule.id, f"{rel} is denied by constitution rule {rule.id}{why}")
    if not writing:
        return None
    if rel in fence.exo_paths:
        return None
    for rule in gov.allow:
        if rule.actors.fullmatch(action.actor) and not rule.match(rel):
            return _deny(rel, rule.id, f"{rel} is outside the repository allow-list {rule.id}")
    if not fence._allow(rel):
        scope = ", ".join(fence.allow_globs) or "nothing"
        return _deny(rel, "exo:scope", f"{rel} is outside the session's scope ({scope})")
    if fence._deny(folded):
        return _deny(rel, "exo:scope-deny", f"{rel} is excluded by the session's scope deny list")
    return None
