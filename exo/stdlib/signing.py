"""SSH signatures: `.exo/allowed_signers`, signing with a key, and verifying as `ssh-keygen -Y verify` does.

`.exo/allowed_signers` is git's allowed-signers format (ssh-keygen(1), ALLOWED SIGNERS), read
strictly: every principal is an exo actor (`human:alice@example.com`, `broker:laptop`), the only
option is `namespaces="..."`, and a line exo cannot read is an error naming it — never a signer
silently dropped or widened. The cryptography is ssh-keygen's own: exo finds which listed key made
a signature (the public key is inside it) and asks `ssh-keygen -Y verify` whether it holds.

Namespaces keep one kind of signature from passing for another: `exo-record` (a broker closing a
session), `exo-act` (a human-only act), `git` (a commit).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from exo.kernel import Governance, GovernanceError, StateError
from exo.kernel.ids import ACTOR_RE

ALLOWED_SIGNERS = ".exo/allowed_signers"
RECORD = "exo-record"
ACT = "exo-act"
GIT = "git"
NAMESPACES = (RECORD, ACT, GIT)
KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
MAX_SIGNERS_BYTES = 1 << 20
_LINE = re.compile(
    r'(?P<principals>\S+)(?:\s+namespaces="(?P<ns>[a-z0-9,-]*)")?\s+(?P<type>\S+)\s+(?P<key>\S+)(?:\s.*)?'
)
_ARMOR = (b"-----BEGIN SSH SIGNATURE-----", b"-----END SSH SIGNATURE-----")


def required(gov: Governance, what: str) -> bool:
    """Whether the constitution's `signatures` rule requires `what` (`session_records`, `human_acts`,
    `human_commits`) to be signed. No rule, nothing required."""
    from exo.kernel import SignaturesRule  # typed rules cost pydantic: only callers that sign pay

    from .rules import first

    rule = first(gov, SignaturesRule)
    return rule is not None and bool(getattr(rule, what))


@dataclass(frozen=True, slots=True)
class Signer:
    """One line of allowed_signers: who, for which namespaces (None: any), and the public key."""

    principals: tuple[str, ...]
    namespaces: tuple[str, ...] | None
    key_type: str
    key: str  # base64 of the public key blob
    line: int

    def allows(self, principal: str, namespace: str) -> bool:
        return principal in self.principals and (self.namespaces is None or namespace in self.namespaces)

    def text(self) -> str:
        ns = f' namespaces="{",".join(self.namespaces)}"' if self.namespaces is not None else ""
        return f"{','.join(self.principals)}{ns} {self.key_type} {self.key}"


def parse_signers(raw: bytes) -> list[Signer]:
    """Every signer in allowed_signers bytes. Raises GovernanceError(SIGNERS_INVALID) listing each
    line that is not `principal[,principal] [namespaces="ns,..."] keytype base64 [comment]`."""
    if len(raw) > MAX_SIGNERS_BYTES:
        raise GovernanceError(f"{ALLOWED_SIGNERS} is larger than {MAX_SIGNERS_BYTES} bytes", code="SIGNERS_INVALID")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GovernanceError(f"{ALLOWED_SIGNERS} is not UTF-8 (byte {exc.start})", code="SIGNERS_INVALID") from None
    signers, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        signer, problem = _signer(stripped, number)
        if signer is None:
            problems.append(f"line {number}: {problem}")
        else:
            signers.append(signer)
    if problems:
        raise GovernanceError(
            f"{ALLOWED_SIGNERS} does not parse:\n  " + "\n  ".join(problems),
            code="SIGNERS_INVALID",
        )
    return signers


def _signer(line: str, number: int) -> tuple[Signer | None, str]:
    if "\x00" in line or not line.isprintable():
        return None, "holds control characters"
    match = _LINE.fullmatch(line)
    if match is None:
        return None, 'expected `principal[,principal] [namespaces="ns,..."] keytype base64-key [comment]`'
    principals = tuple(match["principals"].split(","))
    bad = [p for p in principals if not ACTOR_RE.fullmatch(p)]
    if bad:
        return None, f"{bad[0]!r} is not an exo actor (human:EMAIL, broker:NAME); no wildcards, no other options"
    namespaces = tuple(match["ns"].split(",")) if match["ns"] is not None else None
    unknown = [n for n in namespaces or () if n not in NAMESPACES]
    if unknown:
        return None, f"unknown namespace {unknown[0]!r} (exo signs in {', '.join(NAMESPACES)})"
    if match["type"] not in KEY_TYPES:
        return None, f"unsupported key type {match['type']!r}"
    try:
        blob = base64.b64decode(match["key"], validate=True)
    except ValueError:
        return None, "the key is not base64"
    if _string(blob, 0)[0] != match["type"].encode():
        return None, f"the key is not a {match['type']} key"
    return Signer(principals, namespaces, match["type"], match["key"], number), ""


def _string(blob: bytes, at: int) -> tuple[bytes, int]:
    """The SSH wire-format string at `at` and the offset after it (b"" past the end)."""
    if at + 4 > len(blob):
        return b"", len(blob)
    size = int.from_bytes(blob[at : at + 4], "big")
    return blob[at + 4 : at + 4 + size], at + 4 + size


def signature_key(signature: bytes) -> tuple[str, str] | None:
    """(public key as base64, namespace) inside an armored SSH signature, or None if it is not one."""
    body = signature.strip()
    if not (body.startswith(_ARMOR[0]) and body.endswith(_ARMOR[1])) or len(body) > 65536:
        return None
    try:
        blob = base64.b64decode(b"".join(body[len(_ARMOR[0]) : -len(_ARMOR[1])].split()), validate=True)
    except ValueError:
        return None
    if not blob.startswith(b"SSHSIG") or len(blob) < 10:
        return None
    key, at = _string(blob, 10)
    namespace, _ = _string(blob, at)
    if not key:
        return None
    return base64.b64encode(key).decode(), namespace.decode("utf-8", "replace")


def signer_of(signers: list[Signer], namespace: str, data: bytes, signature: bytes, kind: str) -> str | None:
    """The principal of kind `kind` (`human`, `broker`) whose listed key made `signature` over `data`
    in `namespace`, as `ssh-keygen -Y verify` confirms; None when no listed signer did."""
    found = signature_key(signature)
    if found is None or found[1] != namespace:
        return None
    candidates = [
        principal
        for signer in signers
        if signer.key == found[0]
        for principal in signer.principals
        if principal.startswith(f"{kind}:") and signer.allows(principal, namespace)
    ]
    for principal in candidates[:1]:  # one key, one verification: every principal of it names the same key
        if _verify(signers, principal, namespace, data, signature):
            return principal
    return None


def _verify(signers: list[Signer], principal: str, namespace: str, data: bytes, signature: bytes) -> bool:
    with tempfile.TemporaryDirectory(prefix="exo-verify-") as tmp:
        allowed, sig = Path(tmp) / "allowed_signers", Path(tmp) / "data.sig"
        allowed.write_text("".join(s.text() + "\n" for s in signers))
        sig.write_bytes(signature)
        argv = ["-Y", "verify", "-f", str(allowed), "-I", principal, "-n", namespace, "-s", str(sig)]
        done = _ssh_keygen(argv, data)
    return done.returncode == 0


def sign(key: Path | str, namespace: str, data: bytes) -> bytes:
    """An armored SSH signature of `data` by `key` (a private key file, or a public key whose private
    half ssh-agent holds). Raises GovernanceError(SIGNING_FAILED) when ssh-keygen cannot sign."""
    done = _ssh_keygen(["-Y", "sign", "-q", "-f", str(key), "-n", namespace], data)
    signature = done.stdout
    if done.returncode != 0 or signature_key(signature) is None:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise GovernanceError(
            f"ssh-keygen could not sign with {key}: {why[-1] if why else f'exit {done.returncode}'}",
            code="SIGNING_FAILED",
        )
    return signature


def generate(private: Path, comment: str) -> None:
    """A new ed25519 key pair at `private` (and `private`.pub), without a passphrase."""
    done = _ssh_keygen(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(private)], b"")
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()
        raise GovernanceError(f"ssh-keygen could not create {private}: {why}", code="SIGNING_FAILED")


def _ssh_keygen(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise StateError(
            "signatures need ssh-keygen (OpenSSH 8.2 or later)",
            code="IO_ERROR",
            hint="install OpenSSH's client tools (Debian/Ubuntu: `apt install openssh-client`)",
        )
    return subprocess.run([exe, *args], input=data, capture_output=True, check=False, timeout=60)
