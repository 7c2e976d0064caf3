"""SEC-8: with the `signatures` rule, doctor from a fresh clone flags every record and human act that
no listed key signed — a fabricated session, a rewritten record, a record signed by an unlisted key,
a forged unfreeze, a signer added or the rule removed without a human's signature — and a legitimate
signed history passes. Without the rule, the same forgeries are reported as unsigned, never as
verified. Real ssh-keygen keys, real git, real hooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exo.kernel.fs import audit_path
from exo.stdlib import closeout, events, governance, keys, records, sessions, signers, signing
from exo.stdlib.doctor import diagnose
from tests.conftest import exo, git
from tests.stdlib.conftest import ssh_key, use_key
from tests.stdlib.test_doctor import commit, fabricate, fresh_clone, governed_work, write

A = "agent:one"
H = "human:test@example.com"
RULE = "\n```yaml exo-policy\nid: signed\ntype: signatures\n```\n"


def list_keys(root: Path) -> None:
    keys.create_broker("laptop")
    change = signers.add(root, H, broker=True, human=False, lines=[])
    assert change.signed_by == H and len(change.added) == 2  # the human is listed first: the trust root
    commit(root, "add", "-A", ".exo")
    commit(root, "commit", "-qm", "list signers")


def require_signatures(root: Path) -> None:
    constitution = root / ".exo/CONSTITUTION.md"
    constitution.write_text(constitution.read_text() + RULE)
    assert governance.build(root, H).changed
    commit(root, "add", "-A", ".exo")
    commit(root, "commit", "-qm", "require signatures")


@pytest.fixture
def signed(keyed: Path) -> Path:
    """A repository whose constitution requires signatures, with a listed broker and human."""
    list_keys(keyed)
    require_signatures(keyed)
    return keyed


def problems(root: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for p in diagnose(fresh_clone(root)).problems:
        out.setdefault(p.code, set()).add(p.subject)
    return out


def attacker_broker(tmp_path: Path) -> keys.Key:
    key = ssh_key(tmp_path / "attacker", "broker:laptop")
    public = " ".join((tmp_path / "attacker.pub").read_text().split()[:2])
    return keys.Key(principal="broker:laptop", public=public, source=str(key))


# --- a legitimate signed history


def test_a_signed_history_passes_from_a_fresh_clone(signed: Path) -> None:
    sid = governed_work(signed)
    assert (signed / records.signature_path(sid)).is_file()
    report = diagnose(fresh_clone(signed))
    assert report.ok, report.problems
    assert f"{sid} by broker:laptop" in report.signed
    assert any(s.startswith("signers.changed") and s.endswith(f"by {H}") for s in report.signed)
    assert report.trust_root is not None and H in report.trust_root
    assert report.unsigned == []
    run = exo("doctor", "--json", cwd=fresh_clone(signed))
    assert run.code == 0 and json.loads(run.out)["signed"] == report.signed


def test_a_rule_required_finish_without_a_broker_key_is_refused_before_anything_is_sealed(
    signed: Path,
) -> None:
    sid = sessions.start(signed, A, ticket_id="T1").session.sid
    write(signed, "src/app.py")
    commit(signed, "add", "src/app.py")
    commit(signed, "commit", "-qm", "app", actor=A)
    for leftover in keys.broker_dir().iterdir():
        leftover.unlink()
    with pytest.raises(Exception) as refused:
        closeout.finish(signed, A, summary="app")
    assert getattr(refused.value, "code", None) == "SIGNING_KEY_MISSING"
    assert not (signed / f".exo/sessions/{sid}.json").exists()
    assert b"audit.sealed" not in audit_path(signed, sid).read_bytes()  # nothing sealed: retryable
    keys.create_broker("laptop")  # the same name, a new key: not listed, so doctor will refuse it
    assert closeout.finish(signed, A, summary="app").outcome == "finished"
    assert any(s.endswith(f"{sid}.json") for s in problems(signed)["SIGNATURE_INVALID"])


# --- SEC-8: forgeries with the rule


def test_sec8_a_fabricated_unsigned_session_is_flagged(signed: Path, tmp_path: Path) -> None:
    governed_work(signed)
    fake = fabricate(signed, tmp_path, None)
    found = problems(signed)
    assert any(s.endswith(f".exo/sessions/{fake}.json") for s in found["SIGNATURE_MISSING"])


def test_sec8_a_session_signed_by_a_key_not_in_allowed_signers_is_flagged(signed: Path, tmp_path: Path) -> None:
    governed_work(signed)
    fake = fabricate(signed, tmp_path, attacker_broker(tmp_path))
    found = problems(signed)
    assert any(s.endswith(f".exo/sessions/{fake}.json") for s in found["SIGNATURE_INVALID"])


def test_sec8_a_rewritten_record_is_flagged(signed: Path) -> None:
    sid = governed_work(signed)
    path = signed / f".exo/sessions/{sid}.json"
    data = json.loads(path.read_text())
    data["summary"] = "something else entirely"
    path.write_text(json.dumps(data, indent=2) + "\n")
    memento = records.memento(records.parse(path.read_bytes()))
    (signed / f".exo/mementos/{sid}.md").write_text(memento)  # consistent again: only the signature tells
    commit(signed, "add", "-A")
    commit(signed, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "tidy the record")
    found = problems(signed)
    assert any(s.endswith(f".exo/sessions/{sid}.json") for s in found["SIGNATURE_INVALID"])
    assert "RECORD_REWRITTEN" in found


def test_sec8_a_forged_unfreeze_is_flagged(signed: Path, tmp_path: Path) -> None:
    governed_work(signed)
    forged = events.record(signed, "repo.unfrozen", {"actor": H, "reason": "I say so"})
    commit(signed, "add", "-A")
    commit(signed, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "unfreeze")
    other = ssh_key(tmp_path / "other")
    key = keys.Key(H, " ".join((tmp_path / "other.pub").read_text().split()[:2]), str(other))
    signed_by_other = events.record(signed, "repo.unfrozen", {"actor": H, "reason": "me too"}, signer=key)
    commit(signed, "add", "-A")
    commit(signed, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "unfreeze again")
    found = problems(signed)
    assert any(s.endswith(forged) for s in found["SIGNATURE_MISSING"])
    assert any(s.endswith(signed_by_other) for s in found["SIGNATURE_INVALID"])


def test_sec8_a_signer_added_without_a_human_signature_is_flagged(signed: Path, tmp_path: Path) -> None:
    governed_work(signed)
    attacker = attacker_broker(tmp_path)
    listed = signed / signing.ALLOWED_SIGNERS
    listed.write_text(listed.read_text() + attacker.line(signers.BROKER_NAMESPACES) + "\n")
    commit(signed, "add", "-A")
    sha = commit(signed, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "one more broker", "--trailer",
                 f"Exo-Actor: {H}")  # fmt: skip
    found = problems(signed)
    assert f"{sha[:12]} {signing.ALLOWED_SIGNERS}" in found["ACT_MISSING"]


def test_sec8_a_signer_vouching_for_itself_is_flagged(signed: Path, tmp_path: Path) -> None:
    """An attacker's own key, added with a `signers.changed` act that key signed: the act answers to
    the signers before the commit, which do not list it."""
    governed_work(signed)
    rogue = ssh_key(tmp_path / "rogue")
    use_key(signed, rogue)
    listed = signed / signing.ALLOWED_SIGNERS
    rogue_key = keys.human(signed)
    assert rogue_key is not None
    text = listed.read_text() + rogue_key.line(signers.HUMAN_NAMESPACES).replace(H, "human:rogue@example.com") + "\n"
    listed.write_text(text)
    import hashlib

    doc = {"actor": H, "sha256": hashlib.sha256(text.encode()).hexdigest(), "added": [], "removed": []}
    act = events.record(signed, "signers.changed", doc, signer=rogue_key)
    commit(signed, "add", "-A")
    sha = commit(signed, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "rogue", "--trailer", f"Exo-Actor: {H}")
    found = problems(signed)
    assert any(s.endswith(act) for s in found["SIGNATURE_INVALID"])
    assert f"{sha[:12]} {signing.ALLOWED_SIGNERS}" in found["ACT_MISSING"]


def test_sec8_dropping_the_rule_without_a_signed_compile_is_flagged(signed: Path) -> None:
    governed_work(signed)
    constitution = signed / ".exo/CONSTITUTION.md"
    constitution.write_text(constitution.read_text().replace(RULE, "\n"))
    git(signed, "config", "--unset", "user.signingkey")  # no key: the compile is not signed
    governance.build(signed)  # no actor: an unsigned compile, as a hand-made one would be
    commit(signed, "add", "-A")
    sha = commit(signed, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "relax", "--trailer", f"Exo-Actor: {H}")
    found = problems(signed)
    assert f"{sha[:12]} .exo/CONSTITUTION.md" in found["ACT_MISSING"]


def test_an_agent_cannot_change_the_signers_or_compile_a_signed_constitution(signed: Path) -> None:
    for argv in (["keys", "add", "--broker"], ["keys", "remove", "broker:laptop"], ["build-governance"]):
        if argv == ["build-governance"]:
            constitution = signed / ".exo/CONSTITUTION.md"
            constitution.write_text(constitution.read_text() + "\nmore words\n")
        run = exo(*argv, "--actor", A, cwd=signed)
        assert run.code == 1 and "NOT_ALLOWED" in run.err, (argv, run.err)
        as_human = exo(*argv, cwd=signed, env={"CLAUDECODE": "1"})
        assert as_human.code != 0, argv


# --- the same forgeries without the rule: reported, not flagged, never "verified"


def test_without_the_rule_forgeries_are_reported_unsigned(keyed: Path, tmp_path: Path) -> None:
    list_keys(keyed)
    sid = governed_work(keyed)
    fake = fabricate(keyed, tmp_path, attacker_broker(tmp_path))
    forged = events.record(keyed, "repo.unfrozen", {"actor": H, "reason": "I say so"})
    commit(keyed, "add", "-A")
    commit(keyed, "-c", "core.hooksPath=/dev/null", "commit", "-qm", "unfreeze", "--trailer", f"Exo-Actor: {H}")
    report = diagnose(fresh_clone(keyed))
    assert report.ok, report.problems
    assert f"{sid} by broker:laptop" in report.signed  # a real broker's record verifies either way
    unsigned = {u.split(":")[0] for u in report.unsigned}
    assert fake in unsigned and f"repo.unfrozen {records.sid_of(forged)}" in unsigned
    assert not any(fake in s for s in report.signed)


def test_sec8_on_other_machines_only_the_humans_signed_lifting_ends_a_remote_freeze(
    signed: Path, tmp_path: Path
) -> None:
    """With claims on a remote and human acts signed, a freeze reaches machine b through the remote;
    a lifting pushed there by anyone with push access (unsigned, or signed by a key not listed for
    the human it names) leaves b frozen; the human's own `exo unfreeze` lifts it on b too."""
    from exo.stdlib import claims, freeze

    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    commit(signed, "remote", "add", "origin", str(bare))
    with (signed / ".exo/config.yaml").open("a") as fh:
        fh.write("claims:\n  store: remote\n  remote: origin\n")
    commit(signed, "commit", "-qam", "claims on the remote", actor=H)
    commit(signed, "push", "-q", "origin", "main")
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(bare), str(b))
    on_b = claims.lease_store(b)
    freeze.freeze(signed, H, "incident 45")
    claims.refresh_freeze(b, on_b)
    assert freeze.state(b).frozen
    since = claims.RemoteLeaseStore(signed, "origin").read_freeze()
    assert since is not None
    forger = claims.RemoteLeaseStore(signed, "origin")
    forger.put_freeze(None, {"actor": H, "lifts": since["since"], "signature": ""})
    claims.refresh_freeze(b, on_b)
    assert freeze.state(b).frozen  # unsigned
    other = keys.Key(H, " ".join(ssh_key(tmp_path / "other").with_suffix(".pub").read_text().split()[:2]),
                     str(tmp_path / "other"))  # fmt: skip
    lift = {"actor": H, "lifts": since["since"]}
    lift["signature"] = other.sign(signing.ACT, claims._lift_bytes(lift)).decode()
    forger.put_freeze(None, lift)
    claims.refresh_freeze(b, on_b)
    assert freeze.state(b).frozen  # signed, but not by a key listed for the human
    freeze.unfreeze(signed, H)
    claims.refresh_freeze(b, on_b)
    assert not freeze.state(b).frozen
