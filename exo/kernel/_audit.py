"""The audit log: one hash-chained JSONL stream per session (and per repository event), append, seal, verify.

A record is one line of canonical JSON with the fields `v, stream, seq, ts, event, data, prev, h`.
`prev` of record 1 is a genesis hash bound to the stream id, `h` is the sha256 of the canonical
record without `h`. Appends hold the stream's file lock, repair a torn tail (and record the repair),
write the line with one write, fsync, and only then return.

A stream is written under the runtime state dir (`<git common dir>/exo/audit/`), out of the
worktree, so `git stash -u`, a checkout or `git clean` cannot take an open stream away; sealing
publishes it, write-once, to `.exo/audit/<stream>.jsonl` where it is committed. The sealed runtime
copy stays behind so that no worktree of the clone can start the stream again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import ids
from ._errors import AuditError, InputError
from .canon import canonical, reject_float, sha256_hex
from .fs import atomic_write, audit_path, audit_paths, file_lock, fsync_dir, runtime_audit_dir
from .layout import AUDIT_DIR
from .safe import read_regular
from .state import open_runtime

RECORD_VERSION = 1
MAX_LINE = 1 << 20
SEAL_EVENT = "audit.sealed"
REPAIR_EVENT = "audit.repaired"
FIELDS = frozenset({"v", "stream", "seq", "ts", "event", "data", "prev", "h"})
_H_MARK = b',"h":"'

ProblemKind = Literal[
    "unreadable",
    "bad_json",
    "bad_record",
    "unknown_version",
    "not_canonical",
    "stream_mismatch",
    "bad_stream_name",
    "seq_gap",
    "broken_link",
    "hash_mismatch",
    "after_seal",
    "torn_tail",
    "anchor_missing",
    "anchor_mismatch",
    "copy_mismatch",
]


class AuditRecord(BaseModel):
    """One audit record, exactly as stored on its line."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = Field(description="Record format version.")
    stream: str = Field(description="The stream (session id, or `repo`) this record belongs to.")
    seq: int = Field(ge=1, description="Position in the stream, from 1, without gaps.")
    ts: str = Field(description="UTC time of the append, ISO 8601 with milliseconds.")
    event: str = Field(description="Dotted event name, e.g. `lock.takeover`.")
    data: dict[str, Any] = Field(description="Event payload (canonical JSON: no floats).")
    prev: str = Field(description="`h` of the previous record, or the stream's genesis hash.")
    h: str = Field(description="sha256 of the canonical record without `h`.")


class Anchor(BaseModel):
    """A remembered (stream, seq, h): verify fails if the stream no longer holds that record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stream: str = Field(description="Audit stream id.")
    seq: int = Field(ge=1, description="Sequence number of the anchored record.")
    h: str = Field(description="Hash the record must still have.")
    source: str = Field(default="", description="Where the anchor came from (session record, commit).")


class AuditProblem(BaseModel):
    """One finding of `verify_audit`; `kind` is stable and documented."""

    model_config = ConfigDict(frozen=True)

    kind: ProblemKind = Field(description="Stable problem kind.")
    stream: str = Field(description="Affected stream.")
    line: int | None = Field(default=None, description="1-based line in the stream file.")
    seq: int | None = Field(default=None, description="Sequence number involved, if known.")
    message: str = Field(description="What is wrong, for humans.")


class StreamReport(BaseModel):
    """What verify saw in one stream."""

    model_config = ConfigDict(frozen=True)

    stream: str
    records: int = Field(description="Lines read (complete records).")
    head_seq: int = Field(description="Sequence number of the last record (0 if empty).")
    head: str = Field(description="Hash of the last record (genesis if empty).")
    sealed: bool = Field(description="Whether the stream ends with a seal.")


class AuditReport(BaseModel):
    """Result of `verify_audit`: ok only if there are no problems."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    streams: list[StreamReport]
    anchors_checked: int
    problems: list[AuditProblem]


