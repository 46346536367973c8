import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { REQUEST_NAMES, type ApiEvents, type EventName } from '../src-main/api/contract.ts';
import { buildBridge, EVENT_CHANNEL, registerIpc, requestChannel, type IpcMainLike, type LogitscopeBridge, type SenderFrame } from '../src-main/api/ipc.ts';
import { Lab } from '../src-main/api/lab.ts';
import { isTrustedSender } from '../src-main/desktop/security.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const APP_FRAME: SenderFrame = { url: 'app://logitscope/index.html', parent: null };

/**
 * ipcMain and ipcRenderer joined the way Electron joins them: invoke() calls the handler of the
 * channel with an event naming the sender frame, and every value crosses by structured clone.
 */
class FakeIpc {
  readonly handlers = new Map<string, (event: { senderFrame: SenderFrame | null }, ...args: unknown[]) => unknown>();
  readonly toRenderer = new EventEmitter();
  frame: SenderFrame | null = APP_FRAME;

  readonly ipcMain: IpcMainLike = {
    handle: (channel, listener) => {
      if (this.handlers.has(channel)) throw new Error(`second handler for ${channel}`);
      this.handlers.set(channel, listener);
    },
    removeHandler: (channel) => void this.handlers.delete(channel),
  };

  readonly ipcRenderer = {
    invoke: async (channel: string, ...args: unknown[]) => {
      const handler = this.handlers.get(channel);
      if (!handler) throw new Error(`No handler registered for '${channel}'`);
      return structuredClone(await handler({ senderFrame: this.frame }, ...structuredClone(args)));
    },
    on: (channel: string, listener: (event: unknown, ...args: unknown[]) => void) => this.toRenderer.on(channel, listener),
  };

