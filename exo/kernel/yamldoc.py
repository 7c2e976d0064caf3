"""Strict YAML documents: line numbers for every top-level key, and no silent surprises.

PyYAML keeps the last of two duplicate keys without a word and expands aliases (a bomb in a few
lines); both are refused here. Used for the constitution's policy blocks, config and tickets.
"""

from __future__ import annotations

from typing import Any

import yaml

# libyaml's loader when PyYAML was built with it (10x faster on large backlogs), same semantics.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlProblem(ValueError):
    """A document that is not acceptable YAML; `line` is 1-based in the enclosing file."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def load(text: str, *, first_line: int = 1) -> tuple[Any, dict[str, int]]:
    """Parse `text` (which starts at `first_line` of its file); return the data and key -> line.

    Raises YamlProblem for invalid YAML, duplicate keys, anchors/aliases or tags.
    """
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        _check(node, first_line)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + mark.line if mark is not None else first_line
        raise YamlProblem(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", line) from exc
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        lines = {str(k.value): first_line + k.start_mark.line for k, _ in node.value}
    return data, lines


def _check(node: yaml.Node | None, first_line: int) -> None:
    seen: set[int] = set()
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        line = first_line + current.start_mark.line
        if id(current) in seen:
            raise YamlProblem("YAML anchors and aliases are not allowed", line)
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys = [k.value for k, _ in current.value]
            dupes = sorted({str(k) for k in keys if keys.count(k) > 1})
            if dupes:
                raise YamlProblem(f"duplicate key {dupes[0]!r} (YAML would silently keep the last)", line)
            stack.extend(v for pair in current.value for v in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
