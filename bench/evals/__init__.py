"""RLM evaluation suites: generated offline from a seed, scored exactly, run through the real MCP server.

`python -m bench.evals` runs the reference programs with a deterministic local worker; add
`--root MODEL --worker MODEL` to run real models through litellm instead. See docs/evals.md.
"""
