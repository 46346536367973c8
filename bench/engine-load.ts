/**
 * Load time and host memory for GPT-J-width checkpoints (d_model 4096, 16 heads, rotary_dim 64,
 * 50400 vocab, random weights) at a few depths. Each load runs in a fresh child process and reports
 * its peak RSS split into anonymous memory (copies the process made) and file-backed pages (the
 * memory-mapped weight files, which the kernel can drop and re-read).
 *
 * With a --compute dtype other than the checkpoint's, the weights are converted on the first load
 * (onnxruntime Cast, convert.ts) and the conversion rate is printed in MB/s of checkpoint bytes.
 *
 *   npx tsx bench/engine-load.ts [--layers 1,2,4] [--dtype F32|F16|BF16] [--compute float32|float16] [--dir /tmp/gptj-width] [--no-pass]
 *
 * --no-pass skips the first source pass (minutes per layer for float16 compute on a CPU), for
 * measuring loading and conversion alone.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../src-main/engine/engine.ts';
import { writeGptjShaped } from './gptj-shaped.ts';

function memory(): Record<string, number> {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024 ** 2;
  return { peakRssGB: kb('VmHWM'), rssGB: kb('VmRSS'), anonGB: kb('RssAnon'), fileGB: kb('RssFile') };
}

async function child(dir: string, cacheRoot: string, dtype: 'float32' | 'float16', pass: boolean): Promise<void> {
  const t0 = performance.now();
  const engine = await Engine.load({ modelDir: dir, cacheRoot, dtype });
  const loadSeconds = (performance.now() - t0) / 1000;
  const afterLoad = memory();
  const tokens = Array.from({ length: 64 }, (_, i) => 100 + i);
  const t1 = performance.now();
  if (pass) await engine.sourcePass([{ tokens, position: 63 }]);
  const passSeconds = (performance.now() - t1) / 1000;
  const afterPass = memory();
  await engine.dispose();
  console.log(JSON.stringify({ loadSeconds, passSeconds, timings: engine.info.timings, converted: engine.info.converted, afterLoad, afterPass }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      cache: { type: 'string' },
      layers: { type: 'string', default: '1,2,4' },
      dtype: { type: 'string', default: 'F32' },
      compute: { type: 'string', default: 'float32' },
      dir: { type: 'string', default: path.join(os.tmpdir(), 'gptj-width') },
      'no-pass': { type: 'boolean', default: false },
    },
  });
  const compute = values.compute as 'float32' | 'float16';
  if (values.child) return child(values.child, values.cache!, compute, !values['no-pass']);
  const dtype = values.dtype as 'F32' | 'F16' | 'BF16';
  console.log(`GPT-J width (d_model 4096, 16 heads, d_mlp 16384, vocab 50400), ${dtype} safetensors computed in ${compute}, CPU execution provider, ${os.cpus().length} cores`);
  console.log('layers  weights GB  load s  1st pass s  peak RSS GB  anon GB  file-backed GB  converted  conversion MB/s');
  const rows: { layers: number; anon: number }[] = [];
  for (const nLayers of values.layers.split(',').map(Number)) {
    const dir = path.join(values.dir, `L${nLayers}-${dtype}`);
    const cache = path.join(values.dir, `cache-L${nLayers}-${dtype}`);
    fs.rmSync(cache, { recursive: true, force: true });
    writeGptjShaped({ dir, nLayers, dModel: 4096, nHeads: 16, rotaryDim: 64, dtype });
    const weightsGB = fs.statSync(path.join(dir, 'model.safetensors')).size / 1024 ** 3;
    const out = execFileSync(process.execPath, ['--import', 'tsx', path.resolve('bench/engine-load.ts'), '--child', dir, '--cache', cache, '--compute', compute, ...(values['no-pass'] ? ['--no-pass'] : [])], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    const m = r.afterPass;
    console.log(
      `${String(nLayers).padStart(6)}  ${weightsGB.toFixed(2).padStart(10)}  ${r.loadSeconds.toFixed(1).padStart(6)}  ${(values['no-pass'] ? '—' : r.passSeconds.toFixed(2)).padStart(10)}  ` +
        `${m.peakRssGB.toFixed(2).padStart(11)}  ${m.anonGB.toFixed(2).padStart(7)}  ${m.fileGB.toFixed(2).padStart(14)}  ${String(r.converted).padStart(9)}  ` +
        // The graphs stage is the conversion plus building the graphs (milliseconds): the rate is of checkpoint bytes read.
        `${r.converted ? ((weightsGB * 1024) / (r.timings.graphs / 1000)).toFixed(0).padStart(15) : '—'.padStart(15)}`,
    );
    rows.push({ layers: nLayers, anon: m.anonGB });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  }
  if (rows.length > 1) {
    const [a, b] = [rows[0], rows[rows.length - 1]];
    console.log(`anonymous RSS per layer: ${(((b.anon - a.anon) / (b.layers - a.layers)) * 1024).toFixed(0)} MB (one layer's fp32 weights are 805 MB)`);
  }
}

await main();
