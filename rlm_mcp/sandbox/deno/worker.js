// The wasm sandbox's guest: Pyodide (CPython compiled to WebAssembly) in a Deno Worker, running the
// same guest runtime as the nsjail backend (rlm_mcp/sandbox/guest/runtime.py, through wasm_runtime.py).
//
// Isolation comes from WebAssembly and from Deno's permissions (set by the Python launcher: read access
// to Pyodide, the guest runtime and the session's data, nothing else). Pyodide turns a write that Deno
// denies into a fatal error, so the mounted directories refuse every write here, in the Emscripten
// filesystem, before Deno sees it. Writes to the in-memory filesystem (/tmp and the rest) are capped,
// and WebAssembly memory cannot grow past the policy's ceiling (Python then raises MemoryError).

const EROFS = 69, EACCES = 2, ENOSPC = 51, EFBIG = 22; // Emscripten's errno numbers
const REPLY_FREE = 0, REPLY_FULL = 1;
const MB = 1024 * 1024;
let pyodide, guest, control, replyBuffer, interrupt;
let ready = null;
let queue = Promise.resolve();
const decoder = new TextDecoder();

console.log = console.error; // nothing but protocol lines may reach stdout

self.onmessage = (event) => {
  const message = event.data;
  if (message.kind === "init") {
    ready = init(message).catch((error) => postMessage({ kind: "fatal", error: String(error?.stack ?? error) }));
  } else if (message.kind === "request") {
    queue = queue.then(() => ready).then(() => handle(message.request));
  }
};

function capMemory(limitBytes) {
  const grow = WebAssembly.Memory.prototype.grow;
  WebAssembly.Memory.prototype.grow = function (pages) {
    if (this.buffer.byteLength + pages * 65536 > limitBytes) throw new RangeError("rlm memory cap");
    return grow.call(this, pages);
  };
}

async function init({ config, control: controlBuffer, reply, interrupt: interruptBuffer }) {
  control = new Int32Array(controlBuffer);
  replyBuffer = reply;
  interrupt = new Int32Array(interruptBuffer);
  capMemory(config.memory_mb * MB);
  const { loadPyodide } = await import(new URL("pyodide.mjs", config.pyodide_url).href);
  pyodide = await loadPyodide({
    indexURL: config.pyodide_dir,
    env: config.env,
    stdout: (text) => console.error(text),
    stderr: (text) => console.error(text),
    stdin: () => null,
  });
  pyodide.setInterruptBuffer(interrupt);
  const FS = pyodide.FS;
  guardNodefs(FS);
  for (const [host, guestPath] of config.mounts) {
    FS.mkdirTree(guestPath);
    FS.mount(readOnlyNodefs(FS), { root: host }, guestPath);
  }
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
      `wasm_runtime.start(_rlm_js_send, _rlm_js_send_blob, _rlm_js_wait_reply, _rlm_js_exec_done, ${JSON.stringify(JSON.stringify(config.env))})`,
  );
}

function handle(request) {
  Atomics.store(interrupt, 0, 0);
  try {
    postMessage({ kind: "line", line: guest.handle_line(JSON.stringify(request)) });
  } catch (error) {
    postMessage({ kind: "fatal", error: `the interpreter failed: ${error?.message ?? error}` });
  }
  postMessage({ kind: "idle" });
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

// A Deno permission error has no errno; Emscripten would call it fatal. Make it EACCES instead.
function guardNodefs(FS) {
  const NODEFS = FS.filesystems.NODEFS;
  const tryOperation = NODEFS.tryFSOperation;
  NODEFS.tryFSOperation = (operation) => {
    try {
      return tryOperation(operation);
    } catch (error) {
      if (error instanceof FS.ErrnoError) throw error;
      throw new FS.ErrnoError(EACCES);
    }
  };
}

// NODEFS whose every node refuses writes, renames, deletes and attribute changes with EROFS.
function readOnlyNodefs(FS) {
  const NODEFS = FS.filesystems.NODEFS;
  const deny = () => {
    throw new FS.ErrnoError(EROFS);
  };
  const streamOps = {
    ...NODEFS.stream_ops,
    write: deny,
    open(stream) {
      if ((stream.flags & 3) !== 0) deny(); // O_WRONLY or O_RDWR
      return NODEFS.stream_ops.open(stream);
    },
  };
  const fix = (node) => {
    node.node_ops = nodeOps;
    node.stream_ops = streamOps;
    return node;
  };
  const nodeOps = {
    ...NODEFS.node_ops,
    setattr: deny, mknod: deny, rename: deny, unlink: deny, rmdir: deny, symlink: deny,
    lookup: (parent, name) => fix(NODEFS.node_ops.lookup(parent, name)),
  };
  return { ...NODEFS, mount: (mount) => fix(NODEFS.mount(mount)) };
}

// The in-memory filesystem may hold at most `limit` bytes more than it did at start-up (ENOSPC after),
// and no file may grow past `fileLimit` (EFBIG), like the nsjail guest's tmpfs and file-size rlimit.
function capScratch(FS, limit, fileLimit) {
  const MEMFS = FS.filesystems.MEMFS;
  const ops = MEMFS.ops_table.file;
  const total = () => {
    let sum = 0;
    const seen = new Set();
    const walk = (node) => {
      if (seen.has(node)) return;
      seen.add(node);
      if (FS.isFile(node.mode) && node.usedBytes) sum += node.usedBytes;
      if (FS.isDir(node.mode) && node.contents && node.mount?.type === MEMFS) {
        for (const child of Object.values(node.contents)) walk(child);
      }
    };
    walk(FS.root);
    return sum;
  };
  const baseline = total();
  let used = 0; // an upper bound, recounted when it reaches the limit
  const check = (size, growth) => {
    if (size > fileLimit) throw new FS.ErrnoError(EFBIG);
    if (growth <= 0) return;
    if (used + growth > limit) used = total() - baseline;
    if (used + growth > limit) throw new FS.ErrnoError(ENOSPC);
    used += growth;
  };
  const write = ops.stream.write;
  ops.stream.write = function (stream, buffer, offset, length, position, canOwn) {
    const node = stream.node;
    check(position + length, position + length - (node.usedBytes || 0));
    return write.call(this, stream, buffer, offset, length, position, canOwn);
  };
  const setattr = ops.node.setattr;
  ops.node.setattr = function (node, attr) {
    if (attr.size !== undefined) check(attr.size, attr.size - (node.usedBytes || 0));
    return setattr.call(this, node, attr);
  };
}
