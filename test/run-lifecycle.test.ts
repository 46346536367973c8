import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exampleKey, techniqueKey } from '../src-main/store/keys.ts';
import { ResultStore, type StoreOpenOptions } from '../src-main/store/result-store.ts';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from '../src-main/store/schema.ts';
import type { LayerResultRow, NewRun, RunExampleInput } from '../src-main/store/types.ts';
import type { ResolvedTechnique } from '../src-main/protocol/techniques.ts';

// A run ends in a final state: one whose process died reads as interrupted, never 'running' forever.

const LENS: ResolvedTechnique = { id: 'logit_lens', kind: 'logit_lens' };
const RUN: NewRun = {
  model: { key: 'ckpt:float32:cpu', path: '/m', info: {} },
  files: ['/d.jsonl'],
  protocol: { preset: 'logitscope', poolStart: 0, poolEnd: 10, filter: {}, shuffleSeed: null, evalStart: 0, evalEnd: null, bos: true, positionSeed: 1 },
  techniques: [LENS], layers: [0, 1], k: 2, strategy: 'fast', codeVersion: 'test',
};
const example = (i: number): RunExampleInput => ({ ordinal: i, recordIndex: i, tokens: [50256, i, i + 1], position: 1 });
const rows = (e: RunExampleInput): LayerResultRow[] =>
  RUN.layers.map((layer) => ({
    exampleKey: exampleKey(e.tokens, e.position), techniqueKey: techniqueKey(LENS), layer, referenceTop1: 5, top1: 5,
    surprisal: 1, surprisalPaper: 1, topK: { ids: [5, 6], probs: [0.5, 0.25] }, kl: 0.5, rank: 0, entropy: 2,
  }));

let dir: string;
let file: string;
const opened: ResultStore[] = [];
const children: ChildProcess[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-lifecycle-'));
  file = path.join(dir, 'results.sqlite');
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const s of opened.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function open(opts?: StoreOpenOptions): ResultStore {
  const store = ResultStore.open(file, opts);
  opened.push(store);
  return store;
}

function codeOf(fn: () => unknown): { code?: string; message?: string } {
  try {
    fn();
  } catch (e) {
    return e as { code?: string; message?: string };
  }
  return {};
}

/** A process that creates two runs (each with 2 of its 4 examples saved), prints their ids, and computes on until killed. */
async function computingChild(): Promise<{ child: ChildProcess; ids: string[] }> {
  const script = path.join(dir, 'computing.ts');
  const url = (f: string) => JSON.stringify(pathToFileURL(path.resolve(f)).href);
  fs.writeFileSync(
    script,
    `import { ResultStore } from ${url('src-main/store/result-store.ts')};
     import { exampleKey, techniqueKey } from ${url('src-main/store/keys.ts')};
     const store = ResultStore.open(${JSON.stringify(file)}, { heartbeatMs: 50 });
     const run = ${JSON.stringify(RUN)};
     const examples = [0, 1, 2, 3].map((i) => ({ ordinal: i, recordIndex: i, tokens: [50256, i, i + 1], position: 1 }));
     const ids = [0, 1].map(() => {
       const id = store.createRun(run);
       store.setRunExamples(id, examples);
       store.saveBatch(id, examples.slice(0, 2).flatMap((e) => run.layers.map((layer) => ({
         exampleKey: exampleKey(e.tokens, e.position), techniqueKey: techniqueKey(run.techniques[0]), layer, referenceTop1: 5, top1: 5,
         surprisal: 1, surprisalPaper: 1, topK: { ids: [5, 6], probs: [0.5, 0.25] } }))));
       return id;
     });
     console.log('ready ' + ids.join(' '));
     setInterval(() => {}, 1000); // the heartbeat's timer is unref'd: this stands for the sweep's work`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const ids = await new Promise<string[]>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /ready (\S+) (\S+)\n/.exec(out);
      if (m) resolve([m[1], m[2]]);
    });
    child.on('exit', (code) => reject(new Error(`child exited (${code}) before it was ready: ${err}`)));
  });
  return { child, ids };
}

