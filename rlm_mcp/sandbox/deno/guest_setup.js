// What every Pyodide of the wasm sandbox shares, whether it runs a session (worker.js) or is loaded once
// to make the memory snapshot sessions restore from (snapshot.js): the same load options, the same
// read-only mounts. A snapshot made with other options than the restore's is not the same interpreter.

export const EROFS = 69, EACCES = 2, ENOSPC = 51, EFBIG = 22; // Emscripten's errno numbers
export const MB = 1024 * 1024;

// Load Pyodide as a session does; `extra` adds the snapshot options (`_makeSnapshot`, `_loadSnapshot`).
export async function loadGuestPyodide(config, extra = {}) {
  const { loadPyodide } = await import(new URL("pyodide.mjs", config.pyodide_url).href);
  return await failingFastOnBadWasm(() =>
    loadPyodide({
      indexURL: config.pyodide_dir,
      env: config.env,
      stdout: (text) => console.error(text),
      stderr: (text) => console.error(text),
      stdin: () => null,
      ...extra,
    })
  );
}

// A damaged pyodide.asm.wasm (a cut download, a full disk) fails to compile; Pyodide 0.29 only warns
// "wasm instantiation failed!" and its load never settles, so a session used to wait out the Python host's
// 30 s start timeout. Here the compile error ends the load at once: the worker reports it as fatal, Deno
// exits, and the host answers with the cache directory and its fix (wasm.py's start_fix).
async function failingFastOnBadWasm(load) {
  const instantiate = WebAssembly.instantiate;
  let failed;
  const compileFailed = new Promise((_, reject) => (failed = reject));
  WebAssembly.instantiate = async function (...args) {
    try {
      return await instantiate.apply(this, args);
    } catch (error) {
      failed(new Error(`Pyodide's pyodide.asm.wasm did not compile: ${error?.message ?? error}`));
      throw error;
    }
  };
  try {
    return await Promise.race([load(), compileFailed]);
  } finally {
    WebAssembly.instantiate = instantiate;
  }
}

// Pyodide 0.29's snapshot layout (a private format: Pyodide is pinned): 32-bit words [magic, offset of the
// memory image, length of a JSON part, 0, 8 words of build id], the JSON part from byte 48, the image at
// the offset. A restore from bytes that are not such a snapshot never settles (Emscripten prints "wasm
// instantiation failed" and its promise hangs), so the bytes are checked here first; Pyodide itself
// checks the build id.
const SNAPSHOT_MAGIC = 1886286592, SNAPSHOT_HEADER = 48, WASM_PAGE = 65536;

export function checkedSnapshot(bytes) {
  const words = bytes.byteLength >= SNAPSHOT_HEADER ? new Uint32Array(bytes.buffer, bytes.byteOffset, 4) : [];
  if (words[0] !== SNAPSHOT_MAGIC) throw new Error("not a Pyodide memory snapshot");
  const image = bytes.byteLength - words[1];
  if (words[1] < SNAPSHOT_HEADER + words[2] || image <= 0 || image % WASM_PAGE !== 0) {
    throw new Error("a truncated Pyodide memory snapshot");
  }
  JSON.parse(new TextDecoder().decode(bytes.subarray(SNAPSHOT_HEADER, SNAPSHOT_HEADER + words[2])));
  return bytes;
}

// Mount each [host, guest] directory read-only (the in-memory filesystem is rebuilt at every start, a
// restored snapshot's included, so this runs after every load).
export function mountReadOnly(FS, mounts) {
  guardNodefs(FS);
  const readOnly = readOnlyNodefs(FS);
  for (const [host, guestPath] of mounts) {
    FS.mkdirTree(guestPath);
    FS.mount(readOnly, { root: host }, guestPath);
  }
}

export function capMemory(limitBytes) {
  const grow = WebAssembly.Memory.prototype.grow;
  WebAssembly.Memory.prototype.grow = function (pages) {
    if (this.buffer.byteLength + pages * 65536 > limitBytes) throw new RangeError("rlm memory cap");
    return grow.call(this, pages);
  };
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
export function capScratch(FS, limit, fileLimit) {
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
