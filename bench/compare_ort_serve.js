// ONNX Runtime side of `resnet bench --mode serve` in bench/compare.sh: N clients each sending
// batch-1 requests one after another, all at once, measured as resnet.cpp measures them
// (throughput = samples / wall time from the common start to the last answer; latency per
// request, p50/p90/p99 by nearest rank, mean, max). Prints one JSON line.
//
// onnxruntime-node runs InferenceSession.run synchronously on the JavaScript thread that calls
// it, so concurrent run() calls on one session from one thread would run one after another. Each
// client is therefore a worker thread with a session of its own (the same file, intra-op threads
// max(1, threads / clients), one inter-op thread): ORT's concurrent runs without any sharing,
// which is as fast as ORT gets here (a shared session would only add its own synchronisation).
//
// Usage: node bench/compare_ort_serve.js MODEL.onnx --clients 2 --size 64 --threads 2
//        --steps 100 [--warmup 2] [--batch 1]
'use strict';
const path = require('path');
const fs = require('fs');
const {Worker, isMainThread, parentPort, workerData} = require('worker_threads');

const root = path.resolve(__dirname, '..');
const ortPath = path.join(root, '.deps/ort/node_modules/onnxruntime-node');

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

function percentile(sorted, p) {
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

async function client() {
  const ort = require(ortPath);
  const {file, batch, size, intra, steps, warmup, flag, seed} = workerData;
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: intra,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const data = new Float32Array(batch * 3 * size * size);
  let s = seed + 1;
  for (let i = 0; i < data.length; ++i) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = s / 2147483648;
  }
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, [batch, 3, size, size])};
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const go = new Int32Array(flag);
  parentPort.postMessage({ready: true});
  Atomics.wait(go, 0, 0);
  const lat = [];
  for (let i = 0; i < steps; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    lat.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  parentPort.postMessage({latencies: lat, finished: process.hrtime.bigint().toString()});
}

async function main() {
  const file = process.argv[2];
  if (!file || !fs.existsSync(file)) {
    console.error('compare_ort_serve.js: no such ONNX file: ' + file);
    process.exit(2);
  }
  const clients = Number(arg('clients', 1));
  const batch = Number(arg('batch', 1));
  const size = Number(arg('size', 64));
  const threads = Number(arg('threads', 2));
  const steps = Number(arg('steps', 100));
  const warmup = Number(arg('warmup', 2));
  const intra = Math.max(1, Math.floor(threads / clients));
  const flag = new SharedArrayBuffer(4);
  const workers = [];
  const ready = [];
  const done = [];
  for (let c = 0; c < clients; ++c) {
    const w = new Worker(__filename,
        {workerData: {file, batch, size, intra, steps, warmup, flag, seed: c}});
    let onReady;
    let onDone;
    ready.push(new Promise((r) => (onReady = r)));
    done.push(new Promise((r) => (onDone = r)));
    w.on('message', (m) => (m.ready ? onReady() : onDone(m)));
    w.on('error', (e) => {
      console.error('compare_ort_serve.js: client ' + c + ': ' + e.message);
      process.exit(1);
    });
    workers.push(w);
  }
  await Promise.all(ready);
  const start = process.hrtime.bigint();
  Atomics.store(new Int32Array(flag), 0, 1);
  Atomics.notify(new Int32Array(flag), 0);
  const results = await Promise.all(done);
  let end = start;
  const all = [];
  for (const r of results) {
    const f = BigInt(r.finished);
    if (f > end) end = f;
    all.push(...r.latencies);
  }
  const wall = Number(end - start) / 1e9;
  all.sort((a, b) => a - b);
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  console.log(JSON.stringify({
    framework: 'onnxruntime-node ' + require(path.join(ortPath, 'package.json')).version,
    mode: 'serve', clients, batch, size, threads, intra_op_threads: intra,
    sessions: clients,
    img_per_s: (all.length * batch) / wall,
    requests_per_s: all.length / wall,
    latency_ms_p50: percentile(all, 50) * 1e3,
    latency_ms_p90: percentile(all, 90) * 1e3,
    latency_ms_p99: percentile(all, 99) * 1e3,
    latency_ms_mean: mean * 1e3,
    latency_ms_max: all[all.length - 1] * 1e3,
    p99_over_mean: percentile(all, 99) / mean,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024.0,
  }));
  for (const w of workers) w.terminate();
}

if (isMainThread) {
  main().catch((e) => {
    console.error('compare_ort_serve.js: ' + e.message);
    process.exit(1);
  });
} else {
  client().catch((e) => {
    throw e;
  });
}
