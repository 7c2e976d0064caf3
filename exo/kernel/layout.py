"""Where the kernel keeps its durable files inside a worktree (runtime state: `exo.kernel.state`)."""

EXO_DIR = ".exo"
CONSTITUTION = ".exo/CONSTITUTION.md"
LOCK = ".exo/governance.lock.json"
AUDIT_DIR = ".exo/audit"  # published streams: sealed session segments and one-event streams, write-once
RUNTIME_AUDIT = "audit"  # in the runtime state dir (exo.kernel.state): streams being written, never committed
LOCAL_STREAM = "local"  # runtime stream of this clone's own events (lease takeovers, repairs), never published
REPO_STREAM = "repo"  # the shared stream of earlier versions: still verified, no longer written
FROZEN = "frozen.json"  # in the runtime state dir (exo.kernel.state): present while the repository is frozen
