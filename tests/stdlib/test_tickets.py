"""Tickets: fields, generated ids, validation, dependencies and cycles, bad input changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exo.kernel import ExoError, ids
from exo.stdlib import tickets
from tests.conftest import exo, snapshot

ME = "human:test@example.com"


def test_create_show_list_update(exo_repo: Path) -> None:
    made = tickets.create(
        exo_repo,
        ME,
        title="Login form",
        scope=["src/login/**"],
        deny=["src/login/vendor/**"],
        priority=2,
        max_files=5,
        max_lines=300,
        checks=["pytest -q"],
        body="As a user...",
        labels=["ui"],
        ticket_id="LOGIN-1",
    )
    assert tickets.read(exo_repo, "LOGIN-1") == made
    assert made.status == "todo" and made.created_by == ME
    changed = tickets.update(exo_repo, "LOGIN-1", {"status": "blocked", "priority": 1})
    assert (changed.status, changed.priority, changed.title) == ("blocked", 1, "Login form")
    assert [t.id for t in tickets.list_tickets(exo_repo, "blocked").tickets] == ["LOGIN-1"]


def test_generated_ids_are_short_random_and_valid(exo_repo: Path) -> None:
    made = [tickets.create(exo_repo, ME, title=f"t{i}", scope=["src/**"]) for i in range(20)]
    names = [t.id for t in made]
    assert len(set(names)) == 20
    assert all(ids.ID_RE.fullmatch(n) and len(n) == 8 for n in names)
    assert names != sorted(names)  # not sequential


def test_dependencies_must_exist_and_not_cycle(exo_repo: Path) -> None:
    tickets.create(exo_repo, ME, title="a", scope=["a/**"], ticket_id="A")
    tickets.create(exo_repo, ME, title="b", scope=["b/**"], ticket_id="B", depends_on=["A"])
    with pytest.raises(ExoError) as missing:
        tickets.create(exo_repo, ME, title="c", scope=["c/**"], ticket_id="C", depends_on=["NOPE"])
    assert missing.value.code == "TICKET_NOT_FOUND"
    with pytest.raises(ExoError) as cycle:
        tickets.update(exo_repo, "A", {"depends_on": ["B"]})
    assert cycle.value.code == "TICKET_INVALID" and "A -> B -> A" in cycle.value.message
    with pytest.raises(ExoError) as self_cycle:
        tickets.update(exo_repo, "A", {"depends_on": ["A"]})
    assert self_cycle.value.code == "TICKET_INVALID"
    assert tickets.read(exo_repo, "A").depends_on == []


def test_list_uses_the_cache_and_sees_edits(exo_repo: Path) -> None:
    tickets.create(exo_repo, ME, title="first", scope=["src/**"], ticket_id="T1")
    assert tickets.list_tickets(exo_repo).tickets[0].title == "first"
    path = exo_repo / ".exo/tickets/T1.yaml"
    path.write_text(path.read_text().replace("title: first", "title: second edit"))
    assert tickets.list_tickets(exo_repo).tickets[0].title == "second edit"


BAD_CREATE = [
    (["ticket", "create", "x", "--scope", "/etc/**"], "INVALID_PATTERN", 2),
    (["ticket", "create", "x", "--scope", "../up/**"], "INVALID_PATTERN", 2),
    (["ticket", "create", "x", "--scope", "src/**", "--deny", "a\\b"], "INVALID_PATTERN", 2),
    (["ticket", "create", "x"], "INVALID_ARGUMENT", 2),
    (["ticket", "create", "x", "--scope", "s/**", "--id", "bad id"], "INVALID_ID", 2),
    (["ticket", "create", "x", "--scope", "s/**", "--id", "../T"], "INVALID_ID", 2),
    (["ticket", "create", "x", "--scope", "s/**", "--depends-on", "NOPE"], "TICKET_NOT_FOUND", 1),
    (["ticket", "create", "", "--scope", "s/**"], "INVALID_ARGUMENT", 2),
    (["ticket", "create", "x", "--scope", "s/**", "--check", " "], "INVALID_ARGUMENT", 2),
    (["ticket", "create", "dupe", "--scope", "s/**", "--id", "T1"], "TICKET_EXISTS", 1),
    (["ticket", "show", "NOPE"], "TICKET_NOT_FOUND", 1),
    (["ticket", "show", "../../etc/passwd"], "INVALID_ID", 2),
    (["ticket", "update", "T1", "--status", "finished"], "INVALID_ARGUMENT", 2),
    (["ticket", "update", "T1", "--depends-on", "T1"], "TICKET_INVALID", 1),
    (["ticket", "update", "NOPE", "--title", "x"], "TICKET_NOT_FOUND", 1),
    (["ticket", "list", "--status", "whatever"], "INVALID_ARGUMENT", 2),
]


@pytest.mark.parametrize(
    ("args", "code", "status"), BAD_CREATE, ids=[" ".join(a[1:3]) + f"-{c}" for a, c, _ in BAD_CREATE]
)
def test_bad_ticket_input_is_a_coded_error_that_changes_nothing(
    governed: Path, args: list[str], code: str, status: int
) -> None:
    before = snapshot(governed)
    run = exo(*args, cwd=governed)
    assert run.code == status, (run.out, run.err)
    assert run.err.startswith(f"error[{code}]: ") and "\nhint: " in run.err, run.err
    assert snapshot(governed) == before


HEAD = "id: T9\ntitle: x\ncreated_at: '2026-01-01T00:00:00Z'\ncreated_by: human:x\n"
TICKET_FILES = {
    "invalid-yaml": "id: T9\ntitle: [unclosed\n",
    "unknown-field": HEAD + "scope: {allow: [a/**]}\nowner: me\n",
    "bad-scope": HEAD + "scope: {allow: [/abs]}\n",
    "wrong-id": HEAD.replace("id: T9", "id: OTHER") + "scope: {allow: [a/**]}\n",
    "not-mapping": "- a\n",
    "binary": "\udcff\udcfe\x00",
    "duplicate-key": "id: T9\nid: T9\n",
}


@pytest.mark.parametrize("case", sorted(TICKET_FILES))
def test_bad_ticket_files_are_reported_with_their_name(governed: Path, case: str) -> None:
    (governed / ".exo/tickets/T9.yaml").write_bytes(TICKET_FILES[case].encode("utf-8", "surrogateescape"))
    before = snapshot(governed)
    run = exo("ticket", "list", "--json", cwd=governed)
    assert run.code == 1
    assert json.loads(run.out)["error"]["code"] == "TICKET_INVALID"
    assert ".exo/tickets/T9.yaml" in run.err
    assert {k: v for k, v in snapshot(governed).items() if not k.startswith(".git/")} == {
        k: v for k, v in before.items() if not k.startswith(".git/")
    }


def test_cli_round_trip(governed: Path) -> None:
    made = exo("ticket", "create", "Fix bug", "--scope", "src/bug/**", "--priority", "1", "--json", cwd=governed)
    assert made.code == 0, made.err
    ticket = json.loads(made.out)
    shown = json.loads(exo("ticket", "show", ticket["id"], "--json", cwd=governed).out)
    assert shown == ticket
    listed = json.loads(exo("ticket", "list", "--json", cwd=governed).out)
    assert listed["tickets"][0]["id"] == ticket["id"]  # priority 1 first
    updated = exo("ticket", "update", ticket["id"], "--scope", "src/**", "--json", cwd=governed)
    assert json.loads(updated.out)["scope"] == {"allow": ["src/**"], "deny": []}