describe('a run whose process is gone', () => {
  it('reads as running while its process lives, and as interrupted once it is killed; it can then be resumed or deleted', async () => {
    const { child, ids } = await computingChild();
    const [resumed, dropped] = ids;
    const store = open();
    expect(store.getRun(resumed)).toMatchObject({ status: 'running', owner: { pid: child.pid, host: os.hostname() } });
    expect(store.isOwnedAndRunning(resumed)).toBe(false); // the child's, not this store's
    expect(codeOf(() => store.deleteRun(resumed))).toMatchObject({ code: 'run_busy', message: expect.stringMatching(/cancel it first/) });
    expect(codeOf(() => store.resumeRun(resumed))).toMatchObject({ code: 'run_busy' });

    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    const after = open();
    expect(after.getRun(resumed)).toMatchObject({ status: 'interrupted', examplesDone: 2 });
    expect(new Set(after.listRuns({ status: 'interrupted' }).map((r) => r.id))).toEqual(new Set(ids));
    expect(after.listRuns({ status: 'running' })).toEqual([]);

    after.resumeRun(resumed);
    expect(after.getRun(resumed)).toMatchObject({ status: 'running', owner: { pid: process.pid } });
    expect(after.isOwnedAndRunning(resumed)).toBe(true);
    expect(after.runExamples(resumed).filter((e) => !e.done).map((e) => e.ordinal)).toEqual([2, 3]);
    after.saveBatch(resumed, [2, 3].flatMap((i) => rows(example(i))));
    expect(codeOf(() => after.deleteRun(resumed))).toMatchObject({ code: 'run_busy', message: expect.stringMatching(/this process: cancel it first/) });
    after.finishRun(resumed, { status: 'completed' });
    expect(after.isOwnedAndRunning(resumed)).toBe(false);
    expect(after.getRun(resumed)).toMatchObject({ status: 'completed', examplesDone: 4 });

    after.deleteRun(dropped);
    after.deleteRun(resumed);
    expect(after.listRuns()).toEqual([]);
  }, 30_000);

  it('a run this process computes stays running past the timeout, and reads as interrupted once its store closes', async () => {
    const computing = open({ staleAfterMs: 1, heartbeatMs: 60_000 });
    const id = computing.createRun(RUN);
    await expect.poll(() => Date.now() - Date.parse(computing.getRun(id).owner!.heartbeatAt!), { timeout: 10_000 }).toBeGreaterThan(1); // past the timeout
    expect(computing.getRun(id).status).toBe('running');
    // Another store of this live process: the owner is alive and its heartbeat fresh by the default timeout.
    const reader = open();
    expect(reader.getRun(id).status).toBe('running');
    computing.close();
    expect(reader.getRun(id)).toMatchObject({ status: 'interrupted', owner: { pid: process.pid, heartbeatAt: null } });
  });

  it('the heartbeat advances while a run computes and stops when it finishes', async () => {
    const store = open({ heartbeatMs: 20 });
    const id = store.createRun(RUN);
    const beat = () => Date.parse(store.getRun(id).owner!.heartbeatAt!);
    const first = beat();
    await expect.poll(beat, { timeout: 10_000 }).toBeGreaterThan(first);
    // A second run keeps the store's heartbeat going: once it has beaten after the finish, the finished run has missed that beat.
    const other = store.createRun(RUN);
    store.finishRun(id, { status: 'cancelled' });
    const atEnd = beat();
    const otherBeat = () => Date.parse(store.getRun(other).owner!.heartbeatAt!);
    const created = otherBeat();
    await expect.poll(otherBeat, { timeout: 10_000 }).toBeGreaterThan(created);
    expect(beat()).toBe(atEnd);
  });

  it("a run of another host is judged by its heartbeat alone", () => {
    const store = open();
    const id = store.createRun(RUN);
    store.finishRun(id, { status: 'failed' });
    const raw = new Database(file);
    const setOwner = (heartbeatAt: number) =>
      raw.prepare(`UPDATE runs SET status = 'running', owner_pid = 1, owner_host = 'elsewhere', owner_token = 'x', heartbeat_at = ? WHERE id = ?`).run(heartbeatAt, id);
    setOwner(Date.now());
    expect(store.getRun(id).status).toBe('running');
    setOwner(Date.now() - 31_000);
    expect(store.getRun(id).status).toBe('interrupted');
    raw.close();
  });
});

describe('a database of schema version 1', () => {
  it('opens, migrates to the current version, and its runs left running read as interrupted and resume', () => {
    const raw = new Database(file);
    raw.exec(MIGRATIONS[0]);
    raw.pragma('user_version = 1');
    raw.pragma(`application_id = ${APPLICATION_ID}`);
    raw.prepare("INSERT INTO models (id, identity) VALUES (1, 'ckpt:float32:cpu')").run();
    raw.prepare(
      `INSERT INTO runs (id, status, created_at, updated_at, model_id, model_path, model_json, dataset_json, protocol_json, techniques_json, layers_json, k, strategy, code_version)
       VALUES ('old', 'running', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 1, '/m', '{}', '{"files":[]}', '{}', '[]', '[0]', 2, 'fast', 'v1')`,
    ).run();
    raw.close();

    const store = open();
    expect(store.getRun('old')).toMatchObject({ status: 'interrupted', owner: null });
    store.resumeRun('old');
    expect(store.getRun('old')).toMatchObject({ status: 'running', owner: { pid: process.pid } });
    store.finishRun('old', { status: 'cancelled' });
    store.close();
    const check = new Database(file, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    check.close();
  });
});
