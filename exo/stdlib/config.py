"""`.exo/config.yaml`: repository defaults (lease TTL, budgets, drift threshold, checks, bootstrap size)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exo.kernel import GovernanceError
from exo.kernel.fs import read_file
from exo.kernel.yamldoc import YamlProblem, load

CONFIG = ".exo/config.yaml"
MAX_BYTES = 256 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BudgetDefaults(_Strict):
    max_files: int = Field(default=50, ge=1, le=1_000_000, description="Files a session may change.")
    max_lines: int = Field(default=2000, ge=1, le=100_000_000, description="Changed lines a session may make.")


class ClaimsConfig(_Strict):
    store: Literal["local", "remote"] = Field(
        default="local",
        description="Where ticket claims live: `local` (this clone) or `remote` (refs/exo/claims/* on a git remote).",
    )
    remote: str = Field(
        default="origin",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="The git remote every machine shares, for the remote store.",
    )


class Config(_Strict):
    """Repository defaults; every key is optional and unknown keys are errors."""

    version: Literal[1] = Field(default=1, description="Config format version.")
    lease_ttl_seconds: int = Field(default=1800, ge=30, le=7 * 24 * 3600, description="Lease length.")
    budget: BudgetDefaults = Field(default_factory=BudgetDefaults, description="Default session budget.")
    drift_threshold: float = Field(default=0.5, ge=0, le=1, description="Drift score that gets a warning.")
    checks: list[str] = Field(default_factory=list, description="Commands every session-finish runs.")
    check_timeout_seconds: int = Field(default=600, ge=1, le=86400, description="Timeout per check.")
    bootstrap_max_chars: int = Field(default=16000, ge=2000, le=200_000, description="Bootstrap prompt size bound.")
    claims: ClaimsConfig = Field(default_factory=ClaimsConfig, description="Where ticket claims live.")


STARTER = """\
# exo configuration: defaults for sessions in this repository.
# Every key is optional; an unknown key is an error (so a typo never goes unnoticed).
version: 1

# How long a ticket lease lasts without a heartbeat (seconds).
lease_ttl_seconds: 1800

# Default budget of a session when neither its ticket nor a constitution `budget` rule sets one.
budget:
  max_files: 50
  max_lines: 2000

# Drift score (0..1) above which session-finish warns; violations, not the score, decide pass/fail.
drift_threshold: 0.5

# Commands every session-finish runs (in addition to the constitution's require_checks).
checks: []
check_timeout_seconds: 600

# Upper bound on the bootstrap prompt printed by session-start (characters).
bootstrap_max_chars: 16000
"""


def load_config(root: Path) -> Config:
    """Read and validate `.exo/config.yaml` (defaults when absent).

    Raises GovernanceError(CONFIG_INVALID) naming the key and line of every problem.
    """
    raw = read_file(root / CONFIG)
    if raw is None:
        return Config()
    problems = _problems(raw)
    if isinstance(problems, Config):
        return problems
    raise GovernanceError(f"{CONFIG} is invalid:\n  " + "\n  ".join(problems), code="CONFIG_INVALID")


def _problems(raw: bytes) -> Config | list[str]:
    if len(raw) > MAX_BYTES:
        return [f"larger than {MAX_BYTES} bytes"]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ["not UTF-8 text"]
    try:
        data, lines = load(text)
    except YamlProblem as exc:
        return [f"line {exc.line}: {exc}"]
    if data is None:
        return Config()
    if not isinstance(data, dict):
        return ["the file must be a YAML mapping of keys to values"]
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        out = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            line = lines.get(str(error["loc"][0]), 1) if error["loc"] else 1
            what = "unknown key" if error["type"] == "extra_forbidden" else str(error["msg"])
            out.append(f"line {line}: {key}: {what}")
        return out
