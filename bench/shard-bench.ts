/**
 * One CPU sweep three ways on the same slice, each into a fresh results database: one process;
 * 2 shards as 2 processes at once (`sweep --shard i/2`) followed by `runs merge`; and
 * `sweep --devices cpu,cpu` (the same 2 shards, merged as they go). Every process loads the model
 * itself, as on a cluster. Prints wall times and ratios from this one run.
 *
 *   npx tsx bench/shard-bench.ts [--layers 12] [--d-model 256] [--heads 4] [--examples 96] [--words 60]
 *
 * The ONNX graphs are built once before timing (a 1-example warm-up sweep), so no variant pays for them.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import { mergeShards } from '../src-main/scale/merge.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import { writeGptjShaped } from './gptj-shaped.ts';

const { values: o } = parseArgs({
  options: {
    layers: { type: 'string', default: '12' },
    'd-model': { type: 'string', default: '256' },
    heads: { type: 'string', default: '4' },
    examples: { type: 'string', default: '96' },
    words: { type: 'string', default: '60' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'shard-bench') },
  },
});
const nLayers = Number(o.layers);
const dModel = Number(o['d-model']);
const nHeads = Number(o.heads);
const count = Number(o.examples);

const WORDS = (
  'time year people way day man thing woman life child world school state family student group country problem hand part place case week ' +
  'company system program question work government number night point home water room mother area money story fact month lot right study'
).split(' ');

fs.mkdirSync(o.dir, { recursive: true });
const modelDir = path.join(o.dir, `model-L${nLayers}-d${dModel}`);
if (!fs.existsSync(path.join(modelDir, 'model.safetensors'))) {
  writeGptjShaped({ dir: modelDir, nLayers, dModel, nHeads, rotaryDim: Math.max(2, dModel / nHeads / 4), dtype: 'F32' });
}
const data = path.join(o.dir, 'data.jsonl');
const rand = mulberry32(11);
fs.writeFileSync(data, Array.from({ length: count }, () => JSON.stringify({ text: Array.from({ length: Number(o.words) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ') })).join('\n'));

const run = promisify(execFile);
const env = { ...process.env, LOGITSCOPE_CACHE_DIR: path.join(o.dir, 'graphs') };
const bin = path.join(import.meta.dirname, '..', 'bin', 'logitscope.js');
const sweep = ['sweep', '--model', modelDir, '--data', data, '--preset', 'logitscope', '--limit', String(count)];
let fresh = 0;
/** A results database that does not exist yet, so no variant reads another's cached rows. */
const freshDb = () => {
  const file = path.join(o.dir, `run-${process.pid}-${++fresh}.sqlite`);
  fs.rmSync(file, { force: true });
  return file;
};
const cli = (args: string[]) => run(process.execPath, [bin, ...args], { env, maxBuffer: 64 << 20 });
const timed = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
  const t = performance.now();
  const r = await fn();
  return [(performance.now() - t) / 1000, r];
};

await cli([...sweep, '--limit', '1', '--db', freshDb()]); // builds and caches the graphs

const singleDb = freshDb();
const [single] = await timed(() => cli([...sweep, '--db', singleDb]));

const shardDbs = [freshDb(), freshDb()];
const [sharded] = await timed(() => Promise.all(shardDbs.map((db, i) => cli([...sweep, '--shard', `${i}/2`, '--db', db]))));
const mergedDb = freshDb();
const [mergeCli] = await timed(() => cli(['runs', 'merge', ...shardDbs, '--into', mergedDb]));
// The merge alone, without a process start: into another fresh database, in this process.
const target = ResultStore.open(freshDb());
const [mergeOnly, report] = await timed(async () => mergeShards(target, { files: shardDbs }));
const cells = count * 3 * nLayers;
target.close();

const [devices] = await timed(() => cli([...sweep, '--devices', 'cpu,cpu', '--db', freshDb()]));

const computeSeconds = (db: string) => {
  const store = ResultStore.open(db, { readonly: true });
  try {
    return store.listRuns().map((r) => (store.getRun(r.id).timings.computeMs ?? 0) / 1000);
  } finally {
    store.close();
  }
};
const shardCompute = shardDbs.flatMap(computeSeconds);

const f = (s: number) => `${s.toFixed(2)} s`;
console.log(`GPT-J-shaped model: ${nLayers} layers, d_model ${dModel}; ${count} examples × 3 techniques × ${nLayers} layers; ${os.cpus().length} CPU cores`);
console.log(`1 process                          ${f(single)}   (compute inside it: ${computeSeconds(singleDb).map(f).join(', ')}; the rest is starting node, loading the model, reading the slice)`);
console.log(`2 shard processes at once          ${f(sharded)}   (compute inside each: ${shardCompute.map(f).join(', ')})`);
console.log(`  + runs merge (CLI process)       ${f(mergeCli)}`);
console.log(`  merge alone, in process          ${f(mergeOnly)}   (${report.copied} examples, ${cells} result rows)`);
console.log(`sweep --devices cpu,cpu            ${f(devices)}   (2 shards, merged as they go)`);
console.log(`ratios: 1 process / (2 shards + merge) = ${(single / (sharded + mergeCli)).toFixed(2)}×; 1 process / --devices cpu,cpu = ${(single / devices).toFixed(2)}×; merge / 1 process = ${((mergeOnly / single) * 100).toFixed(1)}%`);
