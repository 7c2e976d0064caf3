"""Signatures doctor verifies (SPEC §14): brokers' on session records, humans' on human-only acts.

Each record and act is judged where it entered history: the commit that adds it. A requirement is
the `signatures` rule of that commit or of any of its parents (so a commit that drops the rule is
still held to it).

- A record's signature covers its exact bytes, and the record pins its memento, fence, products
  and sealed audit head, so a signed record vouches for the whole session. Its signers are those
  of the commit that adds it.
- A human act is an event stream (`signers.changed`, `repo.unfrozen`, `drift.accepted`, ...) signed
  by the human its data names, whom the signers *before* the commit list — a signer cannot vouch
  for itself. Only the very first list, with no list before it, is taken on trust (its commit is
  reported as the trust root).
- A commit that brings a new `.exo/allowed_signers` or constitution needs the signed act that
  approved exactly that content (its sha256); a record whose drift a human accepted needs the
  signed `drift.accepted` of that session.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from exo.kernel import ExoError, Governance
from exo.kernel.layout import AUDIT_DIR, CONSTITUTION

from . import events, git, records, signing
from .history import Commit

HUMAN_EVENTS = frozenset({"signers.changed", "repo.unfrozen", "drift.accepted", "ticket.approved", "actor.restored"})
# A guarded file's every new content needs the signed act of this event whose data holds its sha256 there.
GUARDED = {
    signing.ALLOWED_SIGNERS: ("signers.changed", "sha256"),
    CONSTITUTION: ("governance.compiled", "source_sha256"),
}
SignersOrWhy = list[signing.Signer] | str


@dataclass(frozen=True, slots=True)
class Verdict:
    """One record's signature: who signed it (None: nobody listed), whether the rule requires one."""

    sid: str
    commit: str
    signer: str | None
    required: bool
    why: str


def added_records(listed: list[Commit]) -> dict[str, Commit]:
    """Session id -> the commit of `listed` that adds its record (new against every parent)."""
    out: dict[str, Commit] = {}
    for commit in listed:
        for path in commit.changed():
            new = all(diff[path][0] is None for diff in commit.diffs)
            if new and path.startswith(f"{records.SESSIONS}/") and path.endswith(".json"):
                out.setdefault(records.sid_of(path), commit)
    return out


class Signers:
    """`.exo/allowed_signers` at any commit, read in batches and parsed once per version."""

    def __init__(self, root: Path, commits: list[Commit]) -> None:
        self.root = root
        shas = sorted({c.sha for c in commits} | {p for c in commits for p in c.parents})
        self.oids = git.objects(root, [f"{sha}:{signing.ALLOWED_SIGNERS}" for sha in shas])
        self.contents = git.blobs(root, [oid for oid in self.oids.values() if oid])
        self.parsed: dict[str | None, SignersOrWhy] = {None: []}

    def at(self, sha: str) -> SignersOrWhy:
        """The signers at `sha`, or why they do not parse."""
        oid = self.oids.get(f"{sha}:{signing.ALLOWED_SIGNERS}")
        if oid not in self.parsed:
            try:
                self.parsed[oid] = signing.parse_signers(self.contents.get(oid or "", b""))
            except ExoError as exc:
                self.parsed[oid] = exc.message.splitlines()[0]
        return self.parsed[oid]

    def before(self, commit: Commit) -> tuple[SignersOrWhy, bool]:
        """The signers a commit's acts answer to: its first parent's that lists anyone, else (the
        trust root, True) its own."""
        for parent in commit.parents:
            listed = self.at(parent)
            if not isinstance(listed, list) or listed:
                return listed, False
        return self.at(commit.sha), True


def required(governance: Callable[[str], Governance], commit: Commit, what: str) -> bool:
    """Whether the signatures rule of `commit` or of one of its parents requires `what` signed."""
    return any(signing.required(governance(sha), what) for sha in (commit.sha, *commit.parents))


def judge(
    adding: dict[str, Commit],
    head_blob: Callable[[str], bytes | None],
    governance: Callable[[str], Governance],
    signers: Signers,
) -> list[Verdict]:
    """A verdict for every record `adding` names, from the record and signature at the head."""
    out = []
    for sid, commit in sorted(adding.items()):
        need = required(governance, commit, "session_records")
        out.append(_verdict(sid, commit, need, signers.at(commit.sha), head_blob))
    return out


def _verdict(
    sid: str,
    commit: Commit,
    required: bool,
    signers: SignersOrWhy,
    head_blob: Callable[[str], bytes | None],
) -> Verdict:
    record = head_blob(f"{records.SESSIONS}/{sid}.json") or b""
    signature = head_blob(records.signature_path(sid))
    if signature is None:
        return Verdict(sid, commit.sha, None, required, "the record is not signed")
    if isinstance(signers, str):
        return Verdict(sid, commit.sha, None, required, f"the signers at {commit.short} do not parse: {signers}")
    signer = signing.signer_of(signers, signing.RECORD, record, signature, "broker")
    if signer is None:
        why = f"its signature is not by a broker key listed in {signing.ALLOWED_SIGNERS} at {commit.short}"
        return Verdict(sid, commit.sha, None, required, why)
    return Verdict(sid, commit.sha, signer, required, f"signed by {signer}")


# --- human acts


@dataclass(frozen=True, slots=True)
class Act:
    """A human act the range adds (an event stream), and whether its signature holds."""

    stream: str  # repo-relative path of the event stream
    commit: Commit
    event: str
    data: dict[str, object]
    signer: str | None
    required: bool
    why: str
    trust_root: bool


@dataclass(frozen=True, slots=True)
class Missing:
    """A change that needs a signed human act and has none."""

    commit: Commit
    path: str
    why: str


