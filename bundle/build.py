"""Build the Claude Desktop bundle: `./dev.sh bundle` (or `python -m bundle.build`) writes
dist/rlm-mcp-<version>.mcpb.

An MCP Bundle (MCPB, manifest 0.4) is a zip with a manifest.json at its root. Ours is server type `uv`: it
carries our source and pyproject.toml, no dependencies, and the host runs `uv run` in the unpacked folder, so
uv installs the wheels for the user's own platform (macOS, Windows, Linux; Intel or ARM) on first start.

The manifest is bundle/manifest.template.json with its generated parts filled in here: the version and the
Python requirement from the package, the long description from bundle/long_description.md, and the tools
and the prompt from the server's own registry (tests/install/test_bundle.py checks them against what the
real server lists). The official `mcpb` CLI (npm @anthropic-ai/mcpb, pinned in dev.sh) validates the
manifest, packs the folder and reads the packed file back (`mcpb info`).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HERE = REPO / "bundle"
NODE_BIN = REPO / ".tools" / "node" / "bin"
MCPB = REPO / ".tools" / "node_modules" / ".bin" / "mcpb"
# What the bundle carries besides the manifest and icon: what `uv run` needs to build and install the project.
CARRIED = ("pyproject.toml", "README.md", "rlm_mcp")
LEFT_OUT = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".DS_Store")


class BundleError(Exception):
    """The bundle could not be built; the message says what to run."""


def first_paragraph(text: str) -> str:
    return inspect.cleandoc(text).split("\n\n", 1)[0].replace("\n", " ")


def tools() -> list[dict[str, str]]:
    """Every tool the server registers, with the first paragraph of the description it lists."""
    from rlm_mcp.server.tools import TOOLS

    return [{"name": tool.__name__, "description": first_paragraph(tool.__doc__ or "")} for tool, _ in TOOLS]


def prompts() -> list[dict[str, Any]]:
    """The playbook prompt, its text as the server returns it with `${arguments.task}` where the task goes."""
    from rlm_mcp.server.playbook import PLAYBOOK
    from rlm_mcp.server.tools import rlm_playbook

    return [{"name": "rlm_playbook", "description": first_paragraph(rlm_playbook.__doc__ or ""),
             "arguments": ["task"], "text": PLAYBOOK + "\n\nThe task:\n${arguments.task}"}]


def manifest() -> dict[str, Any]:
    from rlm_mcp import __version__

    data = json.loads((HERE / "manifest.template.json").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    data["version"] = __version__
    data["long_description"] = (HERE / "long_description.md").read_text()
    data["tools"] = tools()
    data["prompts"] = prompts()
    data["compatibility"]["runtimes"]["python"] = project["requires-python"]
    return data


def stage(folder: Path) -> Path:
    """The bundle's folder: manifest.json, icon.png and what `uv run` needs."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in CARRIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=LEFT_OUT)
        else:
            shutil.copy2(source, folder / name)
    shutil.copy2(HERE / "icon.png", folder / "icon.png")
    (folder / "manifest.json").write_text(json.dumps(manifest(), indent=2, ensure_ascii=False) + "\n")
    return folder


def mcpb(*args: str) -> str:
    """Run the official MCPB CLI; its output, or a BundleError with it."""
    if not MCPB.exists():
        raise BundleError(f"the mcpb CLI is missing ({MCPB}): run ./dev.sh bundle, which installs it")
    env = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    completed = subprocess.run([str(MCPB), *args], capture_output=True, text=True, timeout=300, env=env,
                               stdin=subprocess.DEVNULL)
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise BundleError(f"mcpb {' '.join(args)} failed:\n{output}")
    return output


def build(out: Path) -> Path:
    """Stage, validate, pack and read back: returns the .mcpb file."""
    from rlm_mcp import __version__

    folder = stage(out / "bundle")
    mcpb("validate", str(folder / "manifest.json"))
    target = out / f"rlm-mcp-{__version__}.mcpb"
    target.unlink(missing_ok=True)
    mcpb("pack", str(folder), str(target))
    mcpb("info", str(target))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="where to write the bundle (dist/)")
    out = parser.parse_args().out.resolve()
    try:
        print(build(out))
    except BundleError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
