"""The context's str is decoded in the jail only when code names it: files[], grep and the index read the file
(on both backends, nsjail and wasm)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import stdio_client

pytestmark = pytest.mark.anyio


async def run(client, code: str) -> str:
    report = (await client.call_tool("exec_code", {"code": code})).structured_content
    assert report["status"] == "ok", report
    return report["stdout"]


async def test_files_and_names_without_decoding_then_context_on_first_mention(backend_env, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "plain.py").write_text("def plain():\n    return 1\n")
    (source / "wide.py").write_text("# naïve café 🚀\nrocket = '🚀'\n", encoding="utf-8")
    async with stdio_client(backend_env) as client:
        await client.call_tool("load_context", {"source": [str(source)]})
        assert await run(client, "print(contexts.loaded('main') is None, list(files))") == \
            "True ['plain.py', 'wide.py']\n"
        assert await run(client, "print(files['wide.py'].splitlines()[1], contexts.loaded('main') is None)") == \
            "rocket = '🚀' True\n"
        assert await run(client, "print(grep('def p'), find_symbol('plain')[0]['path'], "
                                 "contexts.loaded('main') is None)") == \
            "[('plain.py', 1, 'def plain():')] plain.py True\n"
        # Naming it (here only inside a string) decodes it once; files[] then slices the str.
        assert await run(client, "print(len(globals()['context']) > 40, contexts.loaded('main') is context)") == \
            "True True\n"
        assert await run(client, "print(files['wide.py'] == context[files.info('wide.py')['start']:]"
                                 "[:len(files['wide.py'])])") == "True\n"


async def test_before_any_load_context_is_empty_and_keywords_named_context_decode_nothing(backend_env,
                                                                                          tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    async with stdio_client(backend_env) as client:
        assert await run(client, "print(repr(context), sorted(contexts))") == "'' []\n"
        await client.call_tool("load_context", {"source": [str(tmp_path / "a.py")]})
        # `context=` as a keyword (as in rlm_query(q, context=...)) is not a use of the variable.
        assert await run(client, "print(dict(context='x'), contexts.loaded('main') is None)") == \
            "{'context': 'x'} True\n"
        used_in_a_function = "def f():\n    global context\n    return len(context)\nprint(f())"
        assert await run(client, used_in_a_function) == "24\n"  # the file's header and body
