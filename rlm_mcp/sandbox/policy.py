"""The jail policy as data: `default_policy.toml` parsed into typed, frozen objects.

The defaults are the checked-in file; a user tightens or loosens single keys with a TOML file of the
same layout (RLM_SANDBOX_POLICY) or a mapping from rlm-mcp's own config. Unknown keys are an error:
a typo in a security setting must not be silently ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Self

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.toml")


@dataclass(frozen=True, slots=True)
class Identity:
    uid: int
    gid: int
    hostname: str


@dataclass(frozen=True, slots=True)
class Namespaces:
    net: bool
    loopback: bool


@dataclass(frozen=True, slots=True)
class Limits:
    address_space_mb: int
    cpu_s: int
    file_size_mb: int
    open_files: int
    processes: int
    session_wall_s: int
    exec_timeout_s: float
    hard_kill_grace_s: float
    tmp_size_mb: int
    max_message_mb: int


@dataclass(frozen=True, slots=True)
class Cgroups:
    enabled: bool
    memory_mb: int
    pids: int


@dataclass(frozen=True, slots=True)
class Environment:
    vars: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Mounts:
    readonly: tuple[str, ...]
    devices: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Seccomp:
    deny_eperm: tuple[str, ...]
    allowed_socket_families: tuple[int, ...]
    guest_denies_exec: bool

    def kafel(self) -> str:
        """The Kafel policy nsjail compiles: default allow, listed calls fail."""
        families = " && ".join(f"domain != {family}" for family in self.allowed_socket_families) or "1 == 1"
        return (
            "POLICY rlm {\n"
            f"  ERRNO(1) {{ {', '.join(self.deny_eperm)} }},\n"
            f"  ERRNO(97) {{ socket(domain, type, protocol) {{ {families} }} }}\n"
            "}\nUSE rlm DEFAULT ALLOW"
        )


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    identity: Identity
    namespaces: Namespaces
    limits: Limits
    cgroups: Cgroups
    environment: Environment
    mounts: Mounts
    seccomp: Seccomp

    @classmethod
    def load(cls, *overrides: dict[str, Any] | Path | None) -> Self:
        """The default policy with each override (a mapping or a TOML path) applied in order."""
        data = tomllib.loads(DEFAULT_POLICY_PATH.read_text())
        for override in overrides:
            if override is None:
                continue
            if isinstance(override, Path):
                override = tomllib.loads(override.read_text())
            _merge(data, override, where="policy")
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Self:
        sections = {}
        for section in fields(cls):
            section_type = _SECTION_TYPES[section.name]
            values = {
                key: tuple(value) if isinstance(value, list) else value
                for key, value in data[section.name].items()
            }
            sections[section.name] = section_type(**values)
        return cls(**sections)

    def with_limits(self, **changes: Any) -> SandboxPolicy:
        """A copy with some limits changed (e.g. a test tightening memory)."""
        limits = {f.name: getattr(self.limits, f.name) for f in fields(Limits)} | changes
        return SandboxPolicy(**{f.name: getattr(self, f.name) for f in fields(self)} | {"limits": Limits(**limits)})


_SECTION_TYPES: dict[str, type] = {
    "identity": Identity, "namespaces": Namespaces, "limits": Limits, "cgroups": Cgroups,
    "environment": Environment, "mounts": Mounts, "seccomp": Seccomp,
}


def _merge(base: dict[str, Any], override: dict[str, Any], *, where: str) -> None:
    for key, value in override.items():
        if key not in base:
            known = ", ".join(sorted(base))
            raise ValueError(f"unknown sandbox policy key {where}.{key}; known keys: {known}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"sandbox policy key {where}.{key} must be a table")
            _merge(base[key], value, where=f"{where}.{key}")
        else:
            base[key] = value
