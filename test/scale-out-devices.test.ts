import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ApiEvents, SweepRequest } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { differences } from './scale-out-compare.ts';

// Several devices in one box (issue 18): one shard per device in its own child process, merged
// as they go. CPU devices stand in for GPUs here: `cpu,cpu` must equal the single-process run.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-out-devices-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const cacheRoot = path.join(tmp, 'graphs');
const env = { ...process.env, LOGITSCOPE_CACHE_DIR: cacheRoot };
const run = promisify(execFile);
const LIMIT = 24;

const REQUEST: SweepRequest = {
  files: [data],
  preset: 'logitscope',
  overrides: { limit: LIMIT },
  techniques: [{ id: 'logit_lens' }, { id: 'patchscope' }, { id: 'logitscope' }],
  layers: null,
  k: 3,
  batchSize: 2, // many small batches, so a shard can be killed halfway; the same as the reference run's
};

/** An export record less what names the particular run (its id, times and timings). */
function comparable(file: string): Record<string, unknown> {
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const { id, created_at, updated_at, timings, ...rest } = json.run;
  return { ...json, run: rest };
}

async function exportOf(lab: Lab, runId: string, name: string): Promise<Record<string, unknown>> {
  const out = path.join(tmp, `${name}.json`);
  await lab.call('runs.export', { runId, format: 'json', out });
  return comparable(out);
}

const cli = [path.resolve('bin/logitscope.js'), 'sweep', '--model', model, '--data', data, '--preset', 'logitscope', '--limit', String(LIMIT), '--top-k', '3', '--batch-size', '2'];
let single: Record<string, unknown>;

beforeAll(async () => {
  writeTinyGptj({ dir: model, format: 'safetensors', seed: 44 });
  const words = 'anchor bramble cinder dapple ember fjord gossamer hollow'.split(' ');
  fs.writeFileSync(data, Array.from({ length: 60 }, (_, i) => JSON.stringify({ text: Array.from({ length: 3 + (i % 8) }, (_, j) => words[(i * 5 + j * 3) % words.length]).join(' ') })).join('\n'));
  await run(process.execPath, [...cli, '--db', path.join(tmp, 'single.sqlite'), '--json', path.join(tmp, 'single.json')], { env });
  single = comparable(path.join(tmp, 'single.json'));
}, 120_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The pids of this process's children whose command line mentions the shard worker. */
function shardChildren(): { pid: number; args: string }[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes('shard-worker')).map((l) => ({ pid: Number(l.trim().split(/\s+/)[0]), args: l }));
}

/** Shard `index` of 2's database, in the folder beside `db`, once it exists. */
function shardFile(db: string, index: number): string | undefined {
  const dir = fs.readdirSync(path.dirname(db)).find((f) => f.startsWith(`${path.basename(db)}.shards-`));
  const file = dir && path.join(path.dirname(db), dir, `shard-${index}-of-2.db`);
  return file && fs.existsSync(file) ? file : undefined;
}

/** The pid of shard 1's process that LOGITSCOPE_TEST_HOLD stopped (src-main/sweep/test-hold.ts), once it holds. */
function heldShard(db: string): number | undefined {
  const file = shardFile(db, 1);
  const pid = file && fs.existsSync(`${file}.held`) ? Number(fs.readFileSync(`${file}.held`, 'utf8')) : 0;
  return pid > 0 ? pid : undefined; // 0 also while the marker is being written
}

/** How many examples shard `index` of 2 has stored in its run. */
function shardExamplesDone(db: string, index: number): number {
  const store = ResultStore.open(shardFile(db, index)!, { readonly: true });
  try {
    return store.listRuns()[0].examplesDone;
  } finally {
    store.close();
  }
}

