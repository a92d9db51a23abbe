"""Configuration: defaults, then RLM_* environment variables, then a TOML file, then CLI flags.

That order (lowest to highest precedence) is a public contract (README, Configuration). Every
setting has one name: the field name here, `RLM_<FIELD>` in the environment, the same key in the
TOML file, `--<field-with-dashes>` on the command line. Validation failures name the setting.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from .errors import RlmMcpError
from .sandbox import KINDS_HELP, SandboxKind, SandboxPolicy
from .sandbox.policy import MAX_EXEC_TIMEOUT_S
from .workers.budget import BudgetLimits

BUDGET = BudgetLimits()  # the per-session budget's defaults, stated once, where the budget is kept

ENV_PREFIX = "RLM_"


class ConfigError(RlmMcpError, ValueError):
    """A setting is invalid; the message names it and where it came from."""


DRIVE_ONLY = re.compile(r"[A-Za-z]:")


def split_roots(value: str, separator: str | None = None) -> tuple[Path, ...]:
    """RLM_ALLOWED_ROOTS as paths. Separated by os.pathsep: `;` on Windows, where `C:\\src` holds a colon, `:`
    elsewhere. What a Windows user pastes is taken as meant: the quotes Explorer's "Copy as path" puts
    around a path, and spaces after a separator, are dropped; a bare drive (`D:`) is that drive's root, not
    Windows' current directory on it."""
    separator = separator or os.pathsep
    roots = []
    for part in value.split(separator):
        part = part.strip().strip('"').strip()
        if separator == ";" and DRIVE_ONLY.fullmatch(part):
            part += "\\"
        if part:
            roots.append(Path(part).expanduser())
    return tuple(roots)


