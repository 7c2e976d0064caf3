"""Identifier validation: every id, actor, stream and event name is checked where it enters."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ._errors import InputError
from ._patterns import validate_patterns

__all__ = ["actor", "actor_patterns_regex", "event_name", "globs", "holder", "moment", "stream_id", "ticket_id"]
globs = validate_patterns  # glob validation (string checks, no compilation) is identifier validation too

ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")
# Streams are ticket-like ids or session ids (which may start with a digit: they sort by time).
STREAM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ACTOR_RE = re.compile(r"[a-z][a-z0-9-]{0,15}:[A-Za-z0-9._@+=~-]{1,128}")
# Actor patterns in rules: the same shape with `*` wildcards (`agent:*`, `human:*@example.com`, `*`).
ACTOR_PATTERN_RE = re.compile(r"\*|[a-z*][a-z0-9*-]{0,15}:[A-Za-z0-9._@+=~*-]{1,128}")
EVENT_RE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*){1,3}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _checked(value: object, valid: bool, what: str, code: str, hint: str | None = None) -> str:
    if not valid:
        raise InputError(f"invalid {what} {_show(value)}", code=code, hint=hint)
    assert isinstance(value, str)
    return value


def ticket_id(value: object) -> str:
    """Return `value` if it is a valid ticket id; raise InputError(INVALID_ID) otherwise."""
    return _checked(value, isinstance(value, str) and bool(ID_RE.fullmatch(value)), "ticket id", "INVALID_ID")


def stream_id(value: object) -> str:
    """Return `value` if it is a valid audit stream id; raise InputError(INVALID_ID) otherwise."""
    valid = isinstance(value, str) and bool(STREAM_RE.fullmatch(value)) and ".." not in value
    hint = "stream ids match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ (no '..')"
    return _checked(value, valid, "audit stream id", "INVALID_ID", hint)


def actor(value: object) -> str:
    """Return `value` if it is a valid actor (`kind:name`); raise InputError(INVALID_ACTOR) otherwise."""
    return _checked(value, isinstance(value, str) and bool(ACTOR_RE.fullmatch(value)), "actor", "INVALID_ACTOR")


def actor_patterns_regex(patterns: list[str]) -> str:
    """One regex (for `fullmatch`) matching any of the actor patterns; `*` matches anything."""
    return "|".join(f"(?:{'.*'.join(re.escape(part) for part in p.split('*'))})" for p in patterns)


def event_name(value: object) -> str:
    """Return `value` if it is a dotted audit event name; raise InputError(INVALID_ARGUMENT) otherwise."""
    valid = isinstance(value, str) and len(value) <= 64 and bool(EVENT_RE.fullmatch(value))
    hint = "event names are dotted lowercase words, e.g. `session.started`"
    return _checked(value, valid, "audit event name", "INVALID_ARGUMENT", hint)


def holder(value: object) -> str:
    """Return `value` if it is a valid lease holder (printable, 1-200 chars, no whitespace)."""
    valid = (
        isinstance(value, str)
        and 0 < len(value) <= 200
        and value.isprintable()
        and not any(ch.isspace() for ch in value)
    )
    hint = "a holder is a printable string without spaces, e.g. an actor or session id"
    return _checked(value, valid, "lease holder", "INVALID_ID", hint)


def moment(value: object) -> datetime:
    """An injected clock reading (`now=`), or the current time: always timezone-aware UTC.

    Raises InputError(INVALID_ARGUMENT) for anything but an aware datetime (a naive one would be
    compared with aware lease times later and fail far from its cause)."""
    if value is None:
        return datetime.now(UTC)
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InputError(
            f"now must be a timezone-aware datetime, got {_show(value)}",
            code="INVALID_ARGUMENT",
            hint="pass e.g. datetime.now(UTC)",
        )
    return value.astimezone(UTC)