describe('sweep --devices', () => {
  test('cpu,cpu from the command line equals the single-process run, with one progress stream', async () => {
    const db = path.join(tmp, 'devices.sqlite');
    // From another working directory: the shard processes must find the app's loader by its own location.
    const { stderr } = await run(process.execPath, [...cli, '--devices', 'cpu,cpu', '--db', db, '--json', path.join(tmp, 'devices.json')], { env, cwd: tmp });
    expect(differences(comparable(path.join(tmp, 'devices.json')), single)).toEqual([]);
    expect(stderr).toMatch(new RegExp(`^${LIMIT}/${LIMIT} examples`, 'm'));
    expect(stderr).not.toMatch(/shard 0\/2/); // the merged run is one run, not a shard
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('devices.sqlite.shards-'))).toEqual([]); // merged, so the shard files are gone
  }, 120_000);

  test('Ctrl-C cancels every shard: exit 130, the run is cancelled with what was merged, and no shard process is left', async () => {
    const db = path.join(tmp, 'interrupted.sqlite');
    // Shard 1 holds after its first batch (LOGITSCOPE_TEST_HOLD), so the signal lands in the middle of the run however fast it computes.
    const child = spawn(process.execPath, [...cli, '--devices', 'cpu,cpu', '--db', db], { env: { ...env, LOGITSCOPE_TEST_HOLD: '1@shard1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await expect.poll(() => heldShard(db), { timeout: 60_000 }).toBeDefined();
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/cancelled in /);
    const workers = execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('shard-worker') && l.includes(db));
    expect(workers).toEqual([]);
    const lab = await Lab.open({ dbPath: db, readonly: true });
    try {
      const [r] = await lab.call('runs.list', {});
      expect(r.status).toBe('cancelled');
      expect(r.examplesDone).toBeLessThan(LIMIT);
    } finally {
      await lab.close();
    }
  }, 120_000);

  test('a bad fixed target layer is refused before any shard process starts (each would load the model first)', async () => {
    const db = path.join(tmp, 'target.sqlite');
    const lab = await Lab.open({ dbPath: db, cacheRoot });
    try {
      const techniques = [{ id: 'logit_lens' as const }, { id: 'custom' as const, prompt: 'x ->', targetLayer: { kind: 'fixed' as const, layer: 7 } }];
      const reply = await lab.dispatch('sweep.start', { ...REQUEST, techniques, devices: ['cpu', 'cpu'], modelDir: model });
      expect(reply).toMatchObject({ ok: false, error: { code: 'layer_out_of_range', path: 'techniques.1.targetLayer.layer' } });
      // The shards' folder is made before the first child starts: none means none started.
      expect(fs.readdirSync(tmp).filter((f) => f.startsWith('target.sqlite.shards-'))).toEqual([]);
      expect(shardChildren()).toEqual([]);
      expect(await lab.call('runs.list', {})).toEqual([]);
    } finally {
      await lab.close();
    }
  });

  test('bad devices are refused before any process starts', async () => {
    const lab = await Lab.open({ dbPath: path.join(tmp, 'refused.sqlite'), cacheRoot });
    try {
      const mixed = await lab.dispatch('sweep.start', { ...REQUEST, devices: ['cpu', 'cuda:1'], modelDir: model });
      expect(mixed).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'devices' } });
      const odd = await lab.dispatch('sweep.start', { ...REQUEST, devices: ['gpu0'], modelDir: model });
      expect(odd).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'devices.0' } });
      const both = await lab.dispatch('sweep.start', { ...REQUEST, devices: ['cpu'], shard: { index: 0, count: 2 }, modelDir: model });
      expect(both).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'shard' } });
      const deep = await lab.dispatch('sweep.start', { ...REQUEST, layers: [0, 9], devices: ['cpu', 'cpu'], modelDir: model });
      expect(deep).toMatchObject({ ok: false, error: { code: 'layer_out_of_range' } });
      expect(shardChildren()).toEqual([]);
      const never = path.join(tmp, 'never.sqlite');
      const cliErr = await run(process.execPath, [...cli, '--devices', 'cpu,cpu', '--allow-cpu-fallback', '--db', never], { env }).catch((e: { code: number; stderr: string }) => e);
      expect(cliErr).toMatchObject({ code: 2, stderr: expect.stringMatching(/\[argument_invalid\] --devices: .*drop --allow-cpu-fallback/) });
      expect(fs.existsSync(never)).toBe(false);
    } finally {
      await lab.close();
    }
  });

  test('a shard whose process is killed is started again and the run still equals the single-process one', async () => {
    const lab = await Lab.open({ dbPath: path.join(tmp, 'killed-once.sqlite'), cacheRoot });
    try {
      const events: ApiEvents['sweep.progress'][] = [];
      const finished: unknown[] = [];
      lab.onEvent((name, p) => (name === 'sweep.progress' ? events.push(p as ApiEvents['sweep.progress']) : name === 'sweep.finished' && finished.push(p)));
      // Shard 1 holds once 2 of its 12 examples are stored (its run exists by then), so it is killed mid-run, and its retry resumes that run.
      process.env.LOGITSCOPE_TEST_HOLD = '2@shard1';
      const start = lab.call('sweep.start', { ...REQUEST, devices: ['cpu', 'cpu'], modelDir: model });
      let victim: number | undefined;
      await expect.poll(() => (victim = heldShard(path.join(tmp, 'killed-once.sqlite'))), { timeout: 60_000 }).toBeDefined();
      process.kill(victim!, 'SIGKILL');
      delete process.env.LOGITSCOPE_TEST_HOLD; // before the retry starts: the kill is noticed on a later turn of the event loop
      expect(shardExamplesDone(path.join(tmp, 'killed-once.sqlite'), 1)).toBe(2);
      const { runId } = await start;
      await lab.settled(runId);
      const done = await lab.call('runs.get', { runId });
      expect(done, JSON.stringify(finished)).toMatchObject({ status: 'completed', examplesDone: LIMIT, error: null });
      expect(differences(await exportOf(lab, runId, 'killed-once'), single)).toEqual([]);
      expect(events.length).toBeGreaterThan(0);
      expect(events.every((e) => e.runId === runId && e.progress.examplesTotal === LIMIT)).toBe(true);
      expect(events.at(-1)!.progress.examplesDone).toBe(LIMIT);
    } finally {
      await lab.close();
    }
  }, 120_000);

  test('a shard killed after creating its run but before storing its slice or telling the parent is resumed, not started twice', async () => {
    const db = path.join(tmp, 'killed-at-creation.sqlite');
    const lab = await Lab.open({ dbPath: db, cacheRoot });
    try {
      // Shard 1 holds with its run created and its slice not yet stored, before the run is announced: its parent never hears of it.
      process.env.LOGITSCOPE_TEST_HOLD = 'run@shard1';
      const start = lab.call('sweep.start', { ...REQUEST, devices: ['cpu', 'cpu'], modelDir: model });
      let victim: number | undefined;
      await expect.poll(() => (victim = heldShard(db)), { timeout: 60_000 }).toBeDefined();
      process.kill(victim!, 'SIGKILL');
      delete process.env.LOGITSCOPE_TEST_HOLD;
      const { runId } = await start;
      await lab.settled(runId);
      const done = await lab.call('runs.get', { runId });
      expect(done).toMatchObject({ status: 'completed', examplesDone: LIMIT, error: null });
      expect(differences(await exportOf(lab, runId, 'killed-at-creation'), single)).toEqual([]);
    } finally {
      await lab.close();
    }
  }, 120_000);

  test('a shard that dies twice leaves the run failed with its missing ordinals, and resuming it finishes the run', async () => {
    const lab = await Lab.open({ dbPath: path.join(tmp, 'killed-twice.sqlite'), cacheRoot });
    try {
      // Every process of shard 1 holds before its first batch: its first one and its retry are each killed there, having computed nothing.
      process.env.LOGITSCOPE_TEST_HOLD = '0@shard1';
      const start = lab.call('sweep.start', { ...REQUEST, devices: ['cpu', 'cpu'], modelDir: model });
      const killed = new Set<number>();
      try {
        while (killed.size < 2) {
          let held: number | undefined;
          await expect.poll(() => (held = heldShard(path.join(tmp, 'killed-twice.sqlite'))), { timeout: 60_000 }).toSatisfy((pid) => pid !== undefined && !killed.has(pid as number));
          process.kill(held!, 'SIGKILL');
          killed.add(held!);
        }
      } finally {
        delete process.env.LOGITSCOPE_TEST_HOLD;
      }
      expect(killed.size, 'both processes of shard 1 were seen and killed').toBe(2);
      const { runId } = await start;
      await lab.settled(runId);
      const failed = await lab.call('runs.get', { runId });
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatchObject({ code: 'shards_incomplete', message: expect.stringMatching(/of shard 1\/2\); .*the shard on cpu failed twice/) });
      expect(failed.examplesDone).toBe(LIMIT / 2); // shard 0 finished; shard 1 never started
      await lab.call('model.load', { dir: model });
      await lab.call('sweep.resume', { runId });
      await lab.settled(runId);
      expect(differences(await exportOf(lab, runId, 'killed-twice'), single)).toEqual([]);
    } finally {
      await lab.close();
    }
  }, 120_000);
});
