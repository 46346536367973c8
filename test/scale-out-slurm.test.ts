import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Lab } from '../src-main/api/lab.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { differences } from './scale-out-compare.ts';

// The SLURM scripts (scripts/slurm/) for real: a one-node cluster on this machine (munged,
// slurmctld, slurmd from Debian's slurm-wlm), a job array of 3 shards and the dependent merge job,
// submitted with the two commands the README shows. Skipped, with the reason, where SLURM is absent.

const has = (bin: string) => ['/usr/sbin', '/usr/bin', '/bin', '/sbin'].some((d) => fs.existsSync(path.join(d, bin)));
const missing = ['sbatch', 'squeue', 'slurmctld', 'slurmd', 'munged'].filter((b) => !has(b));
const skipReason =
  missing.length > 0 ? `SLURM is not installed here (no ${missing.join(', ')}; apt-get install slurm-wlm munge)` : process.getuid?.() !== 0 ? 'starting a one-node SLURM cluster needs root' : undefined;

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-out-slurm-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const cluster = path.join(tmp, 'cluster');
const env = { ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'graphs'), LOGITSCOPE_HOME: process.cwd(), NODE: process.execPath, SLURM_CONF: path.join(cluster, 'slurm.conf') };
const sweepArgs = ['--model', model, '--data', data, '--preset', 'logitscope', '--limit', '10', '--layers', '-1,0,1', '--top-k', '4'];

/** Until none of these jobs is queued or running. */
async function waitFor(jobs: string[]): Promise<void> {
  const queued = async () => (await run('squeue', ['-h', '-j', jobs.join(',')], { env })).stdout.trim();
  await expect.poll(queued, { timeout: 150_000, interval: 500, message: `SLURM jobs ${jobs.join(', ')} to finish` }).toBe('');
}

/** The merged database's one run against the unsharded export: the differences beyond float32 rounding. */
async function exportDifferences(merged: string): Promise<string[]> {
  const lab = await Lab.open({ dbPath: merged, readonly: true });
  try {
    const [only, ...others] = await lab.call('runs.list', {});
    expect(others).toEqual([]);
    const json = JSON.parse((await lab.call('runs.export', { runId: only.id, format: 'json' })).content!);
    const reference = JSON.parse(fs.readFileSync(path.join(tmp, 'unsharded.json'), 'utf8'));
    const strip = (r: { run: Record<string, unknown> }) => ({ ...r, run: { ...r.run, id: 0, created_at: 0, updated_at: 0, timings: 0 } });
    return differences(strip(json), strip(reference));
  } finally {
    await lab.close();
  }
}

describe.skipIf(skipReason !== undefined)(`SLURM job array and dependent merge${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 7 });
    const words = 'quartz marble cedar lichen tundra basalt willow'.split(' ');
    fs.writeFileSync(data, Array.from({ length: 30 }, (_, i) => JSON.stringify({ text: Array.from({ length: 3 + (i % 6) }, (_, j) => words[(i + j * 4) % words.length]).join(' ') })).join('\n'));
    await run('scripts/slurm/one-node-cluster.sh', ['start', cluster], { env });
  }, 60_000);
  afterAll(() => {
    if (fs.existsSync(cluster)) execFileSync('scripts/slurm/one-node-cluster.sh', ['stop', cluster]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('3 array tasks and the merge job give one run equal to the unsharded one', async () => {
    await run(process.execPath, ['bin/logitscope.js', 'sweep', ...sweepArgs, '--db', path.join(tmp, 'unsharded.sqlite'), '--json', path.join(tmp, 'unsharded.json')], { env });
    const shards = path.join(tmp, 'shards');
    const merged = path.join(tmp, 'merged.sqlite');
    // The README's two commands.
    const array = (await run('sbatch', ['--parsable', '--array=0-2', `--chdir=${tmp}`, 'scripts/slurm/shard.sbatch', shards, ...sweepArgs], { env })).stdout.trim();
    const merge = (await run('sbatch', ['--parsable', `--dependency=afterok:${array}`, `--chdir=${tmp}`, 'scripts/slurm/merge.sbatch', shards, merged], { env })).stdout.trim();

    await waitFor([array, merge]);
    const logs = fs.readdirSync(tmp).filter((f) => f.endsWith('.out'));
    expect(logs.sort()).toEqual([`logitscope-merge-${merge}.out`, ...[0, 1, 2].map((i) => `logitscope-shard-${array}_${i}.out`)].sort());
    expect(fs.readdirSync(shards).filter((f) => f.endsWith('.db')).sort()).toEqual(['shard-0-of-3.db', 'shard-1-of-3.db', 'shard-2-of-3.db']);
    expect(fs.readFileSync(path.join(tmp, `logitscope-merge-${merge}.out`), 'utf8')).toMatch(/completed, 10\/10 examples/);

    expect(await exportDifferences(merged)).toEqual([]);
  }, 240_000);

  test('tasks run again later (LOGITSCOPE_SHARDS) complete a run an afterany merge left partial', async () => {
    const shards = path.join(tmp, 'shards-later');
    const merged = path.join(tmp, 'merged-later.sqlite');
    const three = { ...env, LOGITSCOPE_SHARDS: '3' };
    const first = (await run('sbatch', ['--parsable', '--array=0,2', `--chdir=${tmp}`, 'scripts/slurm/shard.sbatch', shards, ...sweepArgs], { env: three })).stdout.trim();
    const partial = (await run('sbatch', ['--parsable', `--dependency=afterany:${first}`, `--chdir=${tmp}`, 'scripts/slurm/merge.sbatch', shards, merged, '--allow-partial'], { env })).stdout.trim();
    await waitFor([first, partial]);
    expect(fs.readFileSync(path.join(tmp, `logitscope-merge-${partial}.out`), 'utf8')).toMatch(/failed, 7\/10 examples .*\nmissing ordinals: 1, 4, 7\n/);

    const later = (await run('sbatch', ['--parsable', '--array=1', `--chdir=${tmp}`, 'scripts/slurm/shard.sbatch', shards, ...sweepArgs], { env: three })).stdout.trim();
    const complete = (await run('sbatch', ['--parsable', `--dependency=afterok:${later}`, `--chdir=${tmp}`, 'scripts/slurm/merge.sbatch', shards, merged], { env })).stdout.trim();
    await waitFor([later, complete]);
    expect(fs.readFileSync(path.join(tmp, `logitscope-merge-${complete}.out`), 'utf8')).toMatch(/completed, 10\/10 examples \(3 copied by this merge\)/);
    expect(await exportDifferences(merged)).toEqual([]);
  }, 240_000);
});
