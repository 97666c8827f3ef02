// The upload page (GET /): one HTML document with its style and script, no
// build step and nothing fetched from elsewhere. See upload_page.hpp for what
// it does; the script's comments say why it does it that way.
#include "upload_page.hpp"

namespace upload_server {

namespace {

// The delimiter "page" appears nowhere in the document as )page".
constexpr std::string_view page = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Upload a file</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 42rem; padding: 0 1rem;
         color: #1d2430; background: #f7f8fa; }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; }
  .card { background: #fff; border: 1px solid #d8dde5; border-radius: 8px; padding: 1.25rem; }
  .row { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
  button { font: inherit; padding: .35rem 1rem; border-radius: 6px; border: 1px solid #8892a0;
           background: #eef1f5; cursor: pointer; }
  button#upload { background: #1f6feb; border-color: #1f6feb; color: #fff; }
  button:disabled { opacity: .45; cursor: default; }
  progress { width: 100%; height: 1.1rem; margin: 1rem 0 .25rem; }
  #figures { color: #566070; font-size: .9rem; min-height: 1.35em; font-variant-numeric: tabular-nums; }
  #status { font-weight: 600; margin: .75rem 0 .25rem; min-height: 1.5em; }
  #status.bad { color: #b42318; }
  #status.good { color: #1a7f37; }
  #detail { color: #566070; font-size: .9rem; min-height: 1.35em; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem .75rem; margin: 1rem 0 0;
       font-size: .85rem; }
  dt { color: #566070; }
  dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
</style>
</head>
<body>
<h1>Upload a file</h1>
<div class="card">
  <div class="row">
    <input type="file" id="file">
    <button id="upload" disabled>Upload</button>
    <button id="cancel" disabled>Cancel</button>
  </div>
  <progress id="progress" max="100" value="0"></progress>
  <div id="figures"></div>
  <div id="status">Choose a file to upload.</div>
  <div id="detail"></div>
  <dl>
    <dt>SHA-256, server</dt><dd id="sha256"></dd>
    <dt>SHA-256, this page</dt><dd id="local-sha256"></dd>
  </dl>
</div>
<script>
"use strict";

// --- SHA-256, incremental -------------------------------------------------------
// The page hashes each piece as it sends it. WebCrypto's crypto.subtle.digest
// would be faster, but it takes the whole file in one buffer (a 2 GB file in
// the tab's memory) and only in a secure context (https, or 127.0.0.1), so
// the page has its own. Int32Array keeps every word a 32-bit integer to V8
// (a Uint32Array's words above 2^31 would be doubles): 64 MiB in 1.6 s in
// Node's V8 on a loaded 2-core machine, as fast as the pieces are read.
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

class Sha256 {
  constructor() {
    this.h = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Int32Array(64);
    this.pending = new Uint8Array(64);  // a block begun and not complete
    this.used = 0;
    this.length = 0;  // bytes hashed; a double is exact up to 2^53
  }
  update(bytes) {
    let at = 0;
    this.length += bytes.length;
    if (this.used > 0) {
      const take = Math.min(64 - this.used, bytes.length);
      this.pending.set(bytes.subarray(0, take), this.used);
      this.used += take;
      at = take;
      if (this.used < 64) return;
      this.block(this.pending, 0);
      this.used = 0;
    }
    for (; at + 64 <= bytes.length; at += 64) this.block(bytes, at);
    if (at < bytes.length) {
      this.pending.set(bytes.subarray(at));
      this.used = bytes.length - at;
    }
  }
  hex() {
    const bits = this.length * 8;
    const tail = new Uint8Array((this.used < 56 ? 64 : 128) - this.used);
    tail[0] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(tail.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(tail.length - 4, bits >>> 0);
    this.update(tail);
    return Array.from(this.h, (x) => (x >>> 0).toString(16).padStart(8, "0")).join("");
  }
  block(bytes, at) {
    const w = this.w;
    for (let t = 0; t < 16; t++, at += 4) {
      w[t] = (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
    }
    for (let t = 16; t < 64; t++) {
      const a = w[t - 15], b = w[t - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    const h = this.h;
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (let t = 0; t < 64; t++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (k + s1 + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
  }
}

// --- Words for people -----------------------------------------------------------
const KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

function bytesInWords(n) {
  if (n >= GiB) return (n / GiB).toFixed(2) + " GiB";
  if (n >= 100 * MiB) return Math.round(n / MiB) + " MiB";
  if (n >= MiB) return (n / MiB).toFixed(1) + " MiB";
  if (n >= KiB) return (n / KiB).toFixed(1) + " KiB";
  return n + " bytes";
}

function secondsInWords(s) {
  if (s < 10) return Math.max(0, s).toFixed(1) + " s";  // a short upload is not "0 s"
  s = Math.round(s);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  return m < 60 ? m + " min " + (s % 60) + " s" : Math.floor(m / 60) + " h " + (m % 60) + " min";
}

// --- The page -------------------------------------------------------------------
const $ = (id) => document.getElementById(id);
const fileInput = $("file"), uploadButton = $("upload"), cancelButton = $("cancel");
const progressBar = $("progress"), figures = $("figures"), statusLine = $("status");
const detail = $("detail"), serverHash = $("sha256"), pageHash = $("local-sha256");

const MAX_TRIES = 5;              // attempts in all, the first included
const PIECE = 1 * MiB;            // one binary message per piece
const HIGH_WATER = 8 * MiB;       // queued in the browser before it waits
const DEFAULT_RETRY_MS = 3000;    // a busy answer that names no delay

let run = null;  // the upload going on: { file, ws, tries, timer, cancelled, ... }

function say(text, kind = "", more = "") {
  statusLine.textContent = text;
  statusLine.className = kind;
  detail.textContent = more;
}

function idle() {
  uploadButton.disabled = !fileInput.files.length;
  cancelButton.disabled = true;
  fileInput.disabled = false;
}

fileInput.addEventListener("change", () => {
  idle();
  if (fileInput.files.length) say("Ready to upload " + fileInput.files[0].name + " (" +
                                  bytesInWords(fileInput.files[0].size) + ").");
});

uploadButton.addEventListener("click", () => {
  const file = fileInput.files[0];
  if (!file || run) return;
  run = { file, tries: 0, timer: null, ws: null, cancelled: false };
  serverHash.textContent = "";
  pageHash.textContent = "";
  uploadButton.disabled = true;
  fileInput.disabled = true;
  cancelButton.disabled = false;
  attempt(run);
});

cancelButton.addEventListener("click", () => {
  if (!run) return;
  run.cancelled = true;
  clearInterval(run.timer);
  // 1000: a normal close. The server drops the partial file and gives its
  // room back at once.
  if (run.ws && run.ws.readyState <= WebSocket.OPEN) run.ws.close(1000, "cancelled");
  run = null;
  progressBar.value = 0;
  figures.textContent = "";
  say("Cancelled. Nothing was stored.");
  idle();
});

function attempt(r) {
  r.tries += 1;
  r.sent = 0;
  r.ready = false;
  r.done = null;
  r.hash = new Sha256();
  progressBar.value = 0;
  figures.textContent = "";
  say(r.tries === 1 ? "Asking the server for room..." : "Trying again (" + r.tries + " of " +
      MAX_TRIES + ")...");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/ws/upload");
  ws.binaryType = "arraybuffer";
  r.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ name: r.file.name, size: r.file.size }));
  ws.onmessage = (event) => {
    if (r !== run) return;
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    if (message.status === "ready") {
      r.ready = true;
      say("Uploading " + r.file.name + "...", "", "The server set aside " +
          bytesInWords(message.reserved_bytes) + " of memory for this upload.");
      send(r);
    } else if (message.status === "done") {
      r.done = message;
    }
  };
  ws.onclose = (event) => { if (r === run) closed(r, event); };
}

// Sends the file piece by piece, hashing each piece as it goes. The browser
// queues what ws.send() is given; waiting while more than HIGH_WATER is queued
// keeps the tab's memory bounded, and what has left the queue is what the
// progress bar shows.
async function send(r) {
  const started = performance.now();
  const samples = [[started, 0]];  // [time, bytes gone]: the speed over the last 3 s
  const show = () => {
    const gone = r.sent - r.ws.bufferedAmount;
    const now = performance.now();
    samples.push([now, gone]);
    while (samples.length > 2 && now - samples[0][0] > 3000) samples.shift();
    const [t0, b0] = samples[0];
    const speed = now > t0 ? (gone - b0) / ((now - t0) / 1000) : 0;
    const percent = r.file.size ? Math.floor(100 * gone / r.file.size) : 100;
    progressBar.value = percent;
    let text = bytesInWords(gone) + " of " + bytesInWords(r.file.size) + " (" + percent + " %)";
    if (speed > 0) text += ", " + bytesInWords(speed) + "/s";
    if (speed > 0 && gone < r.file.size) {
      text += ", " + secondsInWords((r.file.size - gone) / speed) + " left";
    }
    figures.textContent = text;
  };
  const ticker = setInterval(() => { if (r === run && r.ready) show(); }, 250);
  try {
    for (let at = 0; at < r.file.size; at += PIECE) {
      const piece = await r.file.slice(at, Math.min(at + PIECE, r.file.size)).arrayBuffer();
      if (r !== run || r.ws.readyState !== WebSocket.OPEN) return;
      r.hash.update(new Uint8Array(piece));
      r.ws.send(piece);
      r.sent += piece.byteLength;
      while (r === run && r.ws.readyState === WebSocket.OPEN && r.ws.bufferedAmount > HIGH_WATER) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    // Complete now: the server's "done" may come before the queue shows empty.
    r.pageHash = r.hash.hex();
    while (r === run && r.ws.readyState === WebSocket.OPEN && r.ws.bufferedAmount > 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (r !== run) return;
    r.seconds = (performance.now() - started) / 1000;
    show();
    say("Sent. The server is storing " + r.file.name + "...");
  } finally {
    clearInterval(ticker);
  }
}

// The close says how it went. A refusal's reason is JSON (the server's
// refusal.hpp): {"reason": ..., "retry_after_ms": ..., and figures}.
function closed(r, event) {
  let answer = null;
  try { answer = JSON.parse(event.reason); } catch { answer = null; }
  if (r.done && event.code === 1000) return finished(r);
  const reason = answer && answer.reason;
  if (event.code === 1009 && reason === "too_large") {
    return failed("This file needs " + bytesInWords(answer.needed_bytes) + " of server memory; " +
                  "the server can give at most " + bytesInWords(answer.memory_budget) + ".",
                  "Uploads reserve memory in proportion to their size; a smaller file will fit.");
  }
  const over = /^max_body: declared (\d+) bytes, the limit is (\d+) bytes/.exec(event.reason);
  if (event.code === 1009 && over) {
    return failed("This file is " + bytesInWords(Number(over[1])) + "; the server accepts at most " +
                  bytesInWords(Number(over[2])) + ".");
  }
  if (event.code === 1013 || event.code === 1001) {
    const restarting = event.code === 1001;
    const delay = answer && answer.retry_after_ms > 0 ? answer.retry_after_ms : DEFAULT_RETRY_MS;
    return retry(r, restarting, delay, why(answer));
  }
  const words = event.reason ? event.reason : "the connection was lost";
  failed("The upload failed: " + words + " (WebSocket close " + event.code + ").");
}

// A busy answer's figures, for the line under the sentence.
function why(answer) {
  if (!answer) return "";
  switch (answer.reason) {
    case "no_slot":
    case "queue_full":
      return answer.slots ? "All " + answer.slots + " upload slots are in use." : "";
    case "no_memory":
    case "timeout":
    case "cancelled":
      return answer.available_bytes !== undefined ?
          "This upload needs " + bytesInWords(answer.needed_bytes) + " of memory; " +
          bytesInWords(answer.available_bytes) + " is free now." : "";
    case "pressure":
      return "The server is short of memory.";
    case "out_of_memory":
      return "The server could not allocate memory for this upload.";
    default:
      return "";
  }
}

function retry(r, restarting, delayMs, reason) {
  const what = restarting ? "Server is restarting" : "Server busy";
  if (r.tries >= MAX_TRIES) {
    return failed(what + "; gave up after " + r.tries + " tries. Try again later.", reason);
  }
  progressBar.value = 0;
  figures.textContent = "";
  // The server's own delay, which it has jittered (+-20 %) so that clients
  // refused together do not come back together.
  const due = performance.now() + delayMs;
  const tick = () => {
    if (r !== run) return;
    const left = Math.ceil((due - performance.now()) / 1000);
    if (left <= 0) {
      clearInterval(r.timer);
      attempt(r);
      return;
    }
    say(what + ", retrying in " + left + " s", "", (reason ? reason + " " : "") + "Try " +
        r.tries + " of " + MAX_TRIES + ".");
  };
  tick();
  r.timer = setInterval(tick, 200);
}

function finished(r) {
  const server = String(r.done.sha256 || "").toLowerCase();
  serverHash.textContent = server;
  pageHash.textContent = r.pageHash || "";
  progressBar.value = 100;
  const match = server !== "" && server === r.pageHash;
  say(match ? "Done: the server stored " + r.file.name + ", and its SHA-256 matches this page's."
            : "Stored, but the SHA-256 differs from this page's: the file changed on the way.",
      match ? "good" : "bad",
      bytesInWords(r.done.bytes) + " in " + secondsInWords(r.seconds || 0) +
      (r.tries > 1 ? ", on try " + r.tries + " of " + MAX_TRIES : "") + ".");
  run = null;
  idle();
}

function failed(text, more = "") {
  run = null;
  progressBar.value = 0;
  say(text, "bad", more);
  idle();
}
</script>
</body>
</html>
)page";

}  // namespace

std::string_view upload_page() { return page; }

}  // namespace upload_server