def genesis(stream: str) -> str:
    """The `prev` of a stream's first record: binds the chain to its stream id."""
    return hashlib.sha256(b"exo-audit-genesis\x00" + stream.encode()).hexdigest()


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _seal(body: dict[str, Any]) -> bytes:
    body["h"] = sha256_hex(canonical(body))
    return canonical(body) + b"\n"


def append_audit(
    root: str | os.PathLike[str],
    stream: str,
    event: str,
    data: dict[str, Any],
    *,
    now: datetime | None = None,
) -> AuditRecord:
    """Append one event to `stream` and return the durable record (fsynced before returning).

    Raises InputError (INVALID_ID, INVALID_ARGUMENT) for a bad stream, event or data,
    AuditError(AUDIT_SEALED) for a sealed stream, AuditError(AUDIT_CORRUPT) if the last record is
    not a valid record of this stream, LockError(LOCK_BUSY), StateError(STATE_CORRUPT) when the
    stream's file is not a regular file, StateError(IO_ERROR).
    """
    ids.event_name(event)
    at = ids.moment(now)
    if not isinstance(data, dict):
        raise InputError("audit data must be a JSON object", code="INVALID_ARGUMENT")
    if len(canonical(data)) > MAX_LINE // 2:
        raise InputError("audit data larger than 512 KiB", code="INVALID_ARGUMENT")
    return _append(root, stream, event, data, at, allow_sealed=False)


def seal_audit(root: str | os.PathLike[str], stream: str, *, now: datetime | None = None) -> tuple[int, str]:
    """Close `stream` with a seal record, publish it to `.exo/audit/<stream>.jsonl` of the worktree
    at `root` (unless a copy is there already) and return its anchor `(seq, h)`; idempotent once sealed.

    Raises what `append_audit` raises, except AUDIT_SEALED.
    """
    record = _append(root, stream, SEAL_EVENT, {}, ids.moment(now), allow_sealed=True)
    base = Path(root).absolute()
    published, runtime = audit_paths(base, stream)
    if runtime is not None and runtime.exists() and not published.exists():
        with file_lock(base, runtime):
            atomic_write(published, read_regular(runtime))
    return record.seq, record.h


def _append(
    root: str | os.PathLike[str],
    stream: str,
    event: str,
    data: dict[str, Any],
    now: datetime,
    *,
    allow_sealed: bool,
) -> AuditRecord:
    base = Path(root).absolute()
    published, runtime = audit_paths(base, ids.stream_id(stream))
    with file_lock(base, runtime or published):
        path = audit_path(base, stream)
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not os.path.lexists(path)
        fd = open_runtime(path, os.O_RDWR | os.O_APPEND)
        try:
            if created:
                fsync_dir(path.parent)
            last, torn = _tail(fd, path, stream)
            if torn:
                os.ftruncate(fd, os.fstat(fd).st_size - len(torn))
                data_torn = {"removed_bytes": len(torn), "removed_sha256": sha256_hex(torn)}
                last = _write(fd, stream, last, REPAIR_EVENT, data_torn, now)
            if last is not None and last["event"] == SEAL_EVENT:
                if allow_sealed and event == SEAL_EVENT:
                    return AuditRecord.model_construct(**last)
                raise AuditError(f"audit stream {stream} is sealed", code="AUDIT_SEALED")
            return AuditRecord.model_construct(**_write(fd, stream, last, event, data, now))
        finally:
            os.close(fd)


def _write(
    fd: int, stream: str, last: dict[str, Any] | None, event: str, data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": RECORD_VERSION,
        "stream": stream,
        "seq": last["seq"] + 1 if last else 1,
        "ts": _timestamp(now),
        "event": event,
        "data": data,
        "prev": last["h"] if last else genesis(stream),
    }
    line = _seal(body)
    written = os.write(fd, line)
    if written != len(line):  # a short write leaves a torn tail that the next append repairs
        raise AuditError(f"short write to audit stream {stream}", code="AUDIT_CORRUPT")
    os.fsync(fd)
    return body


