"""The MCP surface of rlm-mcp: tools, resources, the prompt and completions over the parts below.

app.py builds the server (`create_server`) and registers every handler behind errors.py, the one error
boundary; tools.py holds the handlers, requests.py who is asking and which session a request reaches,
http.py the streamable HTTP transport and its bearer tokens, stdio.py the stdio one (the sandbox starting
while the rest is imported). This file imports nothing, so
`python -m rlm_mcp.server.playbook` (which writes the plugin's skill) does not load the server first.
"""
