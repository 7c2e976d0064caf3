"""The audit log: append protocol, seal, torn-tail repair, and SEC-1 (every tampering detected)."""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exo.kernel import Anchor, AuditError, ExoError, append_audit, seal_audit, verify_audit
from exo.kernel._audit import ProblemKind
from exo.kernel.fs import audit_path
from exo.kernel.state import State
from tests.conftest import git, snapshot

Lines = list[bytes]
NESTED: list[object] = []
for _ in range(40):
    NESTED = [NESTED]


def enc(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rehash(record: dict[str, Any]) -> dict[str, Any]:
    """What a forger who knows the format does: recompute h over the canonical record without h."""
    body = {k: v for k, v in record.items() if k != "h"}
    return {**body, "h": hashlib.sha256(enc(body)).hexdigest()}


def rechain(records: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    """Rewrite a whole chain consistently: seq from 1, prev links, hashes (a full forgery)."""
    prev = hashlib.sha256(b"exo-audit-genesis\x00" + stream.encode()).hexdigest()
    out = []
    for seq, record in enumerate(records, start=1):
        record = rehash({**record, "seq": seq, "prev": prev, "stream": stream})
        prev = record["h"]
        out.append(record)
    return out


def parse(lines: Lines) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def build(root: Path, stream: str = "S1", n: int = 8) -> Anchor:
    for i in range(n):
        append_audit(root, stream, "test.step", {"i": i, "note": f"step {i}", "nested": {"h": "x"}})
    seq, head = seal_audit(root, stream)
    return Anchor(stream=stream, seq=seq, h=head, source="test")


def test_append_returns_durable_chained_records(git_repo: Path) -> None:
    first = append_audit(git_repo, "S1", "session.started", {"ticket": "T1"})
    second = append_audit(git_repo, "S1", "session.finished", {})
    assert (first.seq, second.seq, second.prev) == (1, 2, first.h)
    assert not (git_repo / ".exo/audit/S1.jsonl").exists()  # open streams live out of the worktree
    lines = Path(State(git_repo).stream("S1")).read_bytes().splitlines()
    assert [json.loads(x)["h"] for x in lines] == [first.h, second.h]
    assert all(enc(json.loads(x)) == x for x in lines)  # canonical on disk
    report = verify_audit(git_repo)
    assert report.ok and report.streams[0].head == second.h


def test_seal_closes_the_stream_and_is_idempotent(git_repo: Path) -> None:
    anchor = build(git_repo, n=2)
    published = git_repo / ".exo/audit/S1.jsonl"
    assert published.read_bytes() == Path(State(git_repo).stream("S1")).read_bytes()
    assert seal_audit(git_repo, "S1") == (anchor.seq, anchor.h)
    with pytest.raises(AuditError) as caught:
        append_audit(git_repo, "S1", "test.late", {})
    assert caught.value.code == "AUDIT_SEALED"
    report = verify_audit(git_repo, [anchor])
    assert report.ok and report.streams[0].sealed and report.anchors_checked == 1


def test_torn_tail_is_repaired_by_the_next_writer_and_the_repair_recorded(git_repo: Path) -> None:
    append_audit(git_repo, "S1", "test.step", {"i": 1})
    path = audit_path(git_repo, "S1")
    torn = b'{"data":{"i":2},"event":"test.st'
    with path.open("ab") as fh:
        fh.write(torn)
    assert [p.kind for p in verify_audit(git_repo).problems] == ["torn_tail"]
    record = append_audit(git_repo, "S1", "test.step", {"i": 3})
    records = parse(path.read_bytes().splitlines())
    assert [r["event"] for r in records] == ["test.step", "audit.repaired", "test.step"]
    assert records[1]["data"] == {"removed_bytes": len(torn), "removed_sha256": hashlib.sha256(torn).hexdigest()}
    assert record.seq == 3 and verify_audit(git_repo).ok


def test_a_damaged_last_record_blocks_appends(git_repo: Path) -> None:
    append_audit(git_repo, "S1", "test.step", {"i": 1})
    path = audit_path(git_repo, "S1")
    path.write_bytes(path.read_bytes().replace(b'"i":1', b'"i":2'))
    with pytest.raises(AuditError) as caught:
        append_audit(git_repo, "S1", "test.step", {"i": 2})
    assert caught.value.code == "AUDIT_CORRUPT"


@pytest.mark.parametrize(
    ("stream", "event", "data", "code"),
    [
        ("../x", "a.b", {}, "INVALID_ID"),
        ("a/b", "a.b", {}, "INVALID_ID"),
        ("", "a.b", {}, "INVALID_ID"),
        (".hidden", "a.b", {}, "INVALID_ID"),
        ("S1", "Bad Event", {}, "INVALID_ARGUMENT"),
        ("S1", "nodot", {}, "INVALID_ARGUMENT"),
        ("S1", "a.b", {"x": 1.5}, "INVALID_ARGUMENT"),
        ("S1", "a.b", {1: "x"}, "INVALID_ARGUMENT"),
        ("S1", "a.b", {"x": object()}, "INVALID_ARGUMENT"),
        ("S1", "a.b", ["not", "a", "dict"], "INVALID_ARGUMENT"),
        ("S1", "a.b", {"big": "x" * (600 * 1024)}, "INVALID_ARGUMENT"),
        ("S1", "a.b", {"deep": NESTED}, "INVALID_ARGUMENT"),
    ],
)
def test_bad_appends_are_refused_and_write_nothing(
    git_repo: Path, stream: str, event: str, data: Any, code: str
) -> None:
    before = snapshot(git_repo)
    with pytest.raises(ExoError) as caught:
        append_audit(git_repo, stream, event, data)
    assert caught.value.code == code
    assert snapshot(git_repo) == before


# --- SEC-1: the tamper corpus. Each case edits the files and names a problem kind verify must report.

Tamper = Callable[[Path, Lines], Lines | None]


def edit_data(_: Path, lines: Lines) -> Lines:
    lines[3] = lines[3].replace(b'"note":"step 3"', b'"note":"step X"')
    return lines


def rehash_one(_: Path, lines: Lines) -> Lines:
    records = parse(lines)
    records[3] = rehash({**records[3], "data": {"i": 3, "note": "forged"}})
    return [enc(r) for r in records]


def rehash_seal(_: Path, lines: Lines) -> Lines:
    records = parse(lines)
    records[-1] = rehash({**records[-1], "ts": "2030-01-01T00:00:00.000Z"})
    return [enc(r) for r in records]


def delete_one(_: Path, lines: Lines) -> Lines:
    return lines[:4] + lines[5:]


def delete_first(_: Path, lines: Lines) -> Lines:
    return lines[1:]


def swap(_: Path, lines: Lines) -> Lines:
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def duplicate(_: Path, lines: Lines) -> Lines:
    return [*lines[:4], lines[3], *lines[4:]]


def insert_forged(_: Path, lines: Lines) -> Lines:
    records = parse(lines)
    fake = rehash({**records[3], "event": "test.injected", "prev": records[3]["h"], "seq": 5})
    return [*lines[:4], enc(fake), *lines[4:]]


def truncate(_: Path, lines: Lines) -> Lines:
    return lines[:-3]


def truncate_all(_: Path, lines: Lines) -> Lines:
    return []


def delete_stream(root: Path, _: Lines) -> None:
    (root / ".exo/audit/S1.jsonl").unlink()


def rewrite_chain(_: Path, lines: Lines) -> Lines:
    records = parse(lines)
    records[2]["data"] = {"i": 2, "note": "rewritten history"}
    return [enc(r) for r in rechain(records, "S1")]


def rewrite_chain_shorter(_: Path, lines: Lines) -> Lines:
    records = parse(lines)
    return [enc(r) for r in rechain(records[:2] + records[4:], "S1")]


def transplant_record(root: Path, lines: Lines) -> Lines:
    other = (root / ".exo/audit/S2.jsonl").read_bytes().splitlines()
    lines[3] = other[3]
    return lines


def transplant_chain(root: Path, _: Lines) -> Lines:
    return (root / ".exo/audit/S2.jsonl").read_bytes().splitlines()


def transplant_rebound(root: Path, _: Lines) -> Lines:
    records = parse((root / ".exo/audit/S2.jsonl").read_bytes().splitlines())
    return [enc(rehash({**r, "stream": "S1"})) for r in records]


def crlf(_: Path, lines: Lines) -> Lines:
    return [line + b"\r" for line in lines]


def trailing_space(_: Path, lines: Lines) -> Lines:
    lines[2] = lines[2] + b" "
    return lines


def pretty_printed(_: Path, lines: Lines) -> Lines:
    lines[2] = json.dumps(json.loads(lines[2]), sort_keys=True).encode()
    return lines


def unsorted_keys(_: Path, lines: Lines) -> Lines:
    record = json.loads(lines[2])
    lines[2] = json.dumps(dict(reversed(list(record.items()))), separators=(",", ":")).encode()
    return lines


def unicode_escaped(_: Path, lines: Lines) -> Lines:
    lines[2] = lines[2].replace(b"step 2", b"st\\u0065p 2")
    return lines


def change_seq(_: Path, lines: Lines) -> Lines:
    lines[3] = lines[3].replace(b'"seq":4', b'"seq":40')
    return lines


def change_stream_rehashed(_: Path, lines: Lines) -> Lines:
    records = parse(lines)
    records[3] = rehash({**records[3], "stream": "S2"})
    return [enc(r) for r in records]


def float_value(_: Path, lines: Lines) -> Lines:
    lines[3] = lines[3].replace(b'"i":3', b'"i":3.0')
    return lines


def after_seal(_: Path, lines: Lines) -> Lines:
    records = parse(lines)
    late = rehash({**records[-1], "seq": records[-1]["seq"] + 1, "prev": records[-1]["h"], "event": "test.late"})
    return [*lines, enc(late)]


def torn(_: Path, lines: Lines) -> Lines:
    return [*lines, b'{"data":{']


def extra_field(_: Path, lines: Lines) -> Lines:
    records = parse(lines)
    records[3] = rehash({**records[3], "extra": 1})
    return [enc(r) for r in records]


def version_bump(_: Path, lines: Lines) -> Lines:
    records = parse(lines)
    records[3] = rehash({**records[3], "v": 2})
    return [enc(r) for r in records]


def blank_line(_: Path, lines: Lines) -> Lines:
    return [*lines[:3], b"", *lines[3:]]


def binary_junk(_: Path, lines: Lines) -> Lines:
    return [*lines[:3], b"\xff\xfe\x00junk", *lines[3:]]


def rename_stream(root: Path, _: Lines) -> None:
    (root / ".exo/audit/S1.jsonl").rename(root / ".exo/audit/S3.jsonl")


def badly_named_copy(root: Path, lines: Lines) -> Lines:
    (root / ".exo/audit/not a stream.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    return lines


def unreadable(root: Path, _: Lines) -> None:
    path = root / ".exo/audit/S1.jsonl"
    path.unlink()
    path.mkdir()


def wrong_types(_: Path, lines: Lines) -> Lines:
    lines[3] = lines[3].replace(b'"seq":4', b'"seq":"4"')
    return lines


CORPUS: dict[str, tuple[Tamper, str]] = {
    "edit": (edit_data, "hash_mismatch"),
    "rehash-one-record": (rehash_one, "broken_link"),
    "rehash-the-sealed-head": (rehash_seal, "anchor_mismatch"),
    "delete": (delete_one, "seq_gap"),
    "delete-first": (delete_first, "broken_link"),
    "swap": (swap, "seq_gap"),
    "duplicate": (duplicate, "seq_gap"),
    "insert": (insert_forged, "seq_gap"),
    "truncate": (truncate, "anchor_missing"),
    "truncate-to-empty": (truncate_all, "anchor_missing"),
    "delete-stream": (delete_stream, "anchor_missing"),
    "whole-chain-rewrite": (rewrite_chain, "anchor_mismatch"),
    "whole-chain-rewrite-shorter": (rewrite_chain_shorter, "anchor_missing"),
    "whole-chain-rewrite-against-the-sealed-copy": (rewrite_chain, "copy_mismatch"),
    "transplant-record": (transplant_record, "stream_mismatch"),
    "transplant-chain": (transplant_chain, "stream_mismatch"),
    "transplant-rebound-to-stream": (transplant_rebound, "broken_link"),
    "crlf": (crlf, "not_canonical"),
    "trailing-whitespace": (trailing_space, "not_canonical"),
    "pretty-printed": (pretty_printed, "not_canonical"),
    "unsorted-keys": (unsorted_keys, "not_canonical"),
    "unicode-escapes": (unicode_escaped, "not_canonical"),
    "change-seq": (change_seq, "seq_gap"),
    "change-stream-rehashed": (change_stream_rehashed, "stream_mismatch"),
    "float": (float_value, "bad_json"),
    "append-after-seal": (after_seal, "after_seal"),
    "torn-tail": (torn, "torn_tail"),
    "extra-field": (extra_field, "bad_record"),
    "version-bump": (version_bump, "unknown_version"),
    "blank-line": (blank_line, "bad_json"),
    "binary-junk": (binary_junk, "bad_json"),
    "rename-stream": (rename_stream, "anchor_missing"),
    "wrong-field-type": (wrong_types, "bad_record"),
    "badly-named-stream-file": (badly_named_copy, "bad_stream_name"),
    "stream-replaced-by-a-directory": (unreadable, "unreadable"),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_tampering_is_detected(git_repo: Path, case: str) -> None:
    tamper, kind = CORPUS[case]
    anchor = build(git_repo, "S1")
    other = build(git_repo, "S2")
    assert verify_audit(git_repo, [anchor, other]).ok
    path = git_repo / ".exo/audit/S1.jsonl"
    lines = path.read_bytes().split(b"\n")[:-1]
    changed = tamper(git_repo, lines)
    if changed is not None:
        data = b"".join(line + b"\n" for line in changed)
        path.write_bytes(data.removesuffix(b"\n") if case == "torn-tail" else data)
    report = verify_audit(git_repo, [anchor, other])
    assert not report.ok
    assert kind in {p.kind for p in report.problems}, report.problems


def test_corpus_covers_every_problem_kind() -> None:
    assert {kind for _, kind in CORPUS.values()} == set(typing.get_args(ProblemKind))


def test_verify_report_is_stable_json(git_repo: Path) -> None:
    anchor = build(git_repo)
    report = json.loads(verify_audit(git_repo, [anchor]).model_dump_json())
    assert set(report) == {"ok", "streams", "anchors_checked", "problems"}
    assert report["streams"][0] == {"stream": "S1", "records": 9, "head_seq": 9, "head": anchor.h, "sealed": True}


def test_audit_clock_must_be_timezone_aware(git_repo: Path) -> None:
    from datetime import datetime

    with pytest.raises(ExoError) as caught:
        append_audit(git_repo, "S1", "test.step", {}, now=datetime(2026, 1, 1))
    assert caught.value.code == "INVALID_ARGUMENT"
    assert not audit_path(git_repo, "S1").exists()


def test_an_open_stream_survives_stash_checkout_and_clean(git_repo: Path) -> None:
    append_audit(git_repo, "S1", "test.step", {"i": 1})
    (git_repo / "scratch.txt").write_text("untracked\n")
    git(git_repo, "stash", "-u")
    git(git_repo, "clean", "-fdx")
    git(git_repo, "checkout", "-q", "-b", "elsewhere")
    assert append_audit(git_repo, "S1", "test.step", {"i": 2}).seq == 2
    git(git_repo, "stash", "pop")
    assert verify_audit(git_repo).ok


def test_a_stream_sealed_in_one_worktree_is_sealed_in_every_worktree(git_repo: Path) -> None:
    other = git_repo.parent / "other"
    git(git_repo, "worktree", "add", "-q", str(other), "-b", "other")
    anchor = build(git_repo, n=1)
    with pytest.raises(AuditError) as caught:
        append_audit(other, "S1", "test.late", {})
    assert caught.value.code == "AUDIT_SEALED"
    assert not (other / ".exo/audit/S1.jsonl").exists()
    assert seal_audit(other, "S1") == (anchor.seq, anchor.h)  # publishes it there too
    assert (other / ".exo/audit/S1.jsonl").read_bytes() == (git_repo / ".exo/audit/S1.jsonl").read_bytes()


def test_a_published_copy_that_differs_from_the_sealed_one_is_caught(git_repo: Path) -> None:
    anchor = build(git_repo, n=3)
    path = git_repo / ".exo/audit/S1.jsonl"
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"".join(line + b"\n" for line in lines[:-2]))
    kinds = {p.kind for p in verify_audit(git_repo, [anchor]).problems}
    assert {"copy_mismatch", "anchor_missing"} <= kinds


def test_a_stream_of_an_earlier_version_is_extended_in_place(git_repo: Path) -> None:
    build(git_repo, "S1", n=2)
    legacy = (git_repo / ".exo/audit/S1.jsonl").read_bytes().splitlines()[:2]  # written before streams moved
    (git_repo / ".exo/audit/repo.jsonl").write_bytes(b"".join(enc(r) + b"\n" for r in rechain(parse(legacy), "repo")))
    assert append_audit(git_repo, "repo", "test.step", {"i": 3}).seq == 3
    assert len((git_repo / ".exo/audit/repo.jsonl").read_bytes().splitlines()) == 3
    assert not Path(State(git_repo).stream("repo")).exists()
