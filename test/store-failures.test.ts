import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResolvedTechnique } from '../src-main/protocol/techniques.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import type { LayerResultRow, NewRun, RunExampleInput } from '../src-main/store/types.ts';
import { exampleKey, techniqueKey } from '../src-main/store/keys.ts';

// Damaged, foreign, newer, locked, read-only and full databases: each must end in a coded error
// and leave what was stored before readable.

const LENS: ResolvedTechnique = { id: 'logit_lens', kind: 'logit_lens' };
const LAYERS = Array.from({ length: 28 }, (_, l) => l);
const RUN: NewRun = {
  model: { key: 'ckpt:float32:cpu', path: '/m', info: {} },
  files: ['/d.jsonl'],
  protocol: { preset: 'logitscope', poolStart: 0, poolEnd: 10, filter: {}, shuffleSeed: null, evalStart: 0, evalEnd: null, bos: true, positionSeed: 1 },
  techniques: [LENS], layers: LAYERS, k: 10, strategy: 'fast', codeVersion: 'test',
};

const example = (i: number): RunExampleInput => ({ ordinal: i, recordIndex: i, tokens: [50256, i, i + 1, i + 2], position: 2 });

function rows(e: RunExampleInput): LayerResultRow[] {
  return LAYERS.map((layer) => ({
    exampleKey: exampleKey(e.tokens, e.position), techniqueKey: techniqueKey(LENS), layer, referenceTop1: 5, top1: layer % 7,
    surprisal: layer / 3, surprisalPaper: layer / 5, topK: { ids: Array.from({ length: 10 }, (_, j) => j + layer), probs: Array(10).fill(0.05) }, kl: layer / 7, rank: layer, entropy: layer / 2,
  }));
}

/** A store with one run of `n` examples, all saved (one batch per example). */
function filled(file: string, n: number, opts?: Parameters<typeof ResultStore.open>[1]): { store: ResultStore; id: string } {
  const store = ResultStore.open(file, opts);
  const id = store.createRun(RUN);
  store.setRunExamples(id, Array.from({ length: n }, (_, i) => example(i)));
  for (let i = 0; i < n; i++) store.saveBatch(id, rows(example(i)));
  return { store, id };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

const canMount = process.platform === 'linux' && process.getuid?.() === 0 && (() => {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe]);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
})();

