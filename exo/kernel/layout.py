"""Where the kernel keeps its durable files inside a worktree (runtime state lives in `fs.state_dir`)."""

EXO_DIR = ".exo"
CONSTITUTION = ".exo/CONSTITUTION.md"
LOCK = ".exo/governance.lock.json"
AUDIT_DIR = ".exo/audit"
REPO_STREAM = "repo"  # the audit stream for events that belong to no session
FROZEN = "frozen.json"  # in the runtime state dir (fs.state_dir): present while the repository is frozen
