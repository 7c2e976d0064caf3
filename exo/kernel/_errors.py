"""The one error family: every foreseeable failure is an ExoError with a stable code and a hint."""

from __future__ import annotations


class Code:
    """How a code exits (1 refusal or failed check, 2 bad input, 3 internal) and its default hint."""

    __slots__ = ("exit_status", "hint")

    def __init__(self, exit_status: int, hint: str) -> None:
        self.exit_status = exit_status
        self.hint = hint


# Stable codes. Renaming one is a breaking change; docs/kernel.md lists them all.
CODES: dict[str, Code] = {
    "CONSTITUTION_INVALID": Code(
        1, "fix the rule named above in .exo/CONSTITUTION.md, then run `exo build-governance`"
    ),
    "CONSTITUTION_MISSING": Code(1, "run `exo init` to create .exo/CONSTITUTION.md"),
    "GOVERNANCE_MISSING": Code(1, "run `exo build-governance` (or `exo init` in a new repository)"),
    "GOVERNANCE_STALE": Code(1, "the constitution changed since it was compiled: run `exo build-governance`"),
    "GOVERNANCE_TAMPERED": Code(1, "the compiled lock was edited by hand: run `exo build-governance` to regenerate it"),
    "CONFIG_INVALID": Code(1, "fix .exo/config.yaml (see docs/kernel.md), then retry"),
    "LOCK_HELD": Code(
        1, "another holder has a live lease on this ticket: pick another ticket or wait for it to expire"
    ),
    "LOCK_LOST": Code(1, "your lease expired or was taken over: stop writing and start a new session"),
    "LOCK_BUSY": Code(1, "another exo process holds the state lock: retry in a moment"),
    "LOCK_CORRUPT": Code(1, "the lease file is unreadable: run `exo doctor --fix`"),
    "STATE_CORRUPT": Code(1, "a runtime state file is damaged: run `exo doctor --fix`, then look at the file named"),
    "AUDIT_CORRUPT": Code(1, "run `exo audit verify` to see the damage; restore the file from git"),
    "AUDIT_SEALED": Code(1, "this audit stream is sealed: append to a new stream"),
    "TICKET_INVALID": Code(1, "fix the ticket file named above (see docs/sessions.md for the fields)"),
    "TICKET_NOT_FOUND": Code(1, "list tickets with `exo ticket list`"),
    "TICKET_EXISTS": Code(1, "pick another id, or omit --id to get a generated one"),
    "TICKET_BLOCKED": Code(1, "finish its dependencies first, or pick another ticket (`exo next`)"),
    "NO_TICKET": Code(1, "create tickets with `exo ticket create`, or wait for leases to expire"),
    "SESSION_OPEN": Code(
        1, "finish or hand off the open session first, or work in a separate worktree (`git worktree add`)"
    ),
    "SESSION_NOT_FOUND": Code(1, "start one with `exo session-start`"),
    "FROZEN": Code(1, "the repository is frozen (`exo status` says why); a human can lift it with `exo unfreeze`"),
    "DRIFT": Code(1, "undo or move the changes named above, then run `exo session-finish` again"),
    "CHECKS_FAILED": Code(1, "fix what the failing checks report, then run `exo session-finish` again"),
    "NOT_ALLOWED": Code(1, "this needs a human actor (human:...)"),
    "ACTOR_REVOKED": Code(
        1, "the actor is over its error budget (`exo status`): a human restores it (`exo restore ACTOR`)"
    ),
    "INVALID_ID": Code(2, "identifiers match ^[A-Za-z][A-Za-z0-9._-]{0,63}$"),
    "INVALID_ACTOR": Code(2, "actors look like `agent:NAME` or `human:EMAIL` (set EXO_ACTOR or pass --actor)"),
    "INVALID_ARGUMENT": Code(2, "see `exo COMMAND --help`"),
    "INVALID_PATTERN": Code(2, "patterns are repo-relative gitignore-style globs with '/' separators, no '..'"),
    "NOT_A_REPOSITORY": Code(2, "run exo inside a git repository, or pass --repo PATH"),
    "NOT_INITIALIZED": Code(1, "run `exo init` first"),
    "NO_SESSION": Code(1, "start a session (`exo session-start`) or pass --scope"),
    "SANDBOXED": Code(1, "the sandbox keeps governance state read-only to the agent: call exo's MCP tool instead"),
    "SANDBOX_UNAVAILABLE": Code(
        1, "install bubblewrap (Debian/Ubuntu: `apt install bubblewrap`), or, as a human, pass --no-sandbox (audited)"
    ),
    "SIGNERS_INVALID": Code(1, "fix the line of .exo/allowed_signers named above (`exo keys list` reads it)"),
    "SIGNING_KEY_MISSING": Code(
        1, "create the key (`exo keys create`) and list it in .exo/allowed_signers (`exo keys add`)"
    ),
    "SIGNING_FAILED": Code(1, "check the key named above (`ssh-add -l` if ssh-agent holds it) and retry"),
    "REMOTE_UNREACHABLE": Code(
        3, "check the network and `git remote -v`; claims never fall back to this machine's store"
    ),
    "BRANCH_BEHIND": Code(
        1, "the remote branch moved on: bring its commits in (pull --rebase or merge), then finish again"
    ),
    "PUSH_REFUSED": Code(
        1, "the remote would not take the push (a protected branch, a server hook): fix what it said, then finish again"
    ),
    "IO_ERROR": Code(3, "check permissions and free disk space, then retry"),
    "INTERNAL": Code(3, "this is a bug in exo: please report it with the command you ran"),
}


class ExoError(Exception):
    """A foreseeable failure: a stable `code`, a message for humans and a `hint` saying what to do."""

    def __init__(self, message: str, *, code: str, hint: str | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unregistered error code {code!r}")
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint if hint is not None else CODES[code].hint

    @property
    def exit_status(self) -> int:
        return CODES[self.code].exit_status

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}

    def details(self) -> dict[str, object]:
        """The evidence an error carries beside its message (a refused finish: its drift report and
        checks), as JSON values; machine output prints it next to `error`. None by default."""
        return {}


class GovernanceError(ExoError):
    """Constitution, compiled lock or configuration problems."""


class LockError(ExoError):
    """Ticket lease problems: held, lost, busy or corrupt."""


class AuditError(ExoError):
    """Audit log problems that stop an append."""


class InputError(ExoError):
    """Bad input: identifiers, actors, patterns, arguments."""


class StateError(ExoError):
    """The repository or disk is not in a usable state."""
