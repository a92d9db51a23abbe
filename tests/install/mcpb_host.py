"""What an MCPB host (Claude Desktop) does with a bundle, as the MCPB manifest spec (MANIFEST.md, "Variable
Substitution") describes it: unpack it into a folder of its own, merge the platform's `platform_overrides`
into `mcp_config`, and substitute `${__dirname}`, `${HOME}` (and the other directories), `${pathSeparator}`
/ `${/}` and `${user_config.KEY}` in the command, its arguments and its environment; an argument that is
exactly a `multiple` setting's placeholder expands into one argument per value.
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
UserConfig = dict[str, str | list[str]]


@dataclass(frozen=True)
class Launch:
    command: str
    args: list[str]
    env: dict[str, str]


def unpack(bundle: Path, folder: Path) -> dict[str, Any]:
    """Unpack the bundle into `folder` (as the host installs it); returns its manifest."""
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder)
    return json.loads((folder / "manifest.json").read_text())


def _variables(dirname: Path, home: Path) -> dict[str, str]:
    return {"__dirname": str(dirname), "HOME": str(home), "DESKTOP": str(home / "Desktop"),
            "DOCUMENTS": str(home / "Documents"), "DOWNLOADS": str(home / "Downloads"),
            "pathSeparator": os.sep, "/": os.sep}


def _value(name: str, variables: dict[str, str], user_config: UserConfig) -> str | list[str]:
    if name.startswith("user_config."):
        key = name.removeprefix("user_config.")
        if key not in user_config:
            raise KeyError(f"the manifest uses ${{{name}}}, which user_config does not define")
        return user_config[key]
    if name not in variables:
        raise KeyError(f"the manifest uses ${{{name}}}, which the MCPB spec does not define")
    return variables[name]


def _substitute(text: str, variables: dict[str, str], user_config: UserConfig) -> str:
    def one(match: re.Match[str]) -> str:
        value = _value(match.group(1), variables, user_config)
        if isinstance(value, list):
            raise ValueError(f"{match.group(0)} holds several values: it can only stand alone as an argument")
        return value

    return PLACEHOLDER.sub(one, text)


def launch(manifest: dict[str, Any], dirname: Path, home: Path, user_config: UserConfig) -> Launch:
    """The command the host runs for this manifest, with the user's answers to its settings form."""
    for key, option in manifest.get("user_config", {}).items():
        if key not in user_config and "default" in option:
            user_config = {**user_config, key: option["default"]}
        if option.get("required") and not user_config.get(key):
            raise ValueError(f"user_config.{key} is required")
    config = dict(manifest["server"]["mcp_config"])
    override = config.pop("platform_overrides", {}).get(sys.platform, {})
    config = {**config, **override, "env": {**config.get("env", {}), **override.get("env", {})}}
    variables = _variables(dirname, home)
    args: list[str] = []
    for arg in config.get("args", []):
        whole = PLACEHOLDER.fullmatch(arg)
        value = _value(whole.group(1), variables, user_config) if whole else None
        if isinstance(value, list):
            args.extend(value)  # array expansion: one argument per chosen folder
        else:
            args.append(_substitute(arg, variables, user_config))
    env = {name: _substitute(value, variables, user_config) for name, value in config["env"].items()}
    return Launch(_substitute(config["command"], variables, user_config), args, env)
