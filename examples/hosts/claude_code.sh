#!/usr/bin/env sh
# Register rlm-mcp with Claude Code for the current project (stdio; no API key needed to start).
claude mcp add rlm -e RLM_ALLOWED_ROOTS="$PWD" -- "$(command -v rlm-mcp)"
