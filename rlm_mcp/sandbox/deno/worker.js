// The wasm sandbox's guest: Pyodide (CPython compiled to WebAssembly) in a Deno Worker, running the
// same guest runtime as the nsjail backend (rlm_mcp/sandbox/guest/runtime.py, through wasm_runtime.py).
//
// Isolation comes from WebAssembly and from Deno's permissions (set by the Python launcher: read access
// to Pyodide, the guest runtime and the session's data, nothing else). Pyodide turns a write that Deno
// denies into a fatal error, so the mounted directories refuse every write here, in the Emscripten
// filesystem, before Deno sees it. Writes to the in-memory filesystem (/tmp and the rest) are capped,
// and WebAssembly memory cannot grow past the policy's ceiling (Python then raises MemoryError).

import { capMemory, capScratch, checkedSnapshot, loadGuestPyodide, MB, mountReadOnly } from "./guest_setup.js";

const REPLY_FREE = 0, REPLY_FULL = 1;
let pyodide, guest, control, replyBuffer, interrupt;
let ready = null;
let queue = Promise.resolve();
const decoder = new TextDecoder();

console.log = console.error; // nothing but protocol lines may reach stdout

self.onmessage = (event) => {
  const message = event.data;
  if (message.kind === "init") {
    // (Pyodide's exit on a fatal Python error is an object with a message and no stack)
    ready = init(message).catch((error) =>
      postMessage({ kind: "fatal", error: String(error?.stack ?? error?.message ?? error) })
    );
  } else if (message.kind === "request") {
    queue = queue.then(() => ready).then(() => handle(message.request));
  }
};

async function init({ config, control: controlBuffer, reply, interrupt: interruptBuffer }) {
  control = new Int32Array(controlBuffer);
  replyBuffer = reply;
  interrupt = new Int32Array(interruptBuffer);
  capMemory(config.memory_mb * MB);
  let note = "";
  if (config.snapshot) {
    try {
      // The snapshot holds the wasm memory only: everything kept in JavaScript (the filesystem, the
      // interrupt buffer, the callbacks below) is set up again after it, as after a plain load.
      const snapshot = checkedSnapshot(await Deno.readFile(config.snapshot));
      pyodide = await loadGuestPyodide(config, { _loadSnapshot: snapshot });
    } catch (error) {
      note = `the Pyodide snapshot ${config.snapshot} did not restore (${error?.message ?? error}); started plain`;
    }
  }
  pyodide ??= await loadGuestPyodide(config);
  pyodide.setInterruptBuffer(interrupt);
  const FS = pyodide.FS;
  mountReadOnly(FS, config.mounts);
  capScratch(FS, config.scratch_mb * MB, config.file_size_mb * MB);
  pyodide.globals.set("_rlm_js_send", (line) => postMessage({ kind: "line", line }));
  pyodide.globals.set("_rlm_js_send_blob", (file, data) => {
    const bytes = data.toJs(); // a copy of the Python bytes, handed over to the host thread without another
    postMessage({ kind: "blob", file, bytes }, [bytes.buffer]);
  });
  pyodide.globals.set("_rlm_js_wait_reply", waitReply);
  pyodide.globals.set("_rlm_js_exec_done", () => Atomics.store(interrupt, 0, 0));
  guest = pyodide.runPython(
    `import sys; sys.path.insert(0, ${JSON.stringify(config.guest_dir)}); import wasm_runtime; ` +
      `wasm_runtime.start(_rlm_js_send, _rlm_js_send_blob, _rlm_js_wait_reply, _rlm_js_exec_done, ` +
      `${JSON.stringify(JSON.stringify(config.guest_env))}, ${JSON.stringify(note)})`,
  );
  for (const name of ["_rlm_js_send", "_rlm_js_send_blob", "_rlm_js_wait_reply", "_rlm_js_exec_done"]) {
    pyodide.globals.delete(name);
  }
}

function handle(request) {
  Atomics.store(interrupt, 0, 0);
  try {
    postMessage({ kind: "line", line: guest.handle_line(JSON.stringify(request)) });
  } catch (error) {
    postMessage({ kind: "fatal", error: `the interpreter failed: ${error?.message ?? error}` });
  }
  postMessage({ kind: "idle", id: request.id }); // host.js stops the timer armed for this request only
}

// The guest blocks here for the host's answer to callback `cid`; undefined (None) when the timeout
// interrupts.
function waitReply(cid) {
  for (;;) {
    if (Atomics.load(control, 0) === REPLY_FULL) {
      const length = Atomics.load(control, 1);
      const text = decoder.decode(new Uint8Array(replyBuffer).slice(0, length));
      Atomics.store(control, 0, REPLY_FREE);
      postMessage({ kind: "taken" });
      let message = null;
      try {
        message = JSON.parse(text);
      } catch { /* a malformed reply is dropped like a stale one */ }
      if (message && message.cid === cid) return text;
      continue;
    }
    if (Atomics.load(interrupt, 0) !== 0) {
      Atomics.store(interrupt, 0, 0);
      return undefined;
    }
    Atomics.wait(control, 0, REPLY_FREE, 50);
  }
}