class Settings(BaseModel):
    """Every knob of rlm-mcp. Field descriptions double as `--help` text and README reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- sandbox ---
    sandbox: SandboxKind = Field("auto", description=KINDS_HELP)
    guest_python: str | None = Field(None, description="interpreter the jailed REPL runs on (stdlib only)")
    sandbox_policy: Path | None = Field(None, description="TOML file overriding keys of the jail policy")
    runtime_dir: Path | None = Field(None, description="where per-session jail data directories live")
    exec_timeout_s: float | None = Field(None, gt=0, le=MAX_EXEC_TIMEOUT_S, description="default per-exec "
                                         "timeout; unset: the sandbox policy's limits.exec_timeout_s")
    max_output_chars: int = Field(20_000, ge=200, le=2_000_000, description="exec_code's stdout and stderr, each: "
                                  "head and tail kept, the middle cut; at most RLM_RESULT_BUDGET_CHARS")
    result_budget_chars: int = Field(40_000, ge=2_000, le=10_000_000, validate_default=True,
                                     description="characters of one tool result that reach the host (its JSON; "
                                     "longer values are cut and `cut` says so): under Claude Code's 50,000, past "
                                     "which it hands its model a file instead; bounds RLM_MAX_OUTPUT_CHARS")

    # --- contexts ---
    allowed_roots: tuple[Path, ...] = Field((), description="directories load_context may read (path-separated)")
    max_file_bytes: int = Field(2 * 1024 * 1024, gt=0, description="larger files found in directories are "
                                "skipped and listed (a file named directly is always loaded)")
    max_context_bytes: int = Field(512 * 1024 * 1024, gt=0, description="cap on one context's total size")
    max_files: int = Field(100_000, gt=0, description="cap on files in one context")
    store_max_bytes: int = Field(4 * 1024**3, gt=0, description="cap on RLM_HOME/store, the stored contexts and "
                                 "code indexes every server shares; least recently used ones are evicted")

    # --- sessions ---
    home: Path = Field(default_factory=lambda: _default_home(), description="cache, index and trajectory logs")
    max_sessions: int = Field(8, ge=1, le=1000, description="concurrent sessions (HTTP clients)")
    session_idle_s: float = Field(3600.0, gt=0, description="an idle session's REPL is stopped after this; what "
                                  "it keeps (contexts, variables) is taken up again by its next call")
    session_keep_s: float = Field(7 * 86400.0, gt=0, description="a kept session unused this long is removed from "
                                  "RLM_HOME/sessions and its handle expires")
    checkpoint_max_mb: int = Field(1024, ge=0, description="cap on one session's checkpoint of REPL variables "
                                   "(RLM_HOME/sessions); a variable that would pass it is not saved, by name")

    # --- workers ---
    worker_model: str | None = Field(None, description="model for llm_query: a litellm model string (e.g. "
                                     "openai/gpt-4o-mini) or your assistant CLI (claude-code/haiku, codex/<model>, "
                                     "gemini-cli/<model>; no API key needed)")
    worker_api_base: str | None = Field(None, description="API base for the worker model (Ollama, vLLM, ...)")
    worker_api_key: SecretStr | None = Field(None, description="API key for the worker model's provider, instead of "
                                             "its usual variable (OPENAI_API_KEY, ...); never logged")
    root_model: str | None = Field(None, description="rlm_complete's root model: a litellm model string, or an "
                                   "assistant CLI (claude-code/sonnet, ...) driven through fenced code blocks")
    root_api_base: str | None = Field(None, description="API base for the root model")
    sub_rlm_model: str | None = Field(None, description="model for recursive rlm_query (default: root model)")
    worker_concurrency: int = Field(16, ge=1, le=1024, description="parallel worker calls per session")
    cli_concurrency: int = Field(4, ge=1, le=64, description="parallel worker calls per session when the worker "
                                 "model is an assistant CLI (claude-code/, codex/, gemini-cli/): one process each")
    worker_timeout_s: float = Field(120.0, gt=0, description="per worker call timeout")
    worker_retries: int = Field(3, ge=0, le=10, description="retries on 429, 5xx, timeouts")
    max_worker_calls: int = Field(BUDGET.max_worker_calls, ge=0, description="model calls per session: workers, "
                                  "sub_query, and the root calls of rlm_complete and of every child RLM")
    max_tokens: int = Field(BUDGET.max_tokens, ge=0, description="tokens (in + out) of all model calls per session")
    max_cost_usd: float = Field(BUDGET.max_cost_usd, ge=0, description="all model spend per session in USD "
                                "(workers, sub_query, RLM roots at every depth), by litellm's price map")
    max_depth: int = Field(BUDGET.max_depth, ge=0, le=10, description="recursion depth of rlm_query")
    max_wall_s: float = Field(BUDGET.max_wall_s, gt=0, description="wall time of one call tree: a session's model "
                              "calls, its RLM runs included (one clock, restarted by a session reset)")
    max_batch: int = Field(BUDGET.max_batch, ge=1, description="prompts in one llm_query_batched call")
    max_repeats: int = Field(BUDGET.max_repeats, ge=1, description="identical prompt sent at most this often")

    # --- HTTP ---
    host: str = Field("127.0.0.1", description="HTTP bind address")
    port: int = Field(8765, ge=0, le=65535, description="HTTP port")
    auth_token: str | None = Field(None, description="bearer token(s) HTTP clients must send, comma-separated")
    allowed_hosts: tuple[str, ...] = Field((), description="extra Host values accepted over HTTP, comma-separated")
    allowed_origins: tuple[str, ...] = Field((), description="extra Origin values accepted over HTTP, comma-separated")
    token_max_sessions: int | None = Field(None, ge=1, le=1000, description="concurrent sessions per bearer "
                                           "token (default: RLM_MAX_SESSIONS shared out among the tokens)")
    token_max_cost_usd: float = Field(20.0, ge=0, description="model spend in USD per bearer token (all its "
                                      "sessions) over the rolling RLM_TOKEN_SPEND_WINDOW_S")
    token_max_calls: int = Field(5000, ge=0, description="model calls per bearer token (all its sessions) over "
                                 "the rolling RLM_TOKEN_SPEND_WINDOW_S")
    token_spend_window_s: float = Field(86_400.0, gt=0, description="the rolling window of the per-token spend "
                                        "caps (a day)")
    replica_id: str = Field("", pattern=r"^[a-z0-9-]{0,32}$", description="this server's name behind a proxy: "
                            "session handles start with it so the proxy can route them back here")
    max_request_mb: int = Field(16, ge=1, le=1024, description="largest HTTP request body")

    @field_validator("result_budget_chars")
    @classmethod
    def _holds_the_output(cls, value: int, info: ValidationInfo) -> int:
        """An exec's output cap past the result budget would be overridden by it: refused, naming both."""
        output = info.data.get("max_output_chars")
        if output is not None and output > value:
            raise ValueError(f"RLM_MAX_OUTPUT_CHARS={output:,} is more than the result budget of {value:,} characters "
                             "that reaches the host, which would cut the output again: lower RLM_MAX_OUTPUT_CHARS, "
                             "or raise RLM_RESULT_BUDGET_CHARS with it (a host may then save long results to a file)")
        return value

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        return split_roots(value) if isinstance(value, str) else value

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def policy(self) -> SandboxPolicy:
        """The sandbox policy these settings run under: the checked-in one, RLM_SANDBOX_POLICY's overrides, and
        RLM_EXEC_TIMEOUT_S as its `limits.exec_timeout_s` -- so the exec timeout is decided in one place, the
        policy, which every exec, the session tool and the RLM loop read."""
        policy = SandboxPolicy.load(self.sandbox_policy)
        return policy if self.exec_timeout_s is None else policy.with_limits(exec_timeout_s=self.exec_timeout_s)

    def worker_key(self) -> str | None:
        """The worker provider's key as litellm takes it (None: litellm reads the provider's own variable)."""
        return self.worker_api_key.get_secret_value() if self.worker_api_key else None

    def bearer_tokens(self) -> list[str]:
        """RLM_AUTH_TOKEN holds one token or several separated by commas: one per team member, each with its
        own sessions, handles and caps."""
        return [token.strip() for token in (self.auth_token or "").split(",") if token.strip()]

    def sessions_per_caller(self) -> int:
        """RLM_TOKEN_MAX_SESSIONS, else RLM_MAX_SESSIONS shared out among the tokens (rounded up), so that
        no member can take every session while the others still fit."""
        if self.token_max_sessions is not None:
            return self.token_max_sessions
        return -(-self.max_sessions // max(1, len(self.bearer_tokens())))

    def roots(self) -> tuple[Path, ...]:
        """Allowed roots, resolved; the working directory when none are configured."""
        return tuple(path.resolve() for path in (self.allowed_roots or (Path.cwd(),)))


def _default_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rlm-mcp"


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = dict(os.environ if environ is None else environ)
    values = {}
    for name in Settings.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw not in (None, ""):
            values[name] = raw
    return values


def from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist; create it or drop --config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("rlm", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: expected key = value pairs or an [rlm] table")
    return section


def load_settings(config_file: Path | None = None, flags: dict[str, Any] | None = None,
                  environ: dict[str, str] | None = None) -> Settings:
    """Merge the layers; a config file comes from `config_file`, RLM_CONFIG or RLM_HOME/config.toml."""
    values = from_environment(environ)
    env = os.environ if environ is None else environ
    if config_file is None and env.get("RLM_CONFIG"):
        config_file = Path(env["RLM_CONFIG"])
    if config_file is None:
        home = Path(values.get("home") or _default_home())
        candidate = home / "config.toml"
        config_file = candidate if candidate.is_file() else None
    if config_file is not None:
        values |= from_toml(config_file)
    values |= {key: value for key, value in (flags or {}).items() if value is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))} ({ENV_PREFIX}{str(error['loc'][0]).upper()}): {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
