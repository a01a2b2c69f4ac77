// ONNX Runtime side of bench/compare.sh: inference speed of an ONNX model (NCHW float input
// named by the model) at one batch size and thread count. Prints one JSON line.
//
// Usage: node bench/compare_ort.js MODEL.onnx --batch 32 --size 64 --threads 2 --steps 10
//        [--warmup 2]  (onnxruntime-node from .deps/ort/node_modules, see scripts/setup.sh)
'use strict';
const path = require('path');
const fs = require('fs');

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

async function main() {
  const file = process.argv[2];
  if (!file || !fs.existsSync(file)) {
    console.error('compare_ort.js: no such ONNX file: ' + file);
    process.exit(2);
  }
  const root = path.resolve(__dirname, '..');
  const ort = require(path.join(root, '.deps/ort/node_modules/onnxruntime-node'));
  const batch = Number(arg('batch', 1));
  const size = Number(arg('size', 64));
  const threads = Number(arg('threads', 2));
  const steps = Number(arg('steps', 10));
  const warmup = Number(arg('warmup', 2));
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inputName = session.inputNames[0];
  const data = new Float32Array(batch * 3 * size * size);
  for (let i = 0; i < data.length; ++i) data[i] = Math.random();
  const feeds = {[inputName]: new ort.Tensor('float32', data, [batch, 3, size, size])};
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const times = [];
  for (let i = 0; i < steps; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  const n = times.length;
  const med = n % 2 ? times[(n - 1) / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  console.log(JSON.stringify({
    framework: 'onnxruntime-node ' + require(path.join(root,
        '.deps/ort/node_modules/onnxruntime-node/package.json')).version,
    batch, size, threads, img_per_s: batch / med, ms_per_step: med * 1e3,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024.0,
  }));
}

main().catch((e) => {
  console.error('compare_ort.js: ' + e.message);
  process.exit(1);
});
