"""Identifier validation: every id, actor, stream and event name is checked where it enters."""

from __future__ import annotations

import re

from ._errors import InputError

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


def ticket_id(value: object) -> str:
    """Return `value` if it is a valid ticket id; raise InputError(INVALID_ID) otherwise."""
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise InputError(f"invalid ticket id {_show(value)}", code="INVALID_ID")
    return value


def stream_id(value: object) -> str:
    """Return `value` if it is a valid audit stream id; raise InputError(INVALID_ID) otherwise."""
    if not isinstance(value, str) or not STREAM_RE.fullmatch(value) or ".." in value:
        raise InputError(
            f"invalid audit stream id {_show(value)}",
            code="INVALID_ID",
            hint="stream ids match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ (no '..')",
        )
    return value


def actor(value: object) -> str:
    """Return `value` if it is a valid actor (`kind:name`); raise InputError(INVALID_ACTOR) otherwise."""
    if not isinstance(value, str) or not ACTOR_RE.fullmatch(value):
        raise InputError(f"invalid actor {_show(value)}", code="INVALID_ACTOR")
    return value


def event_name(value: object) -> str:
    """Return `value` if it is a dotted audit event name; raise InputError(INVALID_ARGUMENT) otherwise."""
    if not isinstance(value, str) or not EVENT_RE.fullmatch(value) or len(value) > 64:
        raise InputError(
            f"invalid audit event name {_show(value)}",
            code="INVALID_ARGUMENT",
            hint="event names are dotted lowercase words, e.g. `session.started`",
        )
    return value


def holder(value: object) -> str:
    """Return `value` if it is a valid lease holder (printable, 1-200 chars, no whitespace)."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= 200
        or not value.isprintable()
        or any(ch.isspace() for ch in value)
    ):
        raise InputError(
            f"invalid lease holder {_show(value)}",
            code="INVALID_ID",
            hint="a holder is a printable string without spaces, e.g. an actor or session id",
        )
    return value
