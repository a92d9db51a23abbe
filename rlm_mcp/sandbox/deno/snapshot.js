// Makes the Pyodide memory snapshot that every wasm session of this server restores from (0.3 s instead
// of a 1.5-3 s plain load): Pyodide loaded exactly as worker.js loads it, the guest runtime imported, and
// the WebAssembly memory written to the one file the launcher lets this process write (a temporary
// name; the Python side renames it into place). No user code ever runs in this process.
//
// What a snapshot may not hold (Pyodide 0.29, a private API: keep Pyodide pinned): a JavaScript object
// referenced from Python (so the guest's callbacks are set after each restore, by worker.js) or a
// compiled extension module loaded from the filesystem. The hash seed is the one in `config.env`
// (PYTHONHASHSEED): every session restored from this file shares it, so each server run makes its own.

import { capMemory, loadGuestPyodide, MB, mountReadOnly } from "./guest_setup.js";

console.log = console.error; // stdout stays quiet, as in a session

const [configText, output] = Deno.args;
const config = JSON.parse(configText);
capMemory(config.memory_mb * MB);
const pyodide = await loadGuestPyodide(config, { _makeSnapshot: true });
mountReadOnly(pyodide.FS, config.mounts);
pyodide.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(config.guest_dir)}); import wasm_runtime`);
await Deno.writeFile(output, pyodide.makeMemorySnapshot());
Deno.exit(0);
