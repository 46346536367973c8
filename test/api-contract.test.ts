import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { REQUEST_NAMES } from '../src-main/api/contract.ts';
import { buildBridge, registerIpc } from '../src-main/api/ipc.ts';
import { Lab } from '../src-main/api/lab.ts';
import { requestSchemas } from '../src-main/api/schemas.ts';
import { startServer, type RunningServer } from '../src-main/serve.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-contract-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');

/** One bad payload per request, each with several problems, and the paths every front must report. */
const BAD: Record<string, { payload: unknown; paths: string[] }> = {
  'app.info': { payload: { verbose: true }, paths: [''] },
  'app.doctor': { payload: { x: 1 }, paths: [''] },
  'gpu.status': { payload: { x: 1 }, paths: [''] },
  'gpu.install': { payload: { flavour: 'cuda11' }, paths: ['flavour'] },
  'model.load': { payload: { dir: '', device: 'tpu', allowCpuFallback: 'yes' }, paths: ['dir', 'device', 'allowCpuFallback'] },
  'model.current': { payload: { dir: 'x' }, paths: [''] },
  'dataset.preview': { payload: { files: [data], preset: 'paper', sampleCount: 100000, overrides: { bos: 'false' } }, paths: ['preset', 'sampleCount', 'overrides.bos'] },
  'sweep.start': {
    payload: { files: [], preset: 'logitscope', techniques: [{ id: 'custom', prompt: '' }, { id: 'tuned_lens', lens: { ridge: 2, train: { end: 1 } } }], layers: [-3], k: 100000, overrides: { limit: 0, junk: 1 } },
    paths: ['files', 'techniques.0.prompt', 'techniques.1.lens.train.end', 'techniques.1.lens.ridge', 'layers.0', 'k', 'overrides.limit', 'overrides'],
  },
  'sweep.cancel': { payload: { runId: 7 }, paths: ['runId'] },
  'sweep.resume': { payload: { runId: 'ab', batchSize: 0 }, paths: ['runId', 'batchSize'] },
  extract: { payload: { text: '', position: -1, positions: { from: -1, to: 2 }, k: 0 }, paths: ['text', 'position', 'positions.from', 'k'] },
  'extract.tokenize': { payload: { text: '', bos: 1 }, paths: ['text', 'bos'] },
  'extract.save': { payload: { text: '', position: -1, follow: 3 }, paths: ['text', 'position', ''] },
  'runs.list': { payload: { status: 'lost', extra: 1 }, paths: ['status', ''] },
  'runs.get': { payload: {}, paths: ['runId'] },
  'runs.example': { payload: { runId: 'abcd', ordinal: 1.5 }, paths: ['ordinal'] },
  'runs.examples': {
    payload: { runId: 'abcd', filter: { correct: 'no', layer: -2 }, sort: { by: 'loss', technique: 'logit_lens', layer: 0 }, offset: -1, limit: 501 },
    paths: ['filter.correct', 'filter.layer', 'sort.by', 'offset', 'limit'],
  },
  'runs.bySource': { payload: { runId: 'abcd', technique: '', metric: 'loss' }, paths: ['technique', ''] },
  'runs.compare': { payload: { a: 'abcd' }, paths: ['b'] },
  'runs.export': { payload: { runId: 'abcd', format: 'xlsx', out: '' }, paths: ['format', 'out'] },
  'runs.delete': { payload: { runId: null }, paths: ['runId'] },
  'runs.merge': { payload: { files: [], allowPartial: 'yes' }, paths: ['files', 'allowPartial'] },
  'runs.diff': { payload: { a: 'ab', b: 3 }, paths: ['a', 'b'] },
  'runs.update': { payload: { runId: 'abcd', name: 7, tags: [''], colour: 'red' }, paths: ['name', 'tags.0', ''] },
  'desktop.engine': { payload: { pid: 1 }, paths: [''] },
  'desktop.restartEngine': { payload: { now: true }, paths: [''] },
  'desktop.pick': { payload: { kind: 'anyFile', path: '/etc' }, paths: ['kind', ''] },
  'desktop.saveExport': { payload: { runId: 'ab', format: 'xlsx' }, paths: ['runId', 'format'] },
  'desktop.saveFile': { payload: { fileName: '', mimeType: '', content: 3 }, paths: ['fileName', 'mimeType', 'content'] },
  'desktop.showInFolder': { payload: { path: '' }, paths: ['path'] },
};