def _tail(fd: int, path: Path, stream: str) -> tuple[dict[str, Any] | None, bytes]:
    """The last complete record (validated) and any torn bytes after it."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, b""
    chunk = 8192
    while True:
        start = max(0, size - chunk)
        data = os.pread(fd, size - start, start)
        cut = data.rfind(b"\n")
        torn = data[cut + 1 :] if cut >= 0 else data
        body = data[: cut + 1] if cut >= 0 else b""
        begin = body.rfind(b"\n", 0, len(body) - 1)
        if begin >= 0 or start == 0:
            break
        if chunk > 4 * MAX_LINE:
            raise AuditError(f"{path}: last record longer than {MAX_LINE} bytes", code="AUDIT_CORRUPT")
        chunk *= 4
    line = body[begin + 1 :]
    if not line:
        return None, torn
    try:
        record = json.loads(line, parse_float=reject_float)
        ok = (
            isinstance(record, dict)
            and set(record) == FIELDS
            and record["stream"] == stream
            and isinstance(record["seq"], int)
            and record["h"] == _hash_of(record)
        )
    except (ValueError, TypeError, RecursionError):
        ok = False
    if not ok:
        raise AuditError(
            f"{path}: the last record is not a valid record of stream {stream}; refusing to extend it",
            code="AUDIT_CORRUPT",
        )
    return record, torn


def _hash_of(record: dict[str, Any]) -> str:
    return sha256_hex(canonical({k: v for k, v in record.items() if k != "h"}))


def verify_audit(root: str | os.PathLike[str], anchors: Iterable[Anchor] = ()) -> AuditReport:
    """Check every published stream (`.exo/audit/`), every open runtime stream, and every anchor;
    never raises for damage found.

    Recomputes each record's hash and link, checks seq continuity from 1, stream binding (field,
    file name, genesis), canonical encoding, nothing after a seal, no torn tail; a published stream
    must equal the runtime copy exo sealed, if this clone has one; then each anchor must name a
    record that still exists with the same hash (catches truncation and rewrites).
    """
    base = Path(root).absolute()
    problems: list[AuditProblem] = []
    streams: list[StreamReport] = []
    heads: dict[str, list[str]] = {}
    for stream, path, runtime in _stream_files(base):
        hashes: list[str] = []
        report = _verify_stream(path, stream, problems, hashes)
        if not (runtime and report.sealed):
            streams.append(report)
            heads[stream] = hashes
        if not runtime:
            _compare_copy(base, stream, path, problems)
    checked = 0
    for anchor in anchors:
        checked += 1
        _check_anchor(anchor, heads.get(anchor.stream), problems)
    return AuditReport(ok=not problems, streams=streams, anchors_checked=checked, problems=problems)


def _stream_files(base: Path) -> list[tuple[str, Path, bool]]:
    """(stream, file, is the runtime copy) to verify: every published stream, and every runtime
    stream not published here. A sealed runtime copy is checked but anchors nothing: its published
    copy, here or in another worktree of the clone, is the record."""
    found: dict[str, tuple[Path, bool]] = {}
    published = base / AUDIT_DIR
    for path in sorted(published.glob("*.jsonl")) if published.is_dir() else []:
        found[path.name.removesuffix(".jsonl")] = (path, False)
    runtime = runtime_audit_dir(base)
    for path in sorted(runtime.glob("*.jsonl")) if runtime is not None and runtime.is_dir() else []:
        found.setdefault(path.name.removesuffix(".jsonl"), (path, True))
    return [(stream, path, is_runtime) for stream, (path, is_runtime) in sorted(found.items())]


def _compare_copy(base: Path, stream: str, path: Path, problems: list[AuditProblem]) -> None:
    """A published stream must be byte-identical to the copy exo sealed in this clone, if any."""
    runtime = runtime_audit_dir(base)
    copy = runtime / path.name if runtime is not None else None
    try:
        differs = copy is not None and copy.is_file() and read_regular(copy) != read_regular(path)
    except OSError:
        return  # reported as unreadable already
    if differs:
        problems.append(
            AuditProblem(
                kind="copy_mismatch",
                stream=stream,
                message=f"{AUDIT_DIR}/{path.name} differs from the stream exo sealed in this clone",
            )
        )


def _verify_stream(path: Path, stream: str, problems: list[AuditProblem], hashes: list[str]) -> StreamReport:
    def problem(kind: ProblemKind, line: int | None, seq: int | None, message: str) -> None:
        problems.append(AuditProblem(kind=kind, stream=stream, line=line, seq=seq, message=message))

    try:
        ids.stream_id(stream)
    except InputError:
        problem("bad_stream_name", None, None, f"{path.name} is not named after a valid stream id")
    try:
        raw = read_regular(path)
    except OSError as exc:
        problem("unreadable", None, None, f"cannot read {path.name}: {exc.strerror}")
        return StreamReport(stream=stream, records=0, head_seq=0, head=genesis(stream), sealed=False)
    lines = raw.split(b"\n")
    if lines[-1]:
        problem("torn_tail", len(lines), None, f"{len(lines[-1])} bytes after the last complete record")
    lines.pop()
    prev, sealed = genesis(stream), False
    for number, line in enumerate(lines, start=1):
        seq = len(hashes) + 1
        try:
            record = json.loads(line, parse_float=reject_float)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            problem("bad_json", number, None, f"not a JSON record: {str(exc)[:200]}")
            hashes.append("")
            continue
        if not isinstance(record, dict) or set(record) != FIELDS or not _typed(record):
            problem("bad_record", number, None, "record fields are missing, extra or of the wrong type")
            hashes.append("")
            continue
        if sealed:
            problem("after_seal", number, record["seq"], "record after the stream was sealed")
        encoded = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if encoded != line:
            problem("not_canonical", number, record["seq"], "line is not in canonical form (edited or re-encoded)")
            digest = _hash_of(record)
        else:
            cut = line.rfind(_H_MARK)
            digest = sha256_hex(line[:cut] + line[cut + len(_H_MARK) + 65 :])
        if record["v"] != RECORD_VERSION:
            problem("unknown_version", number, record["seq"], f"record version {record['v']!r}")
        if record["stream"] != stream:
            problem("stream_mismatch", number, record["seq"], f"record of stream {record['stream']!r} in {path.name}")
        if record["seq"] != seq:
            problem("seq_gap", number, record["seq"], f"expected seq {seq}, found {record['seq']}")
        if record["prev"] != prev:
            problem("broken_link", number, record["seq"], "prev does not match the previous record's hash")
        if record["h"] != digest:
            problem("hash_mismatch", number, record["seq"], "record content does not match its hash")
        prev, sealed = record["h"], sealed or record["event"] == SEAL_EVENT
        hashes.append(record["h"])
    return StreamReport(
        stream=stream, records=len(lines), head_seq=len(hashes), head=prev if hashes else genesis(stream), sealed=sealed
    )


def _typed(record: dict[str, Any]) -> bool:
    return (
        type(record["v"]) is int
        and type(record["seq"]) is int
        and isinstance(record["data"], dict)
        and all(isinstance(record[k], str) for k in ("stream", "ts", "event", "prev", "h"))
    )


def _check_anchor(anchor: Anchor, hashes: Sequence[str] | None, problems: list[AuditProblem]) -> None:
    def problem(kind: ProblemKind, message: str) -> None:
        problems.append(AuditProblem(kind=kind, stream=anchor.stream, seq=anchor.seq, message=message))

    where = f" (anchor from {anchor.source})" if anchor.source else ""
    if hashes is None:
        problem("anchor_missing", f"stream {anchor.stream} does not exist{where}")
    elif anchor.seq > len(hashes):
        problem("anchor_missing", f"stream ends at seq {len(hashes)} but seq {anchor.seq} was anchored{where}")
    elif hashes[anchor.seq - 1] != anchor.h:
        problem("anchor_mismatch", f"record {anchor.seq} no longer has the anchored hash{where}")
