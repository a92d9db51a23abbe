"""The `rlm-mcp` command: serve (default, stdio or --http), ask, doctor, trace, and configuration flags.

Logs go to stderr: when serving stdio, stdout belongs to the MCP transport. Errors of ours
(rlm_mcp.errors) end a command with their one-line message and exit code 1, never a traceback: they
become click's user errors at one place, the command group's `invoke`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import click

from . import __version__
from .config import Settings, load_settings
from .errors import RlmMcpError
from .sandbox import KINDS_HELP, SANDBOX_KINDS

# The hosts `rlm-mcp install` knows, named here so that --help needs no import of the install module.
INSTALL_HOSTS = ("claude-desktop", "claude-code", "cursor", "vscode", "codex", "gemini-cli")


class Commands(click.Group):
    """The command group, and the CLI's one error boundary: an error of ours leaves any command as a
    click user error (its message, exit code 1); anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RlmMcpError as exc:
            raise click.ClickException(str(exc)) from exc


def _check_policy(settings: Settings) -> None:
    """A broken RLM_SANDBOX_POLICY stops the command before it starts, not at the first session."""
    settings.policy()


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "LiteLLM", "litellm", "mcp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(cls=Commands, invoke_without_command=True)
@click.version_option(__version__, prog_name="rlm-mcp")
@click.pass_context
def main(ctx: click.Context) -> None:
    """rlm-mcp: Recursive Language Model powers for any MCP host.

    With no command, serves MCP over stdio (what `claude mcp add rlm -- rlm-mcp` expects).
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@main.command()
@click.option("--http", "use_http", is_flag=True, help="Serve streamable HTTP instead of stdio.")
@click.option("--host", default=None, help="HTTP bind address (RLM_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="HTTP port (RLM_PORT, default 8765).")
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="TOML config file (RLM_CONFIG; default RLM_HOME/config.toml when present).")
@click.option("--sandbox", type=click.Choice(SANDBOX_KINDS), default=None,
              help=f"Isolation backend (RLM_SANDBOX): {KINDS_HELP}.")
@click.option("--allowed-roots", default=None, help="Directories load_context may read, path-separated.")
@click.option("--auth-token", default=None, help="Bearer token HTTP clients must send (RLM_AUTH_TOKEN).")
@click.option("--worker-model", default=None, help="Model for llm_query and sub_query: a litellm model string or "
              "an assistant CLI such as claude-code/haiku (RLM_WORKER_MODEL).")
@click.option("--root-model", default=None, help="Model for rlm_complete, as --worker-model (RLM_ROOT_MODEL).")
@click.option("--worker-cli", default=None, metavar="MODEL", help="An assistant CLI model (claude-code/haiku, "
              "codex/<model>, gemini-cli/<model>) used as the worker when no worker model is configured; empty: none.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging to stderr.")
@click.argument("roots", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
def serve(use_http: bool = False, host: str | None = None, port: int | None = None, config: Path | None = None,
          sandbox: str | None = None, allowed_roots: str | None = None, auth_token: str | None = None,
          worker_model: str | None = None, root_model: str | None = None, worker_cli: str | None = None,
          verbose: bool = False, roots: tuple[Path, ...] = ()) -> None:
    """Serve MCP (stdio by default). ROOTS, if given, are the folders load_context may read (with
    --allowed-roots, both count; they replace RLM_ALLOWED_ROOTS): `rlm-mcp serve ~/src ~/notes`.
    """
    settings = load_settings(config, {"host": host, "port": port, "sandbox": sandbox,
                                      "allowed_roots": _roots_flag(allowed_roots, roots),
                                      "auth_token": auth_token, "worker_model": worker_model,
                                      "root_model": root_model})
    if worker_cli and not settings.worker_model:
        settings = _with_worker_cli(settings, worker_cli)
    _check_policy(settings)
    _logging(verbose)
    if use_http:
        from .server.app import create_server
        from .server.http import serve_http

        serve_http(create_server(settings), settings)
    else:
        from .server.stdio import leave, serve_stdio

        anyio.run(serve_stdio, settings)
        leave()


def _roots_flag(allowed_roots: str | None, roots: tuple[Path, ...]) -> str | None:
    """--allowed-roots and the ROOTS arguments as one path-separated value (None: neither given). Folders come as
    arguments because an MCP Bundle's folder picker hands each chosen folder over as an argument of its own."""
    parts = [allowed_roots] if allowed_roots else []
    parts += [str(root) for root in roots]
    return os.pathsep.join(parts) if parts else None


def _with_worker_cli(settings: Settings, worker_cli: str) -> Settings:
    """--worker-cli: the assistant CLI as the worker, when no worker model is set (the bundle's form offers both)."""
    from .workers.cli_backend import cli_flavor

    if cli_flavor(worker_cli) is None:
        raise click.BadParameter(f"{worker_cli!r} is not an assistant CLI model: use claude-code/<model>, "
                                 "codex/<model> or gemini-cli/<model> (e.g. claude-code/haiku)",
                                 param_hint="--worker-cli")
    return settings.model_copy(update={"worker_model": worker_cli})


