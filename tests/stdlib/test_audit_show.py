"""`exo audit show` speaks in plain lines: what each record says, in words for exo's own events,
as `key: value` for any other, and never a control character from the stream to the terminal."""

from __future__ import annotations

import json
from pathlib import Path

from exo.kernel import append_audit
from exo.stdlib import closeout, sessions
from tests.conftest import exo

A = "agent:one"


def test_a_sessions_stream_reads_as_sentences(governed: Path) -> None:
    sid = sessions.start(governed, A, ticket_id="T1", task="build it").session.sid
    (governed / "src").mkdir()
    (governed / "src/app.py").write_text("x = 1\n")
    sessions.heartbeat(governed, A)
    closeout.finish(governed, A, summary="app")
    shown = exo("audit", "show", "--stream", sid, cwd=governed)
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert "session.started" in lines[0] and "agent:one started a session on T1 (epoch 1)" in lines[0], lines
    assert any("lease renewed (epoch 1) until" in line for line in lines), lines
    assert any("finished: 1 file(s), 1 line(s), 0 violation(s); checks none" in line for line in lines), lines
    assert lines[-1].endswith("stream sealed")
    assert not any("{" in line for line in lines), lines  # no dictionaries, no JSON
    assert json.loads(exo("audit", "show", "--stream", sid, "--json", cwd=governed).out)["total"] == len(lines)


def test_an_event_exo_does_not_know_is_shown_as_its_fields(governed: Path) -> None:
    append_audit(governed, "custom", "deploy.done", {"target": "prod", "commit": "ab" * 20, "hosts": ["a", "b"]})
    append_audit(governed, "custom", "session.started", {"ticket_id": "T9"})  # a known event missing fields
    lines = exo("audit", "show", "--stream", "custom", cwd=governed).out.splitlines()
    assert lines[0].endswith("commit: abababababab, hosts: a, b, target: prod"), lines
    assert lines[1].endswith("ticket_id: T9"), lines


def test_control_characters_in_a_stream_never_reach_the_terminal(governed: Path) -> None:
    append_audit(governed, "custom", "note.added", {"text": "\x1b[2J\x1b]0;pwned\x07line\nbreak"})
    out = exo("audit", "show", "--stream", "custom", cwd=governed).out
    assert "\x1b" not in out and "\x07" not in out and out.count("\n") == 1, repr(out)
    assert "\\x1b[2J" in out and "line\\x0abreak" in out