  /** webContents.send: the renderer's listener gets an IpcRendererEvent first, then the arguments. */
  send = (channel: string, ...args: unknown[]) => this.toRenderer.emit(channel, { sender: 'ipcRenderer internals' }, ...structuredClone(args));
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-ipc-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');

describe('Electron IPC wiring (fake ipcMain, real Lab, real SQLite file)', () => {
  let lab: Lab;
  const ipc = new FakeIpc();
  let bridge: LogitscopeBridge;
  let unregister: () => void;
  const dispatched: string[] = [];

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 7 });
    fs.writeFileSync(data, Array.from({ length: 6 }, (_, i) => JSON.stringify({ text: `Line ${i} talks about the ${['sea', 'sky'][i % 2]} again.` })).join('\n'));
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    const counted = { dispatch: (name: string, payload: unknown) => (dispatched.push(name), lab.dispatch(name, payload)), onEvent: lab.onEvent.bind(lab) };
    unregister = registerIpc(ipc.ipcMain, counted, { isTrustedSender, send: ipc.send });
    bridge = buildBridge(ipc.ipcRenderer);
  });
  afterAll(async () => lab?.close());

  const nextEvent = <E extends EventName>(name: E, pred: (p: ApiEvents[E]) => boolean = () => true) =>
    new Promise<ApiEvents[E]>((resolve) => {
      const off = bridge.on(name, (p) => {
        if (!pred(p)) return;
        off();
        resolve(p);
      });
    });

  test('main registers exactly one handler per request of the contract', () => {
    expect([...ipc.handlers.keys()].sort()).toEqual(REQUEST_NAMES.map(requestChannel).sort());
  });

  test('the preload bridge is exactly {call, on}, frozen, and hands the page no IPC internals', async () => {
    expect(Object.keys(bridge).sort()).toEqual(['call', 'on']);
    expect(Object.isFrozen(bridge)).toBe(true);
    const seen: unknown[][] = [];
    const off = bridge.on('runs.changed', (...args: unknown[]) => seen.push(args));
    ipc.send(EVENT_CHANNEL, 'runs.changed', {});
    off();
    ipc.send(EVENT_CHANNEL, 'runs.changed', {});
    expect(seen).toEqual([[{}]]);
    expect(() => bridge.on('no.such.event' as EventName, () => {})).toThrow(/unknown event/);
  });

  test('requests cross as envelopes: results, and coded errors for bad input', async () => {
    const info = await bridge.call('app.info', {});
    expect(info).toMatchObject({ ok: true, result: { dbPath: path.join(tmp, 'results.sqlite') } });
    expect(await bridge.call('model.load', { dir: tmp })).toMatchObject({ ok: false, error: { code: 'config_missing' } });
    expect(await bridge.call('model.load', { dir: 42 } as never)).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'dir' } });
    expect(await bridge.call('model.load', 'not an object' as never)).toMatchObject({ ok: false, error: { code: 'argument_invalid' } });
  });

  test('a request name outside the contract never leaves the preload', async () => {
    const before = dispatched.length;
    expect(await bridge.call('shell.exec' as never, {} as never)).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'request' } });
    expect(dispatched.length).toBe(before);
  });

  test('messages from another frame, a subframe or no frame are refused before the Lab sees them', async () => {
    const before = dispatched.length;
    for (const frame of [{ url: 'https://evil.example/', parent: null }, { url: 'app://logitscope/index.html', parent: {} }, { url: 'file:///etc/passwd', parent: null }, { url: 'app://logitscope.evil/index.html', parent: null }, { url: 'not a url', parent: null }, null]) {
      ipc.frame = frame;
      expect(await bridge.call('runs.list', {})).toMatchObject({ ok: false, error: { code: 'forbidden_origin', path: 'sender' } });
    }
    ipc.frame = APP_FRAME;
    expect(dispatched.length).toBe(before);
  });

  test('extra arguments beyond the one payload are refused', async () => {
    const reply = await ipc.ipcRenderer.invoke(requestChannel('runs.list'), {}, 'extra');
    expect(reply).toMatchObject({ ok: false, error: { path: 'payload' } });
  });

  test('a model loads and a sweep runs through the bridge, with progress and finished events pushed to the page', async () => {
    const changed = nextEvent('model.changed');
    const loaded = await bridge.call('model.load', { dir: model });
    expect(loaded).toMatchObject({ ok: true, result: { config: { nLayers: 3 }, device: 'cpu' } });
    expect(await changed).toEqual({ dir: model });

    const progress: ApiEvents['sweep.progress'][] = [];
    const offProgress = bridge.on('sweep.progress', (p) => progress.push(p));
    const finished = nextEvent('sweep.finished');
    const started = await bridge.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, name: 'ipc' });
    if (!started.ok) throw new Error(started.error.message);
    const done = await finished;
    offProgress();
    expect(done).toEqual({ runId: started.result.runId, status: 'completed' });
    const last = progress.at(-1)!;
    expect(last.runId).toBe(started.result.runId);
    expect(last.progress.examplesDone).toBe(last.progress.examplesTotal);
    expect(last.progress.summary).toHaveLength(2 * 3);

    const runs = await bridge.call('runs.list', {});
    expect(runs.ok && runs.result.map((r) => r.name)).toContain('ipc');
    const example = await bridge.call('runs.example', { runId: started.result.runId, ordinal: 0 });
    expect(example.ok && example.result.cells).toHaveLength(6);
  });

  test('a sweep started with nothing selected is a clear error and the bridge keeps working', async () => {
    const reply = await bridge.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [], layers: null });
    expect(reply).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'techniques' } });
    expect((await bridge.call('model.current', {})).ok).toBe(true);
  });

  test('unregistering removes every handler and stops forwarding events', async () => {
    const seen: unknown[] = [];
    bridge.on('runs.changed', (p) => seen.push(p));
    unregister();
    expect(ipc.handlers.size).toBe(0);
    await lab.call('runs.delete', { runId: (await lab.call('runs.list', {}))[0].id });
    expect(seen).toEqual([]);
    await expect(bridge.call('runs.list', {})).rejects.toThrow(/No handler registered/);
  });
});

describe('the built preload (dist/electron/preload.cjs)', () => {
  test('needs nothing but electron, as a sandboxed preload must, and exposes exactly window.logitscope = {call, on}', async () => {
    const outDir = path.join(tmp, 'electron');
    await build({ configFile: path.resolve('electron.config.ts'), build: { outDir }, logLevel: 'warn' });
    const required: string[] = [];
    const exposed: [string, unknown][] = [];
    const ipc = new FakeIpc();
    const electron = { contextBridge: { exposeInMainWorld: (key: string, api: unknown) => exposed.push([key, api]) }, ipcRenderer: ipc.ipcRenderer };
    const sandboxRequire = (id: string) => {
      required.push(id);
      if (id !== 'electron') throw new Error(`a sandboxed preload cannot require ${id}`);
      return electron;
    };
    vm.runInNewContext(fs.readFileSync(path.join(outDir, 'preload.cjs'), 'utf8'), { require: sandboxRequire, module: { exports: {} }, exports: {} });
    expect(required).toEqual(['electron']);
    expect(exposed.map(([key]) => key)).toEqual(['logitscope']);
    expect(Object.keys(exposed[0][1] as object).sort()).toEqual(['call', 'on']);
    expect(fs.readFileSync(path.join(outDir, 'main.mjs'), 'utf8')).toContain("import('../../src-main/electron.ts')");
  });
});
