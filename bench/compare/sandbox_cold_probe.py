"""Cold start of our jail at the library level: a fresh interpreter imports rlm_mcp.sandbox, starts one nsjail
sandbox and runs a first exec. The counterpart of rlms_probe.py's cold mode; prints one JSON line.

Run by bench/compare_bench.py with the project's interpreter. argv[1]: the parent's time.monotonic() at spawn.
"""

from __future__ import annotations

import json
import shutil
import sys
import time


def main() -> None:
    spawned = float(sys.argv[1])
    begun = time.monotonic()
    import anyio

    from rlm_mcp.sandbox import Sandbox, SandboxPolicy, create_launcher, new_data_dir

    imported = time.monotonic()

    async def first_exec() -> tuple[str, float]:
        policy = SandboxPolicy.load()
        data_dir = new_data_dir()
        try:
            async with anyio.create_task_group() as group:
                sandbox = Sandbox(create_launcher("nsjail", policy), policy, data_dir)
                await sandbox.start(group)
                result = await sandbox.exec("print(6 * 7)")
                ready = time.monotonic()  # closing the jail is not part of the start
                await sandbox.close()
                group.cancel_scope.cancel()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
        return str(getattr(result.stdout, "text", result.stdout)), ready

    printed, ready = anyio.run(first_exec)
    if "42" not in printed:
        raise SystemExit(f"the sandbox printed {printed!r}, not 42")
    print(json.dumps({"cold_s": ready - spawned, "interpreter_s": begun - spawned, "import_s": imported - begun}))


if __name__ == "__main__":
    main()
