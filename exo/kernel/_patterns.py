"""Path globs: strict validation, compilation to regexes (pathspec), and fast matching of the compiled form.

Globs are gitignore-style (gitwildmatch): `*` never crosses `/`, `**` does, a trailing `/` means a
directory and everything in it, a pattern with an inner `/` is anchored at the repository root, and
`!pattern` re-includes. Compilation happens once (constitution build, session start); the hot path
only sees `(regex, include)` pairs and needs nothing but `re`.
"""

from __future__ import annotations

import re

from ._errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

Compiled = tuple[tuple[str, bool], ...]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WINDOWS_ABS = re.compile(r"[A-Za-z]:")
MAX_PATTERN = 1024


def pattern_problem(pattern: object) -> str | None:
    """Why `pattern` is not an acceptable repo-relative glob, or None if it is."""
    if not isinstance(pattern, str):
        return f"a pattern must be a string, not {type(pattern).__name__}"
    body = pattern.removeprefix("!")
    if not body.strip():
        return "empty pattern"
    if len(pattern) > MAX_PATTERN:
        return f"pattern longer than {MAX_PATTERN} characters"
    if _CONTROL.search(pattern):
        return f"control character in pattern {pattern!r}"
    if body != body.strip():
        return f"leading or trailing whitespace in pattern {pattern!r}"
    if body.startswith("#"):
        return f"pattern {pattern!r} would be read as a comment"
    if "\\" in body:
        return f"backslash in pattern {pattern!r}: use '/' as the separator"
    if body.startswith("/") or _WINDOWS_ABS.match(body):
        return (
            f"absolute pattern {pattern!r}: patterns are relative to the repository root "
            "(a pattern with an inner '/' such as 'build/**' is already anchored there)"
        )
    parts = body.rstrip("/").split("/")
    if ".." in parts:
        return f"'..' in pattern {pattern!r}: patterns cannot leave the repository"
    if "." in parts or "" in parts:
        return f"empty or '.' path segment in pattern {pattern!r}"
    return None


def validate_patterns(patterns: Iterable[object]) -> list[str]:
    """Return the patterns unchanged if all are valid; raise InputError(INVALID_PATTERN) naming the first bad one."""
    out: list[str] = []
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem:
            raise InputError(problem, code="INVALID_PATTERN")
        assert isinstance(pattern, str)
        out.append(pattern)
    return out


def compile_patterns(patterns: Sequence[str]) -> Compiled:
    """Compile validated globs to `(regex, include)` pairs (gitwildmatch semantics, via pathspec)."""
    from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

    compiled = []
    for pattern in validate_patterns(patterns):
        regex, include = GitIgnoreBasicPattern.pattern_to_regex(pattern)
        if regex is None or include is None:  # pragma: no cover - excluded by validation
            raise InputError(f"pattern {pattern!r} matches nothing", code="INVALID_PATTERN")
        compiled.append((regex, bool(include)))
    return tuple(compiled)


class Matcher:
    """A compiled pattern list: the last pattern that matches decides (so `!x` re-includes)."""

    __slots__ = ("_combined", "_steps")

    def __init__(self, compiled: Iterable[Sequence[object]], *, ignore_case: bool = False) -> None:
        flags = re.IGNORECASE if ignore_case else 0
        pairs = [(str(regex), bool(include)) for regex, include in compiled]
        self._combined: re.Pattern[str] | None = None
        self._steps: tuple[tuple[re.Pattern[str], bool], ...] = ()
        if all(include for _, include in pairs):
            # No negations: one alternation decides in a single regex scan.
            if pairs:
                self._combined = re.compile("|".join(f"(?:{rx})" for rx, _ in pairs), flags)
        else:
            self._steps = tuple((re.compile(rx, flags), inc) for rx, inc in pairs)

    def __call__(self, path: str) -> bool:
        if self._combined is not None:
            return self._combined.match(path) is not None
        decided = False
        for regex, include in self._steps:
            if regex.match(path) is not None:
                decided = include
        return decided
