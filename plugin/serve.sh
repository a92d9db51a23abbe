#!/bin/sh
# The plugin's MCP server (.claude-plugin/plugin.json, mcpServers.rlm): the rlm-mcp that ./dev.sh set
# up in this clone's .venv (or $RLM_VENV), else one on PATH (pip install rlm-mcp). Nothing is
# installed here: a host waits only seconds for a server to start, and set-up takes minutes.
here="$(cd "$(dirname "$0")" && pwd)"
clone="$(dirname "$here")"
venv="${RLM_VENV:-.venv}"
case "$venv" in /*) ;; *) venv="$clone/$venv" ;; esac
for candidate in "$venv/bin/rlm-mcp" "$(command -v rlm-mcp)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then exec "$candidate" "$@"; fi
done
echo "rlm-mcp is not installed: run ./dev.sh setup in the rlm-mcp clone (or pip install it), then restart Claude Code" >&2
exit 127
