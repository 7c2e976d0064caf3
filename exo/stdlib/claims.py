"""Claims on the git remote (SPEC §8): the lease store behind `refs/exo/claims/<ticket>`.

A ticket's claim is a ref on a remote every machine shares, pointing at a linear chain of small
commits; each commit's tree holds one file, `lease.json`, the lease as the kernel's `Lease` model
writes it. A swap is one push, `--force-with-lease=<ref>:<tip it read>` (an empty tip: the ref must
not exist yet), of a commit whose parent is that tip. The server checks the old value under its
ref lock, so of several machines pushing from the same tip exactly one wins, and the others are
told so and read again. Nothing here commits a claim file to a branch and rebases: with that,
everyone wins (`tests/stdlib/test_claims.py` keeps the demonstration).

Expiry is judged on this machine's own monotonic clock (`Watch`): a claim is taken over only once
this clone has seen its tip unchanged for a whole lease length, whatever the holder's wall clock
wrote; a tip this clone has watched that long reads as expired even if that clock ran ahead.

Finishing lands the work the same way (`finish_claim`): one `git push --atomic` updates the work
branch and the claim's release, each from the tip it was read at, so a holder whose claim was taken
over lands nothing, and a branch someone else moved leaves the claim held.

Tips this clone has read are kept under `refs/exo/seen/<remote>/` (so their objects stay). An
unreachable remote is REMOTE_UNREACHABLE, never a silent fallback to the local store.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, Field, ValidationError

from exo.kernel import InputError, Lease, LeaseStore, LocalLeaseStore, LockError, StateError, ids, release_lock
from exo.kernel.canon import canonical
from exo.kernel.fs import atomic_write, file_lock
from exo.kernel.state import UNREADABLE_FREEZE, State, read_bytes, read_doc, remove, write_doc

from . import git, signing
from .config import Config, load_config
from .keys import Key

CLAIMS = "refs/exo/claims/"
SEEN = "refs/exo/seen/"
LEASE_FILE = "lease.json"
FREEZE_REF = "refs/exo/freeze"
RETIRED = "refs/exo/retired"  # the last claim of each ticket whose claim ref `exo claims gc` deleted
FREEZE_FILE = "freeze.json"
ATTEMPTS = 3  # tries of a remote operation whose connection failed
BACKOFF = 0.2  # seconds before the second try, twice that before the third
_REMOTE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_IDENTITY = {
    "GIT_AUTHOR_NAME": "exo",
    "GIT_AUTHOR_EMAIL": "claims@exo.invalid",
    "GIT_COMMITTER_NAME": "exo",
    "GIT_COMMITTER_EMAIL": "claims@exo.invalid",
}


def unreachable(remote: str, detail: str) -> StateError:
    return StateError(
        f"the claims remote {remote!r} cannot be reached: {detail.strip() or 'git failed'}",
        code="REMOTE_UNREACHABLE",
    )


class Landing(NamedTuple):
    """A branch a claim's swap carries: `ref` on the remote from `old` (empty: it must not exist
    yet) to `new`, in the same atomic push."""

    ref: str
    old: str
    new: str


class Clock(NamedTuple):
    """The clocks a contender judges expiry by: a monotonic one (seconds, never stepped), the
    identity of the boot it counts from (a reboot restarts every watch), and the wall clock."""

    monotonic: Callable[[], float]
    boot: Callable[[], str]
    wall: Callable[[], datetime]


def _boot() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:  # no boot id here: when the monotonic clock started, to the minute
        return str(round((time.time() - time.monotonic()) / 60))


MACHINE = Clock(time.monotonic, _boot, lambda: datetime.now(UTC))


class Watch:
    """When this clone first saw each claim's current tip, on its monotonic clock, kept in a cache
    under the git common dir (shared by its worktrees and its processes; losing it only restarts
    the watches, which delays takeovers and never hastens one)."""

    def __init__(self, root: Path, clock: Clock) -> None:
        self.root = root
        self.path = State(root).cache("claims-watch")
        self.clock = clock
        self._boot = clock.boot()
        self._seen: dict[str, tuple[str, float]] | None = None

    def see(self, tips: dict[str, str]) -> dict[str, float]:
        """{ticket: seconds this clone has seen its tip as the claim} for `tips` ({ticket: tip});
        tips seen here for the first time are noted (0 seconds), all in one write."""
        seen = self._load()
        if any(seen.get(t, ("", 0.0))[0] != tip for t, tip in tips.items()):
            with file_lock(self.root, self.path):
                seen = self._load(again=True)
                now = self.clock.monotonic()
                new = {t: (tip, now) for t, tip in tips.items() if seen.get(t, ("", 0.0))[0] != tip}
                seen.update(new)
                doc = {"boot": self._boot, "tips": {t: [oid, at] for t, (oid, at) in sorted(seen.items())}}
                write_doc(self.path, doc)
        now = self.clock.monotonic()
        return {t: max(0.0, now - seen[t][1]) for t in tips}

    def _load(self, *, again: bool = False) -> dict[str, tuple[str, float]]:
        if self._seen is not None and not again:
            return self._seen
        try:
            doc = read_doc(self.path) or {}
        except StateError:
            doc = {}  # a damaged cache restarts the watches
        tips = doc.get("tips") if doc.get("boot") == self._boot else None
        self._seen = {
            ticket_id: (entry[0], float(entry[1]))
            for ticket_id, entry in (tips.items() if isinstance(tips, dict) else [])
            if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
            and isinstance(entry[1], int | float) and not isinstance(entry[1], bool)
        }  # fmt: skip
        return self._seen


def lease_store(root: Path, config: Config | None = None) -> LocalLeaseStore | RemoteLeaseStore:
    """The store `.exo/config.yaml` names for this repository's claims. The remote one keeps a copy
    of every lease it reads or writes in the local store's place, which the hooks read (so they
    stay fast and offline); only broker operations refresh it."""
    claims = (config or load_config(root)).claims
    return LocalLeaseStore(root) if claims.store == "local" else RemoteLeaseStore(root, claims.remote, mirror=True)


class RemoteLeaseStore:
    """Leases as refs on the git remote `remote`, swapped by compare-and-swap pushes, their expiry
    judged on `clock` (this machine's own; tests that move time by hand pass theirs). `mirror`
    keeps the copy of each lease the hooks read."""

    def __init__(self, root: str | Path, remote: str, *, mirror: bool = False, clock: Clock = MACHINE) -> None:
        if not _REMOTE_RE.fullmatch(remote):
            raise StateError(f"{remote!r} is not a git remote name exo accepts", code="INVALID_ARGUMENT")
        self.root = Path(root).absolute()
        self.remote = remote
        if not git.run(self.root, "config", "--get", f"remote.{remote}.url", check=False):
            raise StateError(
                f"this repository has no git remote {remote!r}",
                code="INVALID_ARGUMENT",
                hint=f"add it with `git remote add {remote} URL`, or set the claims store in .exo/config.yaml",
            )
        self._tips: dict[str, tuple[str, Lease, Lease]] = {}  # ticket -> (tip read, its lease, as judged here)
        self._mirror = LocalLeaseStore(self.root) if mirror else None
        self._watch = Watch(self.root, clock)
        self._carried: list[Landing] = []

    @contextmanager
    def carrying(self, landing: Landing) -> Iterator[None]:
        """Within: a claim swap pushes `landing` with it, atomically: both refs move or neither.
        A swap refused for the branch alone raises StateError(BRANCH_BEHIND or PUSH_REFUSED)."""
        self._carried = [landing]
        try:
            yield
        finally:
            self._carried = []

    def landing(self, head: str) -> Landing:
        """The update that lands `head` on the remote branch of the same name as the one checked out
        here, from the remote tip it must build on. Raises InputError(INVALID_ARGUMENT) on a detached
        HEAD, StateError(BRANCH_BEHIND) when the remote branch has commits `head` lacks."""
        ref = git.run(self.root, "symbolic-ref", "-q", "HEAD", check=False)
        if not ref.startswith("refs/heads/"):
            raise InputError(
                "with claims on the remote, finishing lands the work on a branch, and HEAD is detached",
                code="INVALID_ARGUMENT",
                hint="check out a branch (`git switch -c BRANCH`) and finish again",
            )
        old = self._ls(ref).get(ref, "")
        if old:
            self._fetch(ref, [old])
            if git.attempt(self.root, "merge-base", "--is-ancestor", old, head)[0] != 0:
                raise behind(self.remote, ref)
        return Landing(ref, old, head)

    def read(self, ticket_id: str) -> Lease | None:
        ids.ticket_id(ticket_id)
        listed = self._ls(CLAIMS + ticket_id, RETIRED)
        tip = listed.get(CLAIMS + ticket_id)
        if tip is None:
            return self._retired(ticket_id, listed.get(RETIRED))
        self._fetch(f"{CLAIMS}{ticket_id}", [tip])
        return self._lease_at(ticket_id, tip, self._watch.see({ticket_id: tip})[ticket_id])

    def all(self) -> list[Lease]:
        """Every claim on the remote, in ticket order (one listing, one fetch for what is new here)."""
        tips = self._remote_tips(CLAIMS + "*")
        self._fetch(CLAIMS + "*", list(tips.values()))
        watched = self._watch.see(tips)
        new = [f"{tip}:{LEASE_FILE}" for ticket_id, tip in tips.items() if self._tips.get(ticket_id, ("",))[0] != tip]
        bodies = git.blobs(self.root, new)  # one process for every claim not read here yet
        return [
            self._lease_at(ticket_id, tip, watched[ticket_id], bodies.get(f"{tip}:{LEASE_FILE}"))
            for ticket_id, tip in sorted(tips.items())
        ]

    def _lease_at(self, ticket_id: str, tip: str, watched: float, body: bytes | None = None) -> Lease:
        """The claim at `tip` (its `lease.json` is `body`, when already read) as this clone judges
        it, having seen that tip for `watched` seconds: once that is a whole lease length, it is
        expired here whatever its wall-clock expiry says."""
        known = self._tips.get(ticket_id)
        if known is not None and known[0] == tip:
            lease = known[1]
        else:
            if body is None:
                body = git.run_bytes(self.root, "cat-file", "blob", f"{tip}:{LEASE_FILE}", check=False)
            lease = self._parsed(body, ticket_id, f"the claim {CLAIMS}{ticket_id}")
        judged = lease
        if lease.state == "held" and watched >= lease.ttl_seconds:
            judged = lease.model_copy(update={"expires_at": min(lease.expires_at, self._watch.clock.wall())})
        self._learned(tip, lease, judged)
        return judged

    def _parsed(self, body: bytes, ticket_id: str, what: str) -> Lease:
        """`body` as the lease of `ticket_id`; LockError(LOCK_CORRUPT) naming `what` otherwise."""
        try:
            lease = Lease.model_validate_json(body)
        except ValidationError as exc:
            raise LockError(f"{what} on {self.remote} is corrupt", code="LOCK_CORRUPT") from exc
        if lease.ticket_id != ticket_id:
            raise LockError(f"{what} on {self.remote} names ticket {lease.ticket_id}", code="LOCK_CORRUPT")
        return lease

    def _retired(self, ticket_id: str, tip: str | None) -> Lease | None:
        """The last claim of `ticket_id` as `exo claims gc` retired it (its ref gone), so that a new
        claim's epoch goes on from it; None for a ticket never claimed. A swap from it creates the
        ref anew (the tip it expects is "none")."""
        self._tips.pop(ticket_id, None)
        if tip is None:
            return None
        self._fetch(RETIRED, [tip])
        body = git.blobs(self.root, [f"{tip}:{ticket_id}.json"]).get(f"{tip}:{ticket_id}.json")
        if body is None:
            return None
        lease = self._parsed(body, ticket_id, f"the retired claim of {ticket_id}")
        if lease.state != "released":
            raise LockError(
                f"the retired claim of {ticket_id} on {self.remote} is not its release", code="LOCK_CORRUPT"
            )
        self._tips[ticket_id] = ("", lease, lease)
        return lease

    def retire(self, leases: list[Lease]) -> None:
        """Keep each of these released claims under refs/exo/retired (one commit for them all, a
        compare-and-swap on its tip), before their refs are deleted: epochs never start again."""
        for _ in range(ATTEMPTS * 3):
            old = self._ls(RETIRED).get(RETIRED) or ""
            entries: dict[str, str] = {}
            if old:
                self._fetch(RETIRED, [old])
                for line in git.run(self.root, "ls-tree", old).splitlines():
                    meta, _, name = line.partition("\t")
                    entries[name] = meta.split()[2]
            for lease in leases:
                body = lease.model_dump_json(indent=2).encode() + b"\n"
                entries[f"{lease.ticket_id}.json"] = self._blob(body)
            commit = self._commit_tree(entries, old, f"exo claims gc: retire {len(leases)} claim(s)")
            pushed, err = self._push(Landing(RETIRED, old, commit))
            if pushed:
                return
        raise unreachable(self.remote, err)

    def _learned(self, tip: str, lease: Lease, judged: Lease) -> None:
        """Remember the tip a lease came from, and copy the lease where the hooks read it."""
        known = self._tips.get(lease.ticket_id)
        self._tips[lease.ticket_id] = (tip, lease, judged)
        if self._mirror is not None and (known is None or known[0] != tip):
            path = self._mirror.path(lease.ticket_id)
            body = lease.model_dump_json(indent=2).encode() + b"\n"
            with file_lock(self._mirror.root, path):
                if read_bytes(str(path)) != body:  # a listing rewrites nothing that is unchanged
                    atomic_write(path, body)

    def swap(self, ticket_id: str, expected: Lease | None, new: Lease) -> bool:
        ids.ticket_id(ticket_id)
        old = "" if expected is None else self._tip_holding(expected)
        if old is None:
            return False
        if expected is not None and expected.state == "held" and new.lease_id != expected.lease_id:
            self._may_take_over(expected, old)
        commit = self._commit(ticket_id, new, old)
        ref = CLAIMS + ticket_id
        for attempt in range(ATTEMPTS):
            pushed, err = self._push(Landing(ref, old, commit), *self._carried)
            if pushed is not None:
                if pushed:
                    self._seen_own(commit, new)
                    return True
                self._tips.pop(ticket_id, None)  # another machine moved it: read it again
                if self._carried and self._remote_tips(ref).get(ticket_id) == (old or None):
                    raise self._not_landed(self._carried[0], err)  # the claim stood: the branch did not
                return False
            # The connection failed, perhaps after the server took the push: the tip tells.
            time.sleep(BACKOFF * (attempt + 1))
            tip = self._remote_tips(ref).get(ticket_id)
            if tip == commit:
                self._seen_own(commit, new)
                return True
            if tip != (old or None):
                self._tips.pop(ticket_id, None)
                return False
        raise unreachable(self.remote, err)

    def delete(self, lease: Lease) -> bool:
        """Remove the claim ref if it still holds exactly `lease`; whether it did."""
        old = self._tip_holding(lease)
        if old is None:
            return False
        pushed, err = self._push(Landing(CLAIMS + lease.ticket_id, old, ""))
        if pushed is None:
            raise unreachable(self.remote, err)
        self._tips.pop(lease.ticket_id, None)
        return pushed

    def _may_take_over(self, held: Lease, tip: str) -> None:
        """Refuse to take over `held` (LockError(LOCK_HELD)) until this clone has itself seen its
        tip unchanged for a whole lease: the holder's wall clock may be behind this one's."""
        watched = self._watch.see({held.ticket_id: tip})[held.ticket_id]
        if watched < held.ttl_seconds:
            raise LockError(
                f"ticket {held.ticket_id} is claimed by {held.holder} (epoch {held.epoch}); its expiry passed by the "
                f"wall clock, but this machine has seen the claim unchanged for only {int(watched)} s of its "
                f"{held.ttl_seconds} s lease",
                code="LOCK_HELD",
                hint="expiry is judged on this machine's own clock: try again once a whole lease has passed",
            )

    def _seen_own(self, tip: str, lease: Lease) -> None:
        self._watch.see({lease.ticket_id: tip})
        self._learned(tip, lease, lease)

    def _not_landed(self, landing: Landing, err: str) -> StateError:
        """Why an atomic push refused a landing whose claim had not moved: the branch moved on
        (BRANCH_BEHIND), or the server would not take it (PUSH_REFUSED, with what git said)."""
        if self._ls(landing.ref).get(landing.ref, "") != landing.old:
            return behind(self.remote, landing.ref)
        said = "; ".join(line.strip() for line in err.splitlines() if line.strip()) or "no reason given"
        return StateError(
            f"{self.remote!r} refused to update {landing.ref}: {said}; nothing was landed and the claim is still held",
            code="PUSH_REFUSED",
        )

    def _tip_holding(self, lease: Lease) -> str | None:
        """The remote tip whose claim is exactly `lease` (read again unless this clone just saw
        it), or None once the claim is something else."""
        known = self._tips.get(lease.ticket_id)
        if (known is None or lease not in known[1:]) and self.read(lease.ticket_id) != lease:
            return None
        return self._tips[lease.ticket_id][0]

    def _push(self, *updates: Landing) -> tuple[bool | None, str]:
        """Point each ref on the remote at its `new` (empty: delete it) if it still points at its
        `old` (empty: if it does not exist), all or none (`--atomic`, for more than one). (True:
        done; False: the server refused, a ref moved; None: the connection failed, with git's
        error.) Raises StateError(PUSH_REFUSED) for a server that cannot push atomically. No
        pre-push hook runs: what a hook would check of the work, CI's doctor checks from the history."""
        argv = ["push", "--porcelain", "--no-verify", *(["--atomic"] if len(updates) > 1 else [])]
        argv += [f"--force-with-lease={u.ref}:{u.old}" for u in updates]  # the server swaps only from the tips read
        argv += [self.remote, *(f"{u.new}:{u.ref}" for u in updates)]
        code, out, err = git.attempt(self.root, *argv)
        if code == 0:
            return True, ""
        if b"does not support --atomic" in err:
            raise StateError(
                f"{self.remote!r} cannot update several refs at once (git push --atomic), which landing the work "
                "with the claim's release needs; nothing was landed and the claim is still held",
                code="PUSH_REFUSED",
                hint="host the claims on a remote whose server supports atomic pushes, or use `claims: {store: local}`",
            )
        refs = {u.ref for u in updates}
        said = [line.split("\t") for line in out.decode(errors="replace").splitlines()]
        refused = any(len(f) > 1 and f[0] == "!" and f[1].rpartition(":")[2] in refs for f in said)
        return (False if refused else None), err.decode(errors="replace")

    def _remote_tips(self, pattern: str) -> dict[str, str]:
        """{ticket: tip} of the claim refs on the remote matching `pattern` (one ref, or CLAIMS + "*");
        refs not named for a ticket are left alone."""
        named = {name.removeprefix(CLAIMS): oid for name, oid in self._ls(pattern).items() if name.startswith(CLAIMS)}
        return {ticket_id: oid for ticket_id, oid in named.items() if ids.ID_RE.fullmatch(ticket_id)}

    def _ls(self, *patterns: str) -> dict[str, str]:
        """{ref: tip} on the remote for `patterns` (one listing)."""
        for attempt in range(ATTEMPTS):  # a reset connection is worth another try; a dead remote is not
            code, out, err = git.attempt(self.root, "ls-remote", "--refs", self.remote, *patterns)
            if code == 0:
                break
            if attempt + 1 < ATTEMPTS:
                time.sleep(BACKOFF * (attempt + 1))
        else:
            raise unreachable(self.remote, err.decode(errors="replace"))
        tips = {}
        for line in out.decode(errors="replace").splitlines():
            oid, _, name = line.partition("\t")
            if re.fullmatch(r"[0-9a-f]{40,64}", oid):
                tips[name] = oid
        return tips

    def _fetch(self, refs: str, tips: list[str]) -> None:
        """Bring the tips' objects here (kept under refs/exo/seen/); tips already here need nothing.
        One git process asks which are here, whatever their number."""
        missing = self._missing(tips)
        if not missing:
            return
        refspec = f"+{refs}:{SEEN}{self.remote}/{refs.removeprefix('refs/')}"
        code, _, err = git.attempt(self.root, "fetch", "-q", "--no-tags", "--no-write-fetch-head", self.remote, refspec)
        if code != 0 and self._missing(missing):
            raise unreachable(self.remote, err.decode(errors="replace"))

    def _missing(self, tips: list[str]) -> list[str]:
        here = git.objects(self.root, [f"{tip}^{{commit}}" for tip in tips])
        return [tip for tip in tips if here[f"{tip}^{{commit}}"] is None]

    def _commit(self, ticket_id: str, lease: Lease, parent: str) -> str:
        """A claim commit holding `lease`, on top of `parent` (none for the first)."""
        message = f"exo claim {ticket_id}: {lease.state} by {lease.holder}, epoch {lease.epoch}"
        return self._commit_file(LEASE_FILE, lease.model_dump_json(indent=2).encode() + b"\n", parent, message)

    def _commit_file(self, name: str, body: bytes, parent: str, message: str) -> str:
        return self._commit_tree({name: self._blob(body)}, parent, message)

    def _blob(self, body: bytes) -> str:
        return git.run_bytes(self.root, "hash-object", "-w", "--stdin", data=body).decode().strip()

    def _commit_tree(self, entries: dict[str, str], parent: str, message: str) -> str:
        """A commit of a flat tree ({name: blob}) on top of `parent` (none for the first)."""
        listing = "".join(f"100644 blob {blob}\t{name}\n" for name, blob in sorted(entries.items()))
        tree = git.run_bytes(self.root, "mktree", data=listing.encode()).decode().strip()
        args = ["commit-tree", tree, "-m", message, *(["-p", parent] if parent else [])]
        return git.run(self.root, *args, env=_IDENTITY)

    # --- the freeze every machine honours: refs/exo/freeze, a chain of freeze.json states

    def read_freeze(self) -> dict[str, str] | None:
        """The remote's freeze (`reason`, `actor`, `since`) while in force, else None."""
        doc = self.freeze_doc()
        if doc is None or doc.get("frozen") is False:
            return None
        if doc.get("frozen") is not True:
            return dict(UNREADABLE_FREEZE)
        return {key: str(doc.get(key) or "") for key in ("reason", "actor", "since")}

    def freeze_doc(self) -> dict[str, object] | None:
        """The remote's freeze.json as it stands (a freeze, or a lifting), None without one; a
        document that is not a JSON object reads as {} (neither)."""
        tip = self._ls(FREEZE_REF).get(FREEZE_REF)
        if tip is None:
            return None
        self._fetch(FREEZE_REF, [tip])
        try:
            doc = json.loads(git.run_bytes(self.root, "cat-file", "blob", f"{tip}:{FREEZE_FILE}", check=False))
        except ValueError:
            doc = None
        return doc if isinstance(doc, dict) else {}

    def put_freeze(self, freeze: dict[str, str] | None, lift: dict[str, str] | None = None) -> None:
        """Publish a freeze, or its lifting (None, with `lift`: who, which freeze, their signature);
        the last writer wins."""
        doc = {"frozen": True, **freeze} if freeze is not None else {"frozen": False, **(lift or {})}
        body = json.dumps(doc, indent=2).encode() + b"\n"
        message = f"exo freeze: {freeze['reason']}" if freeze else "exo unfreeze"
        for _ in range(ATTEMPTS * 3):
            old = self._ls(FREEZE_REF).get(FREEZE_REF) or ""
            pushed, err = self._push(Landing(FREEZE_REF, old, self._commit_file(FREEZE_FILE, body, old, message)))
            if pushed:
                return
        raise unreachable(self.remote, err)


def behind(remote: str, ref: str) -> StateError:
    branch = ref.removeprefix("refs/heads/")
    return StateError(
        f"{branch} on {remote!r} has commits this branch lacks: the work was not landed and the claim is still held",
        code="BRANCH_BEHIND",
        hint=f"bring them in (`git pull --rebase {remote} {branch}` or a merge), then finish again",
    )


def finish_claim(root: Path, store: LeaseStore, lease: Lease, head: str) -> Lease:
    """Release `lease` — with claims on a remote, in the one atomic push that lands `head` on the
    work branch there: a holder whose claim was taken over lands nothing (LockError(LOCK_LOST)), and
    a branch that moved or that the server will not update keeps the claim held (StateError(
    BRANCH_BEHIND, PUSH_REFUSED)). An already released lease is left as it is (a retried finish)."""
    if not isinstance(store, RemoteLeaseStore):
        return release_lock(root, lease, store=store)
    with store.carrying(store.landing(head)):
        return release_lock(root, lease, store=store)


def publish_freeze(root: Path, freeze: dict[str, str] | None, *, actor: str = "", signer: Key | None = None) -> bool:
    """Put the freeze (None: `actor`'s lifting of the freeze there, signed by `signer` when given)
    on the claims remote, so every machine's broker honours it; False for a repository whose claims
    are local. Raises REMOTE_UNREACHABLE, SIGNING_FAILED."""
    store = lease_store(root)
    if not isinstance(store, RemoteLeaseStore):
        return False
    lift = None
    if freeze is None:
        lifted = store.read_freeze() or State(root).read_freeze()  # the remote's, else the one in force here
        lift = {"actor": actor, "lifts": lifted["since"] if lifted else ""}
        signature = signer.sign(signing.ACT, _lift_bytes(lift)).decode() if signer is not None else ""
        lift["signature"] = signature
    store.put_freeze(freeze, lift)
    return True


def _lift_bytes(lift: Mapping[str, object]) -> bytes:
    """What a lifting's signature covers: who lifted which freeze (named by when it began)."""
    return canonical({"frozen": False, "actor": lift.get("actor"), "lifts": lift.get("lifts")})


def _lift_holds(root: Path, doc: dict[str, object] | None, here: dict[str, object]) -> bool:
    """Whether the remote's freeze.json lifts the freeze this machine copied from it (`here`). Where
    the constitution requires human acts signed, only the lifting of that very freeze, signed by the
    human it names with a key .exo/allowed_signers lists for them, does: a lifting anyone with push
    access wrote, or a deleted freeze ref, leaves every machine frozen."""
    from exo.kernel import GovernanceError, load_governance

    try:
        required = signing.required(load_governance(root), "human_acts")
    except GovernanceError:
        required = True  # no lock to read it from: ask for the signature
    if not required:
        return True
    if doc is None or doc.get("frozen") is not False or doc.get("lifts") != here.get("since"):
        return False
    signature, actor = doc.get("signature"), doc.get("actor")
    if not isinstance(signature, str) or not signature or not isinstance(actor, str):
        return False
    from .signers import listed

    return signing.signer_of(listed(root), signing.ACT, _lift_bytes(doc), signature.encode(), "human") == actor


def refresh_freeze(root: Path, store: LocalLeaseStore | RemoteLeaseStore) -> None:
    """Bring the remote's freeze into this clone's freeze file, which everything here reads (the
    hooks included), before a broker operation decides. A freeze this machine made while the
    remote could not be reached is not the remote's to lift: only `exo unfreeze` lifts it."""
    if not isinstance(store, RemoteLeaseStore):
        return
    doc = store.freeze_doc()
    remote = store.read_freeze() if doc is not None and doc.get("frozen") is not False else None
    state = State(root)
    try:
        here = read_doc(state.frozen, 1 << 20)
    except StateError:
        here = None
    if remote is not None:
        if here is None or {k: here.get(k) for k in remote} != remote or here.get("remote") is not True:
            write_doc(state.frozen, {**remote, "remote": True})
    elif here is not None and here.get("remote") is True and _lift_holds(root, doc, here):
        remove(state.frozen)


class GcResult(BaseModel):
    """What `exo claims gc` removed from the remote, and the claims it left."""

    removed: list[str] = Field(description="Tickets whose claim ref was deleted.")
    kept: list[str] = Field(description="Claims left in place: held, or of a ticket not done or cancelled.")


def gc(root: Path, actor: str) -> GcResult:
    """Delete the remote claims of done and cancelled tickets once released (humans only).

    Each one's last lease is kept first under refs/exo/retired, so a ticket reopened later is
    claimed at the next epoch, never at 1 again; each deletion is a compare-and-swap on the tip
    read, so a claim taken again meanwhile is left alone. InputError(INVALID_ARGUMENT) unless the
    repository uses the remote store.
    """
    from . import authority, tickets

    authority.require_human(actor, "claims_gc")
    store = lease_store(root)
    if not isinstance(store, RemoteLeaseStore):
        raise InputError(
            "this repository's claims are local: there is nothing on a remote to collect",
            code="INVALID_ARGUMENT",
            hint="set `claims: {store: remote}` in .exo/config.yaml to keep claims on the git remote",
        )
    finished = {t.id for t in tickets.load_all(root).values() if t.status in ("done", "cancelled")}
    listed = store.all()
    going = [lease for lease in listed if lease.state == "released" and lease.ticket_id in finished]
    if going:
        store.retire(going)
    removed = [lease.ticket_id for lease in going if store.delete(lease)]
    return GcResult(removed=removed, kept=[lease.ticket_id for lease in listed if lease.ticket_id not in removed])
