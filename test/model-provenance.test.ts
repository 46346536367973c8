/**
 * Each run records which model it read: the family, and where the checkpoint folder is a Hugging
 * Face hub cache snapshot (models--org--name/snapshots/<commit>/), the repository and commit.
 * Through the real command line on tiny random GPT-J checkpoints.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkpointOrigin } from '../src-main/engine/provenance.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { runCli } from './fixtures/cli.ts';
import { writeTopicRecords } from './fixtures/records.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'model-provenance-'));
const env = { ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'cache'), LOGITSCOPE_DB: path.join(tmp, 'results.sqlite') };
const cli = (args: string[]) => runCli(args, env, { cwd: tmp });

const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const snapshot = path.join(tmp, 'hub', 'models--x--y', 'snapshots', COMMIT);
const plain = path.join(tmp, 'plain-model');
const data = path.join(tmp, 'lines.jsonl');

beforeAll(() => {
  writeTinyGptj({ dir: snapshot, format: 'safetensors', seed: 11, tokenizer: 'tokenizer.json' });
  writeTinyGptj({ dir: plain, format: 'safetensors', seed: 11, tokenizer: 'tokenizer.json' });
  writeTopicRecords(data, 20);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the checkpoint folder names its origin', () => {
  test('a hub cache snapshot folder names its repository and commit, with or without a trailing slash', () => {
    expect(checkpointOrigin(snapshot)).toEqual({ repo: 'x/y', revision: COMMIT });
    expect(checkpointOrigin(`${snapshot}/`)).toEqual({ repo: 'x/y', revision: COMMIT });
    expect(checkpointOrigin('/c/models--EleutherAI--gpt-j-6b/snapshots/' + COMMIT)).toEqual({ repo: 'EleutherAI/gpt-j-6b', revision: COMMIT });
  });

  test('any other folder names none: not a 40-hex commit, not under snapshots/, not a models-- repository', () => {
    expect(checkpointOrigin(plain)).toBeNull();
    expect(checkpointOrigin('/c/models--x--y/snapshots/main')).toBeNull();
    expect(checkpointOrigin(`/c/models--x--y/refs/${COMMIT}`)).toBeNull();
    expect(checkpointOrigin(`/c/datasets--x--y/snapshots/${COMMIT}`)).toBeNull();
  });
});

describe('a run records the family and revision', () => {
  test('a sweep on a snapshot folder records them, and runs show and the export say them', async () => {
    const json = path.join(tmp, 'snapshot-run.json');
    const r = await cli(['sweep', '--model', snapshot, '--data', data, '--preset', 'logitscope', '--pool-end', '6', '--limit', '2', '--layers', '0', '--techniques', 'logit_lens', '--json', json]);
    expect(r.code, r.stderr).toBe(0);
    const record = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(record.model).toMatchObject({ family: 'gptj', model_type: 'gptj', repo: 'x/y', revision: COMMIT });

    const shown = await cli(['runs', 'show', record.run.id]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`model ${snapshot}: gptj, x/y@${COMMIT}`);

    const exported = path.join(tmp, 'snapshot-export.json');
    expect((await cli(['runs', 'export', record.run.id, '--out', exported])).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(exported, 'utf8')).model).toMatchObject({ family: 'gptj', repo: 'x/y', revision: COMMIT });
  }, 120_000);

  test('a sweep on another folder records the family and says the revision is unknown', async () => {
    const json = path.join(tmp, 'plain-run.json');
    const r = await cli(['sweep', '--model', plain, '--data', data, '--preset', 'logitscope', '--pool-end', '6', '--limit', '2', '--layers', '0', '--techniques', 'logit_lens', '--json', json]);
    expect(r.code, r.stderr).toBe(0);
    const record = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(record.model).toMatchObject({ family: 'gptj', repo: null, revision: null });
    const shown = await cli(['runs', 'show', record.run.id]);
    expect(shown.stdout).toContain(`model ${plain}: gptj, revision unknown`);
  }, 120_000);
});