@main.command()
@click.argument("host", type=click.Choice(list(INSTALL_HOSTS)), metavar="HOST")
@click.option("--root", "roots", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder the server may read (repeat for several; default: the current directory).")
@click.option("--print", "dry_run", is_flag=True, help="Show the file it would write, and write nothing.")
def install(host: str, roots: tuple[Path, ...], dry_run: bool) -> None:
    """Add rlm-mcp to HOST's MCP configuration file: claude-desktop, claude-code, cursor, vscode, codex or
    gemini-cli. Merged with the servers there, backed up first; running it again changes nothing.

    Example: rlm-mcp install claude-desktop --root ~/src --root ~/notes
    """
    from .install import install as run_install

    click.echo(run_install(host, list(roots), dry_run=dry_run))


@main.command()
@click.argument("question")
@click.argument("paths", nargs=-1)
@click.option("--root-model", default=None, help="Model that writes the code: a litellm model string or an "
              "assistant CLI such as claude-code/sonnet (RLM_ROOT_MODEL).")
@click.option("--worker-model", default=None, help="Model for llm_query, as --root-model (RLM_WORKER_MODEL).")
@click.option("--max-iterations", type=int, default=20, show_default=True, help="Root-model turns.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer and usage as JSON.")
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="TOML config file.")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream progress to stderr.")
def ask(question: str, paths: tuple[str, ...], root_model: str | None, worker_model: str | None,
        max_iterations: int, as_json: bool, config: Path | None, quiet: bool) -> None:
    """Answer QUESTION about PATHS (files, directories; '-' reads text from stdin) with a full RLM run.

    Progress goes to stderr, the answer to stdout. Example:

        rlm-mcp ask "Which modules read DATABASE_URL?" src/ --root-model openai/gpt-4o
    """
    import json
    import time

    from .rlm import RLM, RLMLimits
    from .rlm.loop import DEFAULT_ITERATIONS

    settings = load_settings(config, {"root_model": root_model, "worker_model": worker_model})
    rlm = RLM(settings=settings, limits=RLMLimits(max_iterations or DEFAULT_ITERATIONS))
    context: str | list[str] | None = sys.stdin.read() if paths == ("-",) else list(paths) or None
    started = time.monotonic()

    def narrate(event: dict[str, Any]) -> None:
        if quiet:
            return
        stamp = f"[{time.monotonic() - started:6.1f}s]"
        if event.get("type") == "code":
            first = (event.get("code") or "").strip().splitlines()[:1]
            click.echo(f"{stamp} code ({event.get('status')}): {first[0][:100] if first else ''}", err=True)
        elif event.get("type") == "root_reply":
            click.echo(f"{stamp} iteration {event.get('iteration')}: root replied", err=True)

    result = rlm.complete(question, context, record=narrate)
    if as_json:
        click.echo(json.dumps({"answer": result.answer, "status": result.status, "reason": result.reason,
                               "usage": result.usage.as_dict(), "worker_usage": result.worker_usage,
                               "spent": dict(result.spent),
                               "trajectory": str(rlm.last_trajectory)}, indent=2))
    else:
        click.echo(result.answer)
        if not quiet:
            click.echo(f"[{result.status}{': ' + result.reason if result.reason else ''}; {result.usage.iterations} "
                       f"iterations; trajectory: rlm-mcp trace {rlm.last_trajectory}]", err=True)
    if result.status == "failed":
        sys.exit(1)


@main.command()
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="TOML config file.")
@click.option("--check-worker", is_flag=True, help="Also make one tiny call to the worker model.")
@click.option("--fix", is_flag=True, help="Fetch what the wasm sandbox needs (Pyodide, through the npm registry, "
              "into RLM_HOME) if it is missing.")
def doctor(config: Path | None = None, check_worker: bool = False, fix: bool = False) -> None:
    """Check this machine (Python, nsjail, namespaces, guest interpreter, policy, a real jail, a real wasm
    sandbox), say which backend sessions use and why, and print fixes.

    Exit code 0 when rlm-mcp can run isolated code here (and, with --check-worker, the worker answered),
    1 otherwise.
    """
    from .doctor import can_run_isolated, render, run_checks

    results = run_checks(load_settings(config), check_worker, fix)
    click.echo(render(results))
    verdict = "can" if can_run_isolated(results) else "CANNOT"
    click.echo(f"=> rlm-mcp {verdict} run isolated code on this machine")
    failed = [check.name for check in results if check.status == "fail"]
    if failed:
        raise click.ClickException(f"{len(failed)} problem(s): {', '.join(failed)}")


@main.command()
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file to write (default: LOG with .html).")
def trace(log: Path, output: Path | None = None) -> None:
    """Render a trajectory log (JSONL) as one self-contained HTML page.

    Example: rlm-mcp trace ~/.cache/rlm-mcp/trajectories/rlm-20261123-101500.jsonl
    """
    from .trace import write_trace

    click.echo(str(write_trace(log, output)))


if __name__ == "__main__":
    main()
