/**
 * Issue 23's command-line cases, through the real command line (a child process per command, real
 * SQLite files, real onnxruntime sessions): a tuned-lens fit stopped by SIGTERM, environment
 * failures (a full disk, a cache path that is a file, a database of an unknown schema version) as
 * coded errors, lens slices never changed silently, and messages in the command line's own words.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-trust-'));
const bin = path.resolve('bin/logitscope.js');
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const env = (extra: Record<string, string> = {}) => ({ ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'cache'), LOGITSCOPE_DB: path.join(tmp, 'results.sqlite'), ...extra });

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { env: env(extraEnv), cwd: tmp, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(() => {
  writeTinyGptj({ dir: model, format: 'safetensors', seed: 9 });
  const topics = ['a harbour', 'the hills', 'a library', 'the old mill', 'a river', 'the market'];
  fs.writeFileSync(data, Array.from({ length: 60 }, (_, i) => JSON.stringify({ text: `Record ${i} tells of ${topics[i % topics.length]} and the people there.` })).join('\n'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('a tuned-lens fit is cancelled promptly', () => {
  test('SIGTERM during the fit: the process exits within a second or two with 143, no run is created, and no lens (nor half of one) is left in the cache', async () => {
    const cache = path.join(tmp, 'cache-sigterm');
    const db = path.join(tmp, 'sigterm.sqlite');
    // The demo model fits its lens on ~1,900 train examples: long enough (tens of seconds) to be stopped.
    const child = spawn(process.execPath, [bin, 'sweep', '--demo', '--limit', '5', '--techniques', 'logit_lens,tuned_lens'], { env: env({ LOGITSCOPE_CACHE_DIR: cache, LOGITSCOPE_DB: db }), cwd: tmp });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += String(b)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Wait for the fit's progress line (the first batch of train examples collected), then stop it.
    await new Promise<void>((resolve, reject) => {
      const check = () => (/tuned lens: \d+\/\d+ train examples collected/.test(stderr) ? resolve() : undefined);
      child.stderr.on('data', check);
      child.on('exit', () => reject(new Error(`exited before the fit started:\n${stderr}`)));
    });
    const sent = performance.now();
    child.kill('SIGTERM');
    const code = await exited;
    const seconds = (performance.now() - sent) / 1000;
    expect(code, stderr).toBe(143);
    expect(seconds).toBeLessThan(3);
    expect(stderr).toMatch(/cancelling: nothing has been computed yet, so no run will be created/);
    expect(stderr).toMatch(/cancelled after .*: the tuned-lens fit was cancelled/);
    expect(stderr).not.toMatch(/\[unexpected\]/);
    // No run, not even an empty cancelled one.
    const list = await cli(['runs', 'list', '--db', db]);
    expect(list.stdout).not.toMatch(/^[0-9a-f]{8} /m);
    // Nothing half-written: no lens folder, no temporary folder.
    const files = fs.readdirSync(cache, { recursive: true }).map(String);
    expect(files.filter((f) => f.includes('tuned-lens') || f.includes('partial')).filter((f) => !/tuned-lens$/.test(f))).toEqual([]);
    console.log(`SIGTERM to exit during a fit: ${seconds.toFixed(2)} s`);
  }, 120_000);
});
