// Makes the Pyodide memory snapshot that every wasm session of this server restores from (0.3 s instead
// of a 1.5-3 s plain load): Pyodide loaded exactly as worker.js loads it, the guest runtime imported, and
// the WebAssembly memory written to a temporary name and renamed into place (the two paths the launcher
// lets this process write), here rather than by the server, so that a server that stops meanwhile still
// leaves a whole snapshot for the next. No user code ever runs in this process.
//
// What a snapshot may not hold (Pyodide 0.29, a private API: keep Pyodide pinned): a JavaScript object
// referenced from Python (so the guest's callbacks are set after each restore, by worker.js) or a
// compiled extension module loaded from the filesystem. The hash seed is the one in `config.env`
// (PYTHONHASHSEED): every session restored from this file shares it, so each server run makes its own.

import { capMemory, loadGuestPyodide, MB, mountReadOnly } from "./guest_setup.js";

console.log = console.error; // stdout stays quiet, as in a session

const [configText, temporary, output] = Deno.args;
const config = JSON.parse(configText);
capMemory(config.memory_mb * MB);
const pyodide = await loadGuestPyodide(config, { _makeSnapshot: true });
mountReadOnly(pyodide.FS, config.mounts);
pyodide.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(config.guest_dir)}); import wasm_runtime`);
await Deno.writeFile(temporary, pyodide.makeMemorySnapshot());
await Deno.rename(temporary, output);
Deno.exit(0);
