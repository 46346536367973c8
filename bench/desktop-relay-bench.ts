/**
 * What the desktop's engine process costs: the time from spawn to the Lab answering, and a
 * request's round trip through the relay (main -> engine process over the Node IPC channel and
 * back) against the same request answered in process. `runs.list` over a database of 20 runs,
 * median of 100 each after a warm-up. Run with `npx tsx bench/desktop-relay-bench.ts`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lab } from '../src-main/api/lab.ts';
import { DEMO } from '../src-main/app-paths.ts';
import { EngineSupervisor } from '../src-main/desktop/engine-supervisor.ts';

const ROUNDS = 100;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-bench-'));
const dbPath = path.join(tmp, 'results.sqlite');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(call: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 10; i++) await call();
  const ms: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    await call();
    ms.push(performance.now() - t);
  }
  return ms;
}

// 20 small runs of the demo, so runs.list has rows to read and send.
const lab = await Lab.open({ dbPath, cacheRoot: path.join(tmp, 'cache') });
await lab.call('model.load', { dir: DEMO.modelDir });
for (let i = 0; i < 20; i++) {
  const { runId } = await lab.call('sweep.start', { files: [DEMO.dataFile], preset: 'logitscope', overrides: { limit: 2, poolStart: i * 50 }, techniques: [{ id: 'logit_lens' }], layers: [0], name: `run ${i}` });
  await lab.settled(runId);
}
const inProcess = await timed(() => lab.call('runs.list', {}));
await lab.close();

const starts: number[] = [];
let relay: number[] = [];
for (let i = 0; i < 3; i++) {
  const supervisor = new EngineSupervisor({ nodePath: process.execPath, dbPath, logFile: path.join(tmp, 'engine.log') });
  const state = await supervisor.start();
  starts.push(state.startSeconds!);
  if (i === 0) {
    relay = await timed(async () => {
      const reply = await supervisor.dispatch('runs.list', {});
      if (!reply.ok) throw new Error(reply.error.message);
    });
  }
  await supervisor.stop();
}

console.log(`spawn to engine ready (3 starts): ${starts.map((s) => `${s.toFixed(2)} s`).join(', ')}; median ${median(starts).toFixed(2)} s`);
console.log(`runs.list, 20 runs, median of ${ROUNDS}: in process ${median(inProcess).toFixed(3)} ms, through the relay ${median(relay).toFixed(3)} ms`);
console.log(`relay overhead per request: ${(median(relay) - median(inProcess)).toFixed(3)} ms (${(median(relay) / median(inProcess)).toFixed(2)}× in process)`);
fs.rmSync(tmp, { recursive: true, force: true });
