/**
 * What a checkpoint's content identity costs: the first open of a GPT-J-width checkpoint hashes
 * every byte (GB/s), a reopen of the unchanged checkpoint is an index hit (ms), and what the first
 * open of GPT-J 6B would take. The checkpoint is written once (about 2.5 GB) and reused by later runs.
 *
 *   npx tsx bench/identity-hash.ts [--layers 1] [--dir /tmp/gptj-width-identity]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint } from '../src-main/engine/checkpoint.ts';
import { hashStats } from '../src-main/engine/identity.ts';
import { writeGptjShaped } from './gptj-shaped.ts';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '1' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'gptj-width-identity') },
  },
});
const nLayers = Number(values.layers);
const dir = path.join(values.dir, `L${nLayers}-F32`);
const weights = path.join(dir, 'model.safetensors');
if (!fs.existsSync(weights)) {
  const t = performance.now();
  writeGptjShaped({ dir, nLayers, dModel: 4096, nHeads: 16, rotaryDim: 64, dtype: 'F32' });
  console.log(`wrote ${dir} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}
// As a download finished a while ago: the index trusts no hash of a file modified moments before it.
const then = new Date(Date.now() - 3600_000);
for (const name of fs.readdirSync(dir)) fs.utimesSync(path.join(dir, name), then, then);

const GB = 1e9;
function timedOpen(cacheRoot: string) {
  const mark = { ...hashStats };
  const t = performance.now();
  const ckpt = openCheckpoint(dir, { cacheRoot });
  const seconds = (performance.now() - t) / 1000;
  return { identity: ckpt.identity, seconds, files: hashStats.files - mark.files, bytes: hashStats.bytes - mark.bytes };
}

console.log(`GPT-J width (d_model 4096, vocab 50400), ${nLayers} layer(s), fp32: ${(fs.statSync(weights).size / GB).toFixed(2)} GB of weights`);
console.log('The files were just written or read, so they are in the page cache: this is the hashing cost, not the disk.');
const rates: number[] = [];
for (let run = 1; run <= 2; run++) {
  // A fresh cache root each time, so every byte is hashed (the "first open").
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'identity-bench-'));
  try {
    const cold = timedOpen(root);
    rates.push(cold.bytes / GB / cold.seconds);
    const warm = timedOpen(root);
    if (warm.identity !== cold.identity) throw new Error('the reopened checkpoint has another identity');
    console.log(
      `first open ${run}: ${cold.files} files, ${(cold.bytes / GB).toFixed(2)} GB hashed in ${cold.seconds.toFixed(2)} s = ${rates[rates.length - 1].toFixed(2)} GB/s;` +
        ` reopen (index hit): ${warm.files} files hashed, ${(warm.seconds * 1000).toFixed(1)} ms`,
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
// The floor under any hash: reading the same bytes without hashing them.
const readStart = performance.now();
let readBytes = 0;
const chunk = Buffer.allocUnsafe(128 * 1024);
for (const name of fs.readdirSync(dir)) {
  const fd = fs.openSync(path.join(dir, name), 'r');
  for (;;) {
    const n = fs.readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    readBytes += n;
  }
  fs.closeSync(fd);
}
console.log(`reading the same files without hashing: ${(readBytes / GB / ((performance.now() - readStart) / 1000)).toFixed(2)} GB/s`);
const best = Math.max(...rates);
console.log(`GPT-J 6B first open at ${best.toFixed(2)} GB/s: float16 revision (12.1 GB) ${(12.1 / best).toFixed(1)} s, fp32 main (24.2 GB) ${(24.2 / best).toFixed(1)} s; later opens: the reopen above`);