def acts(
    listed: list[Commit],
    head_blob: Callable[[str], bytes | None],
    governance: Callable[[str], Governance],
    signers: Signers,
) -> list[Act]:
    """Every human act (and governance.compiled event) the range adds, verified."""
    out = []
    for commit in listed:
        for path in commit.changed():
            fresh = all(diff[path][0] is None for diff in commit.diffs)
            if fresh and path.startswith(f"{AUDIT_DIR}/{events.PREFIX}") and path.endswith(".jsonl"):
                act = _act(path, commit, head_blob, governance, signers)
                if act is not None:
                    out.append(act)
    return out


def _act(
    path: str,
    commit: Commit,
    head_blob: Callable[[str], bytes | None],
    governance: Callable[[str], Governance],
    signers: Signers,
) -> Act | None:
    stream = head_blob(path) or b""
    try:
        first = json.loads(stream.split(b"\n", 1)[0])
        event, data = str(first["event"]), first["data"]
        if not isinstance(data, dict):
            return None
    except (ValueError, KeyError, TypeError, RecursionError):
        return None  # not an event: the audit check reports a damaged stream
    if event not in HUMAN_EVENTS and event != "governance.compiled":
        return None
    need = event in HUMAN_EVENTS and required(governance, commit, "human_acts")
    listed, root = signers.before(commit)
    signature = head_blob(events.signature_path(path))
    signer, why = _act_signer(commit, listed, stream, signature, data.get("actor"))
    return Act(path, commit, event, data, signer, need, why, root)


def _act_signer(
    commit: Commit, listed: SignersOrWhy, stream: bytes, signature: bytes | None, actor: object
) -> tuple[str | None, str]:
    if signature is None:
        return None, "the act is not signed"
    if isinstance(listed, str):
        return None, f"the signers before {commit.short} do not parse: {listed}"
    signer = signing.signer_of(listed, signing.ACT, stream, signature, "human")
    if signer is None:
        return None, f"its signature is not by a human key {signing.ALLOWED_SIGNERS} listed before {commit.short}"
    if signer != actor:
        return None, f"signed by {signer}, but the act names {actor}"
    return signer, f"signed by {signer}"


def missing(
    listed: list[Commit],
    found: list[Act],
    added_records: dict[str, Commit],
    head_records: dict[str, records.SessionRecord],
    governance: Callable[[str], Governance],
    blobs: Callable[[list[str]], dict[str, bytes]],
) -> list[Missing]:
    """Changes that need a signed human act, where the constitution requires human acts signed:
    a new allowed_signers or constitution, and a record whose drift a human accepted."""
    signed = [a for a in found if a.signer is not None]
    out = []
    changes = [(c, p) for c in listed for p in c.changed() if p in GUARDED and required(governance, c, "human_acts")]
    contents = blobs([entry[1] for c, p in changes if (entry := c.entry(p)) is not None])
    for commit, path in changes:
        entry = commit.entry(path)
        digest = hashlib.sha256(contents.get(entry[1], b"") if entry else b"").hexdigest()
        event, field = GUARDED[path]
        if not any(a.event == event and a.data.get(field) == digest for a in signed):
            why = f"no {event} act signed by a listed human approves this {path} (sha256 {digest[:16]})"
            out.append(Missing(commit, path, why))
    for sid, commit in sorted(added_records.items()):
        record = head_records.get(sid)
        if record is None or not record.accepted_drift or not required(governance, commit, "human_acts"):
            continue
        if not any(a.event == "drift.accepted" and a.data.get("sid") == sid for a in signed):
            why = f"session {sid}'s drift was accepted, but no drift.accepted act signed by a listed human says so"
            out.append(Missing(commit, f"{records.SESSIONS}/{sid}.json", why))
    return out


# --- human commits


def split_signature(raw: bytes) -> tuple[bytes, bytes] | None:
    """(the signed payload, the armored signature) of a raw commit object signed with `gpgsig`
    (or `gpgsig-sha256`), as git verifies it: the object without that header."""
    header, sep, message = raw.partition(b"\n\n")
    kept, signature, inside = [], [], False
    for line in header.split(b"\n"):
        if line.startswith((b"gpgsig ", b"gpgsig-sha256 ")):
            inside = True
            signature.append(line.split(b" ", 1)[1])
        elif inside and line.startswith(b" "):
            signature.append(line[1:])
        else:
            inside = False
            kept.append(line)
    if not signature:
        return None
    return b"\n".join(kept) + sep + message, b"\n".join(signature) + b"\n"


def human_commits(
    root: Path, listed: list[Commit], governance: Callable[[str], Governance], signers: Signers
) -> dict[str, str]:
    """sha -> why not, for each commit stamped by a human (outside a session) where the rule
    requires human commits signed and the commit is not signed by that human with a key the
    signers before it list for `git`. Commits that pass are left out."""
    wanted = [
        c
        for c in listed
        if c.trailers.get("Exo-Actor", "").startswith("human:")
        and "Exo-Session" not in c.trailers
        and required(governance, c, "human_commits")
    ]
    raw = git.blobs(root, [c.sha for c in wanted])
    out = {}
    for commit in wanted:
        actor = commit.trailers["Exo-Actor"]
        split = split_signature(raw.get(commit.sha, b""))
        listed_signers, _ = signers.before(commit)
        if split is None:
            out[commit.sha] = f"stamped by {actor} but not signed (the signatures rule requires human commits signed)"
        elif isinstance(listed_signers, str):
            out[commit.sha] = f"the signers before {commit.short} do not parse: {listed_signers}"
        elif signing.signer_of(listed_signers, signing.GIT, *split, "human") != actor:
            out[commit.sha] = f"stamped by {actor} but not signed with a key {signing.ALLOWED_SIGNERS} lists for them"
    return out
