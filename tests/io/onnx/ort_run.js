// Runs an ONNX model with ONNX Runtime (onnxruntime-node) on one float32 input, for
// tests/io/onnx/test_onnx.cpp.
//
// Usage: node ort_run.js ORT_NODE_MODULE MODEL.onnx INPUT.bin N,C,H,W OUTPUT.bin
//   ORT_NODE_MODULE  the onnxruntime-node package folder (.deps/ort/node_modules/onnxruntime-node)
//   INPUT.bin        float32 little-endian, row-major, of the given dims
// Writes the first output's float32 data to OUTPUT.bin and prints one JSON line:
//   {"inputs": [...names], "outputs": [...names], "dims": [...output dims]}
'use strict';
const fs = require('fs');

async function main() {
  const [ortDir, model, inFile, dimsText, outFile] = process.argv.slice(2);
  if (!outFile) throw new Error('usage: node ort_run.js ORT_NODE_MODULE MODEL INPUT DIMS OUTPUT');
  const ort = require(ortDir);
  const dims = dimsText.split(',').map(Number);
  const buf = fs.readFileSync(inFile);
  const count = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== count * 4) {
    throw new Error(`${inFile}: ${buf.length} bytes for dims ${dimsText}`);
  }
  const data = new Float32Array(count);
  for (let i = 0; i < count; ++i) data[i] = buf.readFloatLE(4 * i);
  const session = await ort.InferenceSession.create(model, {graphOptimizationLevel: 'disabled'});
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, dims)};
  const results = await session.run(feeds);
  const out = results[session.outputNames[0]];
  const bytes = Buffer.alloc(out.data.length * 4);
  for (let i = 0; i < out.data.length; ++i) bytes.writeFloatLE(out.data[i], 4 * i);
  fs.writeFileSync(outFile, bytes);
  console.log(JSON.stringify({inputs: session.inputNames, outputs: session.outputNames,
                              dims: out.dims}));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