let dir: string;
let file: string;
const children: ChildProcess[] = [];
const mounts: string[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-fail-'));
  file = path.join(dir, 'results.sqlite');
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const m of mounts.splice(0)) execFileSync('umount', [m]);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Starts `node` with args and waits until it prints `ready` on stdout. */
async function child(args: string[], ready: string): Promise<ChildProcess & { output: () => string }> {
  const c = spawn(process.execPath, args, { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(c);
  let out = '';
  let err = '';
  c.stderr!.on('data', (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    c.stdout!.on('data', (d) => {
      out += d;
      if (out.includes(ready)) resolve();
    });
    c.on('exit', (code) => reject(new Error(`child exited (${code}) before "${ready}": ${err}`)));
  });
  return Object.assign(c, { output: () => out });
}

describe('a damaged, foreign or newer database file', () => {
  it('a database from a newer schema is refused with cache_schema_newer and left byte for byte as it was', () => {
    filled(file, 2).store.close();
    const raw = new Database(file);
    raw.pragma('user_version = 99');
    raw.close();
    const before = fs.readFileSync(file);
    expect(codeOf(() => ResultStore.open(file))).toBe('cache_schema_newer');
    expect(codeOf(() => ResultStore.open(file, { readonly: true }))).toBe('cache_schema_newer');
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('a file of random bytes is refused with cache_corrupt and not modified', () => {
    const noise = Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 2654435761) >>> 24));
    fs.writeFileSync(file, noise);
    expect(codeOf(() => ResultStore.open(file))).toBe('cache_corrupt');
    expect(fs.readFileSync(file).equals(noise)).toBe(true);
  });

  it('a truncated database is refused with cache_corrupt, never a crash', () => {
    filled(file, 20).store.close();
    const whole = fs.readFileSync(file);
    for (const size of [Math.floor(whole.length / 2), 4096 + 100, 50]) {
      fs.writeFileSync(file, whole.subarray(0, size));
      expect(codeOf(() => ResultStore.open(file)), `truncated to ${size} bytes`).toBe('cache_corrupt');
    }
  });

  it("another application's SQLite database is refused with cache_corrupt and gets no tables added", () => {
    const raw = new Database(file);
    raw.exec('CREATE TABLE contacts (name TEXT)');
    raw.close();
    expect(codeOf(() => ResultStore.open(file))).toBe('cache_corrupt');
    const check = new Database(file, { readonly: true });
    expect(check.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all()).toEqual([{ name: 'contacts' }]);
    check.close();
  });
});

describe('a database another process holds', () => {
  it('a write while another process holds the write lock fails with cache_locked after the busy timeout, and succeeds once it lets go', async () => {
    const { store, id } = filled(file, 1, { busyTimeoutMs: 300 });
    store.setRunExamples(id, [example(0), example(1)]);
    const holder = await child(
      ['-e', `const db = require('better-sqlite3')(${JSON.stringify(file)}); db.exec('BEGIN EXCLUSIVE'); console.log('locked'); process.stdin.on('data', () => { db.exec('COMMIT'); db.close(); process.exit(0); });`],
      'locked',
    );
    const started = Date.now();
    expect(codeOf(() => store.saveBatch(id, rows(example(1))))).toBe('cache_locked');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(store.runResults(id)).toHaveLength(1); // readers are not blocked in WAL mode
    holder.stdin!.write('go\n');
    await new Promise((resolve) => holder.on('exit', resolve));
    store.saveBatch(id, rows(example(1)));
    expect(store.getRun(id).examplesDone).toBe(2);
    store.close();
  }, 20_000);

  it('a sweep killed with SIGKILL mid-write and resumed each time loses at most the batch in flight', async () => {
    const { store: setup, id } = filled(file, 0);
    setup.setRunExamples(id, Array.from({ length: 4000 }, (_, i) => example(i)));
    setup.close();
    // The writer resumes the run like a sweep: the examples not done, in batches of 8.
    const script = path.join(dir, 'writer.ts');
    const url = (f: string) => JSON.stringify(pathToFileURL(path.resolve(f)).href);
    fs.writeFileSync(
      script,
      `import { ResultStore } from ${url('src-main/store/result-store.ts')};
       import { exampleKey, techniqueKey } from ${url('src-main/store/keys.ts')};
       const store = ResultStore.open(${JSON.stringify(file)});
       const id = ${JSON.stringify(id)};
       store.resumeRun(id);
       const todo = store.runExamples(id).filter((e) => !e.done);
       for (let b = 0; b < todo.length; b += 8) {
         store.saveBatch(id, todo.slice(b, b + 8).flatMap((e) => ${JSON.stringify(LAYERS)}.map((layer) => ({
           exampleKey: exampleKey(e.tokens, e.position), techniqueKey: techniqueKey({ id: 'logit_lens', kind: 'logit_lens' }), layer,
           referenceTop1: 1, top1: 1, surprisal: 0.5, surprisalPaper: 0.25, topK: { ids: Array(10).fill(3), probs: Array(10).fill(0.1) } }))));
         console.log('saved ' + todo[Math.min(b + 8, todo.length) - 1].ordinal);
       }`,
    );
    // Killed as soon as it has reported 1, then 3, then 9 batches: wherever in the next batch's transaction it then is.
    for (const batches of [1, 3, 9]) {
      const writer = await child(['--import', 'tsx', script], 'saved ');
      await new Promise<void>((resolve) => {
        const reported = () => (writer.output().match(/saved /g) ?? []).length >= batches && resolve();
        reported();
        writer.stdout!.on('data', reported);
      });
      writer.kill('SIGKILL');
      await new Promise((resolve) => writer.on('exit', resolve));
      const lastReported = Math.max(...[...writer.output().matchAll(/saved (\d+)/g)].map((m) => Number(m[1])));
      const store = ResultStore.open(file); // runs quick_check
      const { examplesDone: done, status } = store.getRun(id);
      expect(status).toBe('interrupted'); // the writer's process is gone
      const stored = store.runResults(id);
      store.close();
      expect(done).toBeGreaterThan(lastReported); // ordinals count from 0
      expect(done % 8).toBe(0); // whole batches only
      expect(stored).toHaveLength(done); // no example with part of its rows
      expect(stored.every((e) => e.layers.length === 28)).toBe(true);
    }
  }, 60_000);
});

describe('a read-only location', () => {
  it('a store opened read-only reads the runs and refuses writes with cache_readonly, leaving the file as it was', () => {
    filled(file, 3).store.close();
    const before = fs.readFileSync(file);
    const store = ResultStore.open(file, { readonly: true });
    const [run] = store.listRuns();
    expect(store.runResults(run.id)).toHaveLength(3);
    expect(codeOf(() => store.createRun(RUN))).toBe('cache_readonly');
    expect(codeOf(() => store.deleteRun(run.id))).toBe('cache_readonly');
    store.close();
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('a database whose folder cannot be created fails with cache_readonly', () => {
    fs.writeFileSync(path.join(dir, 'a-file'), '');
    expect(codeOf(() => ResultStore.open(path.join(dir, 'a-file', 'sub', 'results.sqlite')))).toBe('cache_readonly');
  });

  it('opening a missing database read-only fails with cache_missing and creates nothing', () => {
    expect(codeOf(() => ResultStore.open(file, { readonly: true }))).toBe('cache_missing');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it.skipIf(!canMount)('a database on a read-only file system fails with cache_readonly (needs root to mount a tmpfs)', () => {
    const mnt = path.join(dir, 'ro');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
    mounts.push(mnt);
    filled(path.join(mnt, 'results.sqlite'), 2).store.close();
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    expect(codeOf(() => ResultStore.open(path.join(mnt, 'results.sqlite')))).toBe('cache_readonly');
    expect(codeOf(() => ResultStore.open(path.join(mnt, 'new', 'results.sqlite')))).toBe('cache_readonly');
  });
});

describe('a full disk', () => {
  /** Saves one example per batch until the store reports a full disk; returns how many were saved. */
  function fillUp(store: ResultStore, id: string): number {
    store.setRunExamples(id, Array.from({ length: 1000 }, (_, i) => example(i)));
    for (let i = 0; i < 1000; i++) {
      const code = codeOf(() => store.saveBatch(id, rows(example(i))));
      if (code) {
        expect(code).toBe('cache_full');
        return i;
      }
    }
    throw new Error('the disk never filled up');
  }

  it('a database that reaches its size cap fails with cache_full and keeps every batch saved before', () => {
    const { store, id } = filled(file, 1);
    const cap = fs.statSync(file).size + 800 * 1024; // room for the 1000 examples and some 100 batches
    store.close();
    const capped = ResultStore.open(file, { maxBytes: cap });
    const saved = fillUp(capped, id);
    expect(saved).toBeGreaterThan(10);
    expect(capped.runResults(id)).toHaveLength(saved);
    capped.close();
    const reopened = ResultStore.open(file);
    expect(reopened.getRun(id).examplesDone).toBe(saved);
    reopened.close();
  });

  it.skipIf(!canMount)('a database on a file system that fills up fails with cache_full and keeps every batch saved before (needs root to mount a tmpfs)', () => {
    const mnt = path.join(dir, 'small');
    fs.mkdirSync(mnt);
    // 1 MB: the schema's migrations and the 1000 examples fit (512 KB no longer did with schema 5's
    // write-ahead log); the 1000 batches (28 rows each, ~4 MB) do not.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    mounts.push(mnt);
    const { store, id } = filled(path.join(mnt, 'results.sqlite'), 0);
    const saved = fillUp(store, id);
    expect(store.runResults(id)).toHaveLength(saved);
    store.close();
    const reopened = ResultStore.open(path.join(mnt, 'results.sqlite'), { readonly: true });
    expect(reopened.runResults(id)).toHaveLength(saved);
    reopened.close();
  });
});