describe('one contract: every request is checked by its schema, the same way on every front', () => {
  let lab: Lab;
  let server: RunningServer;

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 3 });
    fs.writeFileSync(data, JSON.stringify({ text: 'A short line of text for the preview.' }));
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    server = await startServer({ lab, rendererDir: tmp });
  });
  afterAll(async () => {
    await server?.close();
    await lab?.close();
  });

  test('the request names of the contract are exactly the requests that have a schema, and every one has a bad case here', () => {
    expect([...REQUEST_NAMES].sort()).toEqual(Object.keys(requestSchemas).sort());
    expect(Object.keys(BAD).sort()).toEqual([...REQUEST_NAMES].sort());
  });

  test.each(Object.entries(BAD))('%s: every problem is reported with its path, before any work', async (name, { payload, paths }) => {
    const reply = await lab.dispatch(name, payload);
    expect(reply.ok).toBe(false);
    if (reply.ok) return;
    expect(reply.error.code).toBe('argument_invalid');
    expect(reply.error.issues?.map((i) => i.path).sort()).toEqual([...paths].sort());
  });

  test("the desktop window's own requests are refused by the Lab, in process and over HTTP, once their payload is valid", async () => {
    const direct = await lab.dispatch('desktop.pick', { kind: 'modelDir' });
    expect(direct).toMatchObject({ ok: false, error: { code: 'desktop_only', path: 'request' } });
    const http = await fetch(`http://127.0.0.1:${server.port}/api/desktop.pick`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'modelDir' }),
    }).then((r) => r.json());
    expect(http).toEqual(direct);
  });

  test('bos: "false" is refused, not taken as true, and unknown keys are named', async () => {
    const reply = await lab.dispatch('dataset.preview', { files: [data], preset: 'logitscope', overrides: { bos: 'false', shuffle: 3 } });
    expect(reply).toMatchObject({ ok: false, error: { code: 'argument_invalid' } });
    const messages = !reply.ok ? reply.error.issues!.map((i) => `${i.path}: ${i.message}`) : [];
    expect(messages).toEqual(expect.arrayContaining([expect.stringMatching(/^overrides\.bos: .*boolean/), 'overrides: unknown key "shuffle"']));
  });

  test('the browser page (HTTP) and the Electron window (IPC) get the same envelope as the in-process call', async () => {
    const payload = BAD['sweep.start'].payload;
    const direct = await lab.dispatch('sweep.start', payload);
    const http = await fetch(`http://127.0.0.1:${server.port}/api/sweep.start`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(payload),
    }).then((r) => r.json());
    const handlers = new Map<string, (event: unknown, ...args: unknown[]) => unknown>();
    registerIpc({ handle: (c, l) => handlers.set(c, l as never), removeHandler: () => {} }, lab, { isTrustedSender: () => true, send: () => {} });
    const bridge = buildBridge({ invoke: async (c, ...args) => handlers.get(c)!({ senderFrame: null }, ...args), on: () => {} });
    const ipc = await bridge.call('sweep.start', payload as never);
    expect(http).toEqual(direct);
    expect(ipc).toEqual(direct);
  });

  test('the command line reports the same problems, one per line, with exit code 2', async () => {
    const run = promisify(execFile);
    const env = { ...process.env, LOGITSCOPE_DB: path.join(tmp, 'cli.sqlite'), LOGITSCOPE_CACHE_DIR: path.join(tmp, 'graphs') };
    const err = await run(process.execPath, ['bin/logitscope.js', 'extract', '--model', model, '--text', 'hello', '--top-k', '0', '--prompt', ''], { env }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/\[argument_invalid\] 2 problems with the options/);
    // The schema's problems, named by the flag that sets each (the API names the payload paths).
    expect(err?.stderr).toMatch(/^ {2}- --top-k must be at least 1$/m);
    expect(err?.stderr).toMatch(/^ {2}- --prompt: a custom patchscope prompt cannot be empty$/m);
  });

  test('a request that will fail fails before it replies: resuming a run of another model is refused at once', async () => {
    await lab.call('model.load', { dir: model });
    const { runId } = await lab.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }], layers: [0] });
    await lab.settled(runId);
    const other = path.join(tmp, 'other');
    writeTinyGptj({ dir: other, format: 'safetensors', seed: 4 });
    await lab.call('model.load', { dir: other });
    expect(await lab.dispatch('sweep.resume', { runId })).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'runId' } });
    expect(await lab.dispatch('sweep.resume', { runId: runId.slice(0, 8) })).toMatchObject({ ok: false, error: { message: expect.stringMatching(/another model/) } });
  });
});
