"""The jail policy as data: `default_policy.toml` parsed into typed, frozen objects.

The defaults are the checked-in file; a user tightens or loosens single keys with a TOML file of the
same layout (RLM_SANDBOX_POLICY) or a mapping. Unknown keys and values of the wrong type are an error
(PolicyError, naming the key): a typo in a security setting must not be silently ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Self

from .errors import PolicyError

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.toml")
MAX_EXEC_TIMEOUT_S = 3600  # the longest per-exec timeout one may ask for: RLM_EXEC_TIMEOUT_S, exec_code's timeout_s


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

    def __post_init__(self) -> None:
        if not 0 < self.exec_timeout_s <= MAX_EXEC_TIMEOUT_S:
            raise PolicyError(f"sandbox policy key policy.limits.exec_timeout_s must be more than 0 and at most "
                              f"{MAX_EXEC_TIMEOUT_S} seconds (the longest an exec may be given), not "
                              f"{self.exec_timeout_s!r}; change it in the RLM_SANDBOX_POLICY file")


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
class Wasm:
    pyodide_version: str
    memory_mb: int
    max_context_mb: int
    spare: bool


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    identity: Identity
    namespaces: Namespaces
    limits: Limits
    cgroups: Cgroups
    environment: Environment
    mounts: Mounts
    seccomp: Seccomp
    wasm: Wasm

    @classmethod
    def load(cls, *overrides: dict[str, Any] | Path | None) -> Self:
        """The default policy with each override (a mapping or a TOML path) applied in order."""
        data = tomllib.loads(DEFAULT_POLICY_PATH.read_text())
        for override in overrides:
            if override is None:
                continue
            if isinstance(override, Path):
                override = _read_toml(override)
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
    "wasm": Wasm,
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise PolicyError(f"cannot read the sandbox policy file {path}: {exc.strerror or exc}; fix the path "
                          "in RLM_SANDBOX_POLICY or unset it to use the default policy") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"the sandbox policy file {path} is not valid TOML ({exc}); fix it, or unset "
                          "RLM_SANDBOX_POLICY to use the default policy") from exc


def _merge(base: dict[str, Any], override: dict[str, Any], *, where: str) -> None:
    for key, value in override.items():
        if key not in base:
            known = ", ".join(sorted(base))
            raise PolicyError(f"unknown sandbox policy key {where}.{key}; known keys: {known}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise PolicyError(f"sandbox policy key {where}.{key} must be a table")
            _merge(base[key], value, where=f"{where}.{key}")
        else:
            _check_type(f"{where}.{key}", base[key], value)
            base[key] = value


def _check_type(key: str, default: Any, value: Any) -> None:
    """An override has the type of the default it replaces (an int may stand for a float)."""
    expected: type | tuple[type, ...] = type(default)
    if isinstance(default, float):
        expected = (int, float)
    wrong = not isinstance(value, expected) or (isinstance(value, bool) and not isinstance(default, bool))
    if not wrong and isinstance(default, list) and default:
        wrong = not all(isinstance(item, type(default[0])) for item in value)
    if wrong:
        raise PolicyError(f"sandbox policy key {key} must be {_kind(default)} like the default "
                          f"({default!r:.60}), not {value!r:.60}")


def _kind(value: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}
    return names.get(type(value), type(value).__name__)
