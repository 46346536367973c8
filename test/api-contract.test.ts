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
  'runs.follow': { payload: { runId: 'abcd', ordinal: -1, token: 'x' }, paths: ['ordinal', 'token'] },
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
  'runs.diffTechniques': { payload: { runId: 'abcd', a: '', b: 3 }, paths: ['a', 'b'] },
  'runs.commitment': { payload: { runId: 'abcd', technique: 'x' }, paths: [''] },
  'references.list': { payload: { dir: '/etc' }, paths: [''] },
  'references.get': { payload: { name: '' }, paths: ['name'] },
  'references.parse': { payload: { name: '', text: 4 }, paths: ['name', 'text'] },
  'runs.update': { payload: { runId: 'abcd', name: 7, tags: [''], colour: 'red' }, paths: ['name', 'tags.0', ''] },
  'desktop.engine': { payload: { pid: 1 }, paths: [''] },
  'desktop.restartEngine': { payload: { now: true }, paths: [''] },
  'desktop.pick': { payload: { kind: 'anyFile', path: '/etc' }, paths: ['kind', ''] },
  'desktop.saveExport': { payload: { runId: 'ab', format: 'xlsx' }, paths: ['runId', 'format'] },
  'desktop.saveFile': { payload: { fileName: '', mimeType: '', content: 3 }, paths: ['fileName', 'mimeType', 'content'] },
  'desktop.showInFolder': { payload: { path: '' }, paths: ['path'] },
};

/**
 * One request answered by each front: the Lab in process, the Electron window (ipcMain and the
 * preload bridge, every value crossing by structured clone as Electron does) and the browser page
 * (HTTP, JSON).
 */
async function viaEveryFront(lab: Lab, server: RunningServer, name: string, payload: unknown) {
  const direct = await lab.dispatch(name, payload);
  const http = await fetch(`http://127.0.0.1:${server.port}/api/${name}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(payload),
  }).then((r) => r.json());
  const handlers = new Map<string, (event: unknown, ...args: unknown[]) => unknown>();
  const unregister = registerIpc({ handle: (c, l) => handlers.set(c, l as never), removeHandler: () => {} }, lab, { isTrustedSender: () => true, send: () => {} });
  const bridge = buildBridge({ invoke: async (c, ...args) => structuredClone(await handlers.get(c)!({ senderFrame: null }, ...structuredClone(args))), on: () => {} });
  const ipc = await bridge.call(name as never, payload as never);
  unregister();
  return { direct, http, ipc };
}

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
    const { direct, http, ipc } = await viaEveryFront(lab, server, 'sweep.start', BAD['sweep.start'].payload);
    expect(direct.ok).toBe(false);
    expect(http).toStrictEqual(direct);
    expect(ipc).toStrictEqual(direct);
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
    expect(await lab.dispatch('sweep.resume', { runId })).toMatchObject({ ok: false, error: { code: 'model_mismatch', path: 'runId' } });
    expect(await lab.dispatch('sweep.resume', { runId: runId.slice(0, 8) })).toMatchObject({ ok: false, error: { message: expect.stringMatching(/another model/) } });
  });
});

describe('one reply shape: successful replies are JSON-safe and the same on every front', () => {
  let lab: Lab;
  let server: RunningServer;
  const events: { name: string; payload: unknown }[] = [];
  const runs: string[] = [];
  const single = path.join(tmp, 'one-line.jsonl');

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 3 });
    // One example: every surprisal interval of these runs has no width to give (n = 1), the case whose bounds once became NaN in process and null over JSON.
    fs.writeFileSync(single, JSON.stringify({ text: 'One line about the sea and the sky, long enough to pick a position.' }));
    lab = await Lab.open({ dbPath: path.join(tmp, 'replies.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    lab.onEvent((name, payload) => events.push({ name, payload }));
    server = await startServer({ lab, rendererDir: tmp });
    await lab.call('model.load', { dir: model });
    for (const name of ['first', 'second']) {
      const { runId } = await lab.call('sweep.start', { files: [single], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, name });
      await lab.settled(runId);
      runs.push(runId);
    }
  });
  afterAll(async () => {
    await server?.close();
    await lab?.close();
  });

  /** Read-only requests whose replies carry every kind of value: summaries, intervals, tokens, examples, comparisons. */
  const SUCCESSFUL: Record<string, () => unknown> = {
    'app.info': () => ({}),
    'model.current': () => ({}),
    'dataset.preview': () => ({ files: [single], preset: 'logitscope' }),
    'extract.tokenize': () => ({ text: 'The sea is' }),
    extract: () => ({ text: 'The sea is', k: 3 }),
    'runs.list': () => ({}),
    'runs.get': () => ({ runId: runs[0] }),
    'runs.example': () => ({ runId: runs[0], ordinal: 0 }),
    'runs.follow': () => ({ runId: runs[0], ordinal: 0, token: 5 }),
    'runs.examples': () => ({ runId: runs[0], offset: 0, limit: 10 }),
    'runs.bySource': () => ({ runId: runs[0], technique: 'logit_lens' }),
    'runs.compare': () => ({ a: runs[0], b: runs[1] }),
    'runs.diff': () => ({ a: runs[0], b: runs[1] }),
  };

  test('the runs hold unbounded intervals, so the replies below carry them', async () => {
    const run = await lab.call('runs.get', { runId: runs[0] });
    expect(run.summary.length).toBeGreaterThan(0);
    expect(run.summary.every((s) => s.n === 1 && s.surprisal.low === null && s.surprisal.high === null)).toBe(true);
  });

  test.each(Object.keys(SUCCESSFUL))('%s: the in-process reply survives JSON unchanged, and IPC and HTTP hand over exactly that reply', async (name) => {
    const { direct, http, ipc } = await viaEveryFront(lab, server, name, SUCCESSFUL[name]());
    expect(direct, name).toMatchObject({ ok: true });
    expect(direct, `${name}: JSON changes the in-process reply`).toStrictEqual(JSON.parse(JSON.stringify(direct)));
    expect(ipc, `${name} over IPC`).toStrictEqual(direct);
    expect(http, `${name} over HTTP`).toStrictEqual(direct);
  });

  test('every event the Lab sent on the way (progress summaries included) survives JSON unchanged', () => {
    expect(events.some((e) => e.name === 'sweep.progress')).toBe(true);
    for (const e of events) expect(e.payload, e.name).toStrictEqual(JSON.parse(JSON.stringify(e.payload)));
  });
});
