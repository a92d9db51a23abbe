// The wasm sandbox's host side inside Deno: speaks the guest protocol (JSON lines, see
// rlm_mcp/sandbox/guest/runtime.py) on stdin/stdout and runs the guest in a Worker (worker.js) so
// this thread stays free to interrupt it at its timeout.
//
// Channel: requests go to the Worker by postMessage; the Worker's lines come back by postMessage and
// are written to stdout unchanged (the Python host validates every one: the guest is hostile). Replies
// to the guest's callbacks cannot be posted, since the Worker is blocked waiting for them; they go
// through a SharedArrayBuffer the Worker polls with Atomics.wait. Everything here is data from the
// Python host; the Worker's messages are only ever forwarded, never obeyed, except "idle" (which
// only stops the timeout timer early: the host's own deadline still applies).

const config = JSON.parse(Deno.args[0]);
const REPLY_FREE = 0, REPLY_FULL = 1;
const control = new Int32Array(new SharedArrayBuffer(8)); // [state, length]
const replyBuffer = new SharedArrayBuffer(1 << 16, { maxByteLength: config.max_reply_bytes });
const interrupt = new Int32Array(new SharedArrayBuffer(4));
const SIGINT = 2;
const encoder = new TextEncoder();
const pendingReplies = [];
let timer = null;
let timedRequest = null; // the id of the exec the timer is armed for

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
worker.postMessage({ kind: "init", config, control: control.buffer, reply: replyBuffer, interrupt: interrupt.buffer });

async function writeLine(line) {
  await writeBytes(encoder.encode(line + "\n"));
}

async function writeBytes(data) {
  let written = 0;
  while (written < data.length) written += await Deno.stdout.write(data.subarray(written));
}

let output = Promise.resolve();
worker.onmessage = (event) => {
  const message = event.data ?? {};
  if (message.kind === "line" && typeof message.line === "string") {
    output = output.then(() => writeLine(message.line));
  } else if (message.kind === "blob" && message.bytes instanceof Uint8Array) {
    // A header line, then raw bytes (a checkpoint file). The header is written here, from the bytes' real
    // length, so guest code cannot announce one size and send another to desynchronise the channel.
    const header = JSON.stringify({ op: "blob", file: String(message.file), bytes: message.bytes.length });
    output = output.then(() => writeLine(header)).then(() => writeBytes(message.bytes));
  } else if (message.kind === "idle") {
    // Only the idle of the exec the timer is armed for stops it. On a starved machine the idle of the exec
    // before can be handled after the next exec arrived on stdin (its reply went out first, and the Python
    // host answered at once); stopping the timer then left that exec without its timeout, so a wait in a
    // callback ran into the host's hard kill (tests/sandbox/test_repl.py's callback-timeout test).
    if (message.id === timedRequest) stopTimer();
  } else if (message.kind === "taken") {
    deliverReply();
  } else if (message.kind === "fatal") {
    console.error(`rlm wasm guest: ${message.error}`);
    Deno.exit(70);
  }
};
worker.onerror = (event) => {
  console.error(`rlm wasm guest died: ${event.message}`);
  event.preventDefault();
  Deno.exit(70);
};

function stopTimer() {
  clearTimeout(timer); // (clearTimeout also clears an interval)
  timer = null;
  timedRequest = null;
}

// At the timeout, raise KeyboardInterrupt in the guest, and again every second in case code catches it.
function armTimer(seconds, id) {
  stopTimer();
  timedRequest = id;
  timer = setTimeout(() => {
    Atomics.store(interrupt, 0, SIGINT);
    timer = setInterval(() => Atomics.store(interrupt, 0, SIGINT), 1000);
  }, Math.max(0, seconds * 1000));
}

function deliverReply() {
  if (pendingReplies.length === 0 || Atomics.load(control, 0) !== REPLY_FREE) return;
  const data = pendingReplies.shift();
  if (data.length > replyBuffer.maxByteLength) {
    // Over the policy's message cap: dropped; the guest waits on until its exec times out.
    console.error(`rlm wasm host: dropping a ${data.length}-byte reply over the cap`);
    return deliverReply();
  }
  if (data.length > replyBuffer.byteLength) replyBuffer.grow(data.length);
  new Uint8Array(replyBuffer).set(data);
  Atomics.store(control, 1, data.length);
  Atomics.store(control, 0, REPLY_FULL);
  Atomics.notify(control, 0);
}

const decoder = new TextDecoder();
let pending = new Uint8Array(0);
for await (const chunk of Deno.stdin.readable) {
  const joined = new Uint8Array(pending.length + chunk.length);
  joined.set(pending);
  joined.set(chunk, pending.length);
  let start = 0;
  for (let end = joined.indexOf(10, start); end !== -1; end = joined.indexOf(10, start)) {
    handleLine(joined.subarray(start, end));
    start = end + 1;
  }
  pending = joined.slice(start);
}
Deno.exit(0); // the host closed the channel

function handleLine(bytes) {
  let message;
  try {
    message = JSON.parse(decoder.decode(bytes));
  } catch {
    console.error("rlm wasm host: dropping a malformed line from the host");
    return;
  }
  if (message.op === "reply") {
    pendingReplies.push(bytes.slice());
    deliverReply();
    return;
  }
  if (message.op === "exec") armTimer(Number(message.timeout_s) || 60, message.id);
  worker.postMessage({ kind: "request", request: message });
}
