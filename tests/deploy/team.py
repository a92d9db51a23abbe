"""A scaled-out team server on loopback: rlm-mcp replicas behind a real HAProxy running the checked-in
examples/deploy/haproxy.cfg, for tests/deploy/ and bench/team_bench.py.

The configuration is used as it is: it reads where it listens and where its replicas are from the
environment (RLM_PROXY_BIND, RLM_REPLICA_<i>), so here those are loopback ports, and under Kubernetes
they are the StatefulSet's pod names (examples/deploy/proxy.yaml). The replicas' names and the variable
that carries each one's address come from the configuration's `server` lines, so a replica added there
is started here too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "examples" / "deploy"
HAPROXY_CFG = DEPLOY / "haproxy.cfg"
SERVER_LINE = re.compile(r'^\s*server\s+(\S+)\s+"\$\{(\w+)\}"', re.MULTILINE)
STARTUP_S = 30.0


class TeamError(RuntimeError):
    """A part of the team (a replica or the proxy) did not start; the message carries its log's tail."""


def configured_replicas(config: str | None = None) -> dict[str, str]:
    """Replica name -> the environment variable holding its address, from haproxy.cfg's `server` lines."""
    return dict(SERVER_LINE.findall(config if config is not None else HAPROXY_CFG.read_text()))


def haproxy_binary() -> str:
    """HAProxy from the system (Debian's `haproxy` package; ./dev.sh test installs it)."""
    found = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
                                             if Path(p).exists()), None)
    if not found:
        raise TeamError("haproxy is not installed: ./dev.sh test installs it (apt-get install haproxy)")
    return found


def rlm_mcp_binary() -> str:
    """The console script installed next to this interpreter."""
    script = Path(sys.executable).with_name("rlm-mcp")
    if not script.exists():
        raise TeamError("the rlm-mcp console script is not installed: pip install -e '.[test]'")
    return str(script)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Process:
    """One running part of the team: its process, its port, and a file with its log."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def wait_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TeamError(f"{self.name} did not start listening on port {self.port}: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL, as a crash or a node lost: no clean shutdown."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _spawn(name: str, command: list[str], env: dict[str, str], port: int, logs: Path,
           log_name: str | None = None) -> Process:
    log = logs / f"{log_name or name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    return Process(name, process, port, log)


@dataclass
class Team:
    """The proxy (what members connect to) and the replicas behind it, by name."""

    proxy: Process
    replicas: dict[str, Process]
    env: dict[str, str]  # the replicas' environment: one RLM_HOME, their volume

    def restart(self, name: str) -> None:
        """Start a killed replica again, on its port (where the proxy looks for it) with its RLM_HOME, as
        Kubernetes restarts a StatefulSet's pod with its volume."""
        old = self.replicas[name]
        restarted = _spawn(name, [rlm_mcp_binary(), "serve", "--http", "--port", str(old.port)],
                           {**self.env, "RLM_REPLICA_ID": name}, old.port, old.log.parent, log_name=f"{name}-again")
        self.replicas[name] = restarted
        restarted.wait_listening()

    @property
    def url(self) -> str:
        return self.proxy.url

    def admin(self, command: str) -> str:
        """One command on HAProxy's runtime API (only when started with `admin=True`)."""
        with socket.socket(socket.AF_UNIX) as channel:
            channel.connect(str(self.proxy.log.with_name("haproxy.sock")))
            channel.sendall(command.encode() + b"\n")
            return b"".join(iter(lambda: channel.recv(65536), b"")).decode()


def spawn_replica(name: str, env: dict[str, str], logs: Path) -> Process:
    """One `rlm-mcp serve --http` on a free loopback port, with RLM_REPLICA_ID=name."""
    port = free_port()
    return _spawn(name, [rlm_mcp_binary(), "serve", "--http", "--port", str(port)],
                  {**env, "RLM_REPLICA_ID": name}, port, logs)


@contextmanager
def running_team(env: dict[str, str], logs: Path, admin: bool = False) -> Iterator[Team]:
    """Every replica haproxy.cfg names, then HAProxy with the checked-in configuration in front of them.

    `env` is the replicas' environment (RLM_AUTH_TOKEN and caps included); logs go to files in `logs`.
    `admin` adds a second configuration file with only a runtime API socket, for tests that set a
    server's state by hand; the checked-in file is used as it is either way.
    """
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        names = configured_replicas()
        replicas = {name: spawn_replica(name, env, logs) for name in names}  # all start at once
        stack.callback(lambda: [started.stop() for started in replicas.values()])  # restarted ones too
        for started in replicas.values():
            started.wait_listening()
        proxy_port = free_port()
        proxy_env = {"PATH": os.environ.get("PATH", ""), "RLM_PROXY_BIND": f"127.0.0.1:{proxy_port}"}
        proxy_env |= {variable: f"127.0.0.1:{replicas[name].port}" for name, variable in names.items()}
        # -db: stay in the foreground, logs to stdout (the configuration's `log stdout`)
        command = [haproxy_binary(), "-db", "-f", str(HAPROXY_CFG)]
        if admin:
            (logs / "admin.cfg").write_text(f"global\n    stats socket {logs / 'haproxy.sock'} level admin\n")
            command += ["-f", str(logs / "admin.cfg")]
        proxy = _spawn("haproxy", command, proxy_env, proxy_port, logs)
        stack.callback(proxy.stop)
        proxy.wait_listening()
        yield Team(proxy, replicas, env)
