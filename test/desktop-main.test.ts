/**
 * The desktop main process (desktop/shell.ts) run for real, with a fake Electron module
 * (fixtures/fake-electron.ts) in place of the binary, the real preload bridge, and a real engine
 * process on this Node with the built-in demo model and a real SQLite file.
 *
 * As in Electron, the Node build of better-sqlite3 (and of onnxruntime-node) cannot load in this
 * process: process.dlopen refuses them with Electron's message. So these tests prove that the
 * window's process never needs them, whatever machine they run on.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO } from '../src-main/app-paths.ts';
import type { ApiEvents, EngineState, EventName } from '../src-main/api/contract.ts';
import { buildBridge, requestChannel, type LogitscopeBridge } from '../src-main/api/ipc.ts';
import { EngineSupervisor } from '../src-main/desktop/engine-supervisor.ts';
import { APP_TITLE, runDesktop, type Desktop } from '../src-main/desktop/shell.ts';
import { engineLogPath } from '../src-main/db-paths.ts';
import { refuseNodeBuildsOfNativeModules } from './fixtures/electron-abi.ts';
import { FakeElectron } from './fixtures/fake-electron.ts';

let restoreDlopen: () => void;
beforeAll(() => void (restoreDlopen = refuseNodeBuildsOfNativeModules()));
afterAll(() => restoreDlopen());

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'desktop-main-'));
const rendererDir = path.join(tmp, 'renderer');
fs.mkdirSync(rendererDir);
fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Logitscope Lab</title>');

function newFake(name: string) {
  const downloads = path.join(tmp, name, 'downloads');
  fs.mkdirSync(downloads, { recursive: true });
  return new FakeElectron(path.join(tmp, name, 'appData'), downloads);
}

const until = (ok: () => boolean, what: string, ms = 60_000) => expect.poll(ok, { timeout: ms, interval: 10, message: `waiting for ${what}` }).toBe(true);

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The demo slice a test sweeps: small batches, so a sweep takes many steps and can be stopped midway. */
const demoSweep = (limit: number, requestId: string) => ({
  files: [DEMO.dataFile],
  preset: 'logitscope' as const,
  overrides: { limit },
  techniques: [{ id: 'logit_lens' as const }, { id: 'patchscope' as const }, { id: 'logitscope' as const }],
  layers: null,
  k: 3,
  batchSize: 4,
  requestId,
});

/** The CSV export without its run_id column, which is all that differs between two runs of one sweep. */
const rowsOf = (csv: string) => csv.trimEnd().split('\n').map((line) => line.slice(line.indexOf(',') + 1));

test('the Node build of better-sqlite3 is refused in this process, as Electron refuses it', () => {
  const Database = createRequire(import.meta.url)('better-sqlite3');
  expect(() => new Database(':memory:')).toThrow(/NODE_MODULE_VERSION/);
});

describe('one desktop window over a real engine process', () => {
  const fake = newFake('main');
  const dbPath = path.join(tmp, 'main', 'results.sqlite');
  let desktop: Desktop;
  let bridge: LogitscopeBridge;
  const events: { name: EventName; payload: any }[] = [];

  const call = async <T = any>(name: string, payload: unknown = {}): Promise<T> => {
    const reply = await bridge.call(name as never, payload as never);
    if (!reply.ok) throw new Error(`[${reply.error.code}] ${reply.error.message}`);
    return reply.result as T;
  };
  const seen = (name: EventName, pred: (p: any) => boolean = () => true) => events.some((e) => e.name === name && pred(e.payload));
  const engineStates = () => events.filter((e) => e.name === 'engine.state').map((e) => e.payload as EngineState);

  beforeAll(async () => {
    desktop = await runDesktop(fake, { nodePath: process.execPath, dbPath, rendererDir, graceMs: 3000 });
    bridge = buildBridge(fake.ipcRenderer());
    for (const name of ['sweep.preparing', 'sweep.progress', 'sweep.finished', 'model.changed', 'runs.changed', 'engine.state'] as const) {
      bridge.on(name, (payload) => events.push({ name, payload }));
    }
  });
  afterAll(async () => {
    fake.app.quit();
    await desktop?.quitted;
  });

  test('the app:// scheme is registered as standard and secure before the app is ready', () => {
    expect(fake.schemeRegistered).toEqual({ whileReady: false, schemes: [{ scheme: 'app', privileges: { standard: true, secure: true } }] });
  });

  test('the window opens at once on app://logitscope with an isolated, sandboxed page, before the engine is ready', async () => {
    const [win] = fake.windows;
    expect(win.url).toBe('app://logitscope/index.html');
    expect(win.options.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webviewTag: false });
    expect(win.shown).toBe(false); // shown on ready-to-show, which comes with the page, not with the engine
    expect(desktop.supervisor!.state().state).toBe('starting');
    await until(() => win.shown, 'the window to show');
  });

  test('app:// answers with the CSP and nosniff, and nothing outside the renderer', async () => {
    const ok = await fake.protocolHandler!(new Request('app://logitscope/index.html'));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(ok.headers.get('x-content-type-options')).toBe('nosniff');
    for (const url of ['app://logitscope/../../etc/passwd', 'app://logitscope/%2e%2e/package.json', 'app://elsewhere/index.html']) {
      expect((await fake.protocolHandler!(new Request(url))).status).toBe(404);
    }
  });

  test('navigation, redirects, webviews, new windows and permission requests are all refused', () => {
    const contents = fake.windows[0].webContents;
    expect(contents.navigate('will-navigate')).toBe(true);
    expect(contents.navigate('will-redirect')).toBe(true);
    expect(contents.navigate('will-attach-webview')).toBe(true);
    expect(contents.openHandler!({ url: 'https://example.com/' })).toEqual({ action: 'deny' });
    let granted: boolean | undefined;
    fake.permissionRequest!({}, 'media', (g) => (granted = g));
    expect(granted).toBe(false);
    expect(fake.permissionCheck!()).toBe(false);
  });

  test("the real trust check refuses another origin's frame and our own page's subframes", async () => {
    for (const frame of [{ url: 'https://evil.example/', parent: null }, { url: 'app://logitscope/index.html', parent: {} }, null]) {
      const reply = await fake.ipcRenderer(frame).invoke(requestChannel('runs.list'), {});
      expect(reply).toMatchObject({ ok: false, error: { code: 'forbidden_origin' } });
    }
  });

  test('the menu has Edit, View and Help, and Help opens the README and the protocol shipped with the app', () => {
    const labels = fake.menu!.map((m) => ('label' in m ? m.label : ''));
    expect(labels).toEqual(['File', 'Edit', 'View', 'Help']);
    const edit = fake.menu![1] as { submenu: { role?: string }[] };
    expect(edit.submenu.map((i) => i.role)).toEqual(expect.arrayContaining(['copy', 'paste', 'selectAll']));
    const help = fake.menu![3] as { submenu: { label: string; click: () => void }[] };
    for (const item of help.submenu) item.click();
    expect(fake.opened.map((p) => path.basename(p))).toEqual(['README.md', 'PROTOCOL.md']);
    for (const p of fake.opened) expect(fs.existsSync(p)).toBe(true);
  });

  test('requests wait for the engine, then load the demo, sweep with events in order, and show progress in the title and taskbar', async () => {
    const info = await call('app.info');
    expect(info.dbPath).toBe(dbPath);
    const state = await call<EngineState>('desktop.engine');
    expect(state).toMatchObject({ state: 'ready', restarts: 0, crash: null, logFile: engineLogPath(dbPath) });
    expect(state.startSeconds).toBeGreaterThan(0);
    console.log(`engine process: spawn to ready ${state.startSeconds!.toFixed(2)} s`);

    const model = await call('model.load', { dir: DEMO.modelDir });
    expect(model.config.nLayers).toBe(6);
    const { runId } = await call('sweep.start', demoSweep(24, 'round-trip'));
    await until(() => seen('sweep.finished', (p) => p.runId === runId), 'the sweep to finish');
    const ours = events.filter((e) => (e.payload as { requestId?: string }).requestId === 'round-trip');
    const kinds = ours.map((e) => e.name);
    expect(kinds.at(-1)).toBe('sweep.finished');
    expect(kinds.indexOf('sweep.progress')).toBeGreaterThan(kinds.lastIndexOf('sweep.preparing'));
    const done = ours.filter((e) => e.name === 'sweep.progress').map((e) => e.payload.progress.examplesDone as number);
    expect(done.length).toBeGreaterThan(1);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(ours.at(-1)!.payload.status).toBe('completed');

    const win = fake.windows[0];
    expect(win.titles.some((t) => /^Logitscope Lab — sweep \d+% \(\d+\/24\)$/.test(t))).toBe(true);
    expect(win.progress.some((p) => p > 0 && p <= 1)).toBe(true);
    expect(win.progress.at(-1)).toBe(-1);
    expect(win.title).toBe(APP_TITLE);
  });

  test('a sweep is cancelled through the relay and keeps its finished examples', async () => {
    const { runId } = await call('sweep.start', demoSweep(200, 'to-cancel'));
    await until(() => seen('sweep.progress', (p) => p.runId === runId), 'first progress');
    expect(await call('sweep.cancel', { runId })).toEqual({ cancelled: true });
    await until(() => seen('sweep.finished', (p) => p.runId === runId), 'the cancel to land');
    expect(events.find((e) => e.name === 'sweep.finished' && e.payload.runId === runId)!.payload.status).toBe('cancelled');
    const run = await call('runs.get', { runId });
    expect(run.examplesDone).toBeGreaterThan(0);
    expect(run.examplesDone).toBeLessThan(run.examplesPlanned);
  });

  test('SIGKILL of the engine mid-sweep: the window hears why, the run reads interrupted, the engine restarts with its model, and the resume equals an uninterrupted run', async () => {
    const before = await call<EngineState>('desktop.engine');
    const { runId } = await call('sweep.start', demoSweep(60, 'to-kill'));
    await until(() => seen('sweep.progress', (p) => p.runId === runId), 'first progress');
    const eventsBefore = events.length;
    process.kill(before.pid!, 'SIGKILL');

    await until(() => seen('sweep.finished', (p) => p.runId === runId && p.status === 'interrupted'), 'the interrupted run to be announced');
    await until(() => engineStates().some((s) => s.state === 'ready' && s.restarts === 1), 'the automatic restart');
    const crashed = engineStates().find((s) => s.state === 'stopped')!;
    expect(crashed).toMatchObject({ restarting: true, crash: { signal: 'SIGKILL', code: null } });
    expect(crashed.crash!.logTail.join('\n')).toContain('engine ready');
    expect(fs.readFileSync(engineLogPath(dbPath), 'utf8')).toContain('--- engine died: signal SIGKILL ---');
    expect(fake.windows[0].destroyed).toBe(false);
    expect(alive(before.pid!)).toBe(false);

    const after = await call<EngineState>('desktop.engine');
    expect(after).toMatchObject({ state: 'ready', restarts: 1, crash: { signal: 'SIGKILL' } });
    expect(after.pid).not.toBe(before.pid);
    await until(() => events.slice(eventsBefore).some((e) => e.name === 'model.changed'), 'the model to be loaded again');
    expect((await call('model.current')).dir).toBe(fs.realpathSync(DEMO.modelDir));
    const interrupted = await call('runs.get', { runId });
    expect(interrupted.status).toBe('interrupted');
    expect(interrupted.examplesDone).toBeLessThan(60);

    await call('sweep.resume', { runId, batchSize: 4, requestId: 'resumed' });
    await until(() => seen('sweep.finished', (p) => p.runId === runId && p.status === 'completed'), 'the resume to finish');
    const resumed = (await call('runs.export', { runId, format: 'csv' })).content as string;

    // The same sweep, never interrupted, in an engine over a database of its own.
    const clean = new EngineSupervisor({ nodePath: process.execPath, dbPath: path.join(tmp, 'clean.sqlite'), logFile: path.join(tmp, 'clean.log') });
    await clean.start();
    try {
      await clean.dispatch('model.load', { dir: DEMO.modelDir });
      const finished = new Promise<void>((resolve) => clean.onEvent((name, p) => name === 'sweep.finished' && resolve()));
      const started = await clean.dispatch('sweep.start', demoSweep(60, 'clean'));
      expect(started.ok).toBe(true);
      await finished;
      const whole = await clean.dispatch('runs.export', { runId: (started as { result: { runId: string } }).result.runId, format: 'csv' });
      expect(rowsOf(resumed)).toEqual(rowsOf((whole as { result: { content: string } }).result.content));
    } finally {
      await clean.stop();
    }
  });

  test('a second death is not restarted by itself: requests say so, and "Restart engine" brings it back', async () => {
    const { pid } = await call<EngineState>('desktop.engine');
    process.kill(pid!, 'SIGKILL');
    await until(() => engineStates().filter((s) => s.state === 'stopped').length === 2, 'the second death');
    expect(engineStates().at(-1)).toMatchObject({ state: 'stopped', restarting: false, crash: { signal: 'SIGKILL' } });
    expect(await bridge.call('runs.list', {})).toMatchObject({ ok: false, error: { code: 'engine_failed', message: expect.stringContaining('Restart engine') } });

    const restarted = await call<EngineState>('desktop.restartEngine');
    expect(restarted).toMatchObject({ state: 'ready', restarts: 2, crash: null });
    expect(Array.isArray(await call('runs.list'))).toBe(true);
  });

  test('Choose… returns only what the user picked; Show in folder opens only such files', async () => {
    fake.dialogAnswers.push({ canceled: true, filePaths: [] });
    expect(await call('desktop.pick', { kind: 'modelDir' })).toEqual({ paths: [] });
    fake.dialogAnswers.push({ canceled: false, filePaths: [DEMO.modelDir] });
    expect(await call('desktop.pick', { kind: 'modelDir' })).toEqual({ paths: [DEMO.modelDir] });
    expect(fake.dialogCalls.at(-1)).toMatchObject({ kind: 'open', options: { properties: ['openDirectory'] } });
    const data = path.join(tmp, 'a.jsonl');
    fake.dialogAnswers.push({ canceled: false, filePaths: [data, path.join(tmp, 'b.parquet')] });
    expect((await call('desktop.pick', { kind: 'datasetFiles' })).paths).toHaveLength(2);
    expect(fake.dialogCalls.at(-1)).toMatchObject({ kind: 'open', options: { properties: ['openFile', 'multiSelections'] } });

    expect(await call('desktop.showInFolder', { path: data })).toEqual({ shown: true });
    expect(await call('desktop.showInFolder', { path: engineLogPath(dbPath) })).toEqual({ shown: true });
    expect(await bridge.call('desktop.showInFolder', { path: '/etc/passwd' })).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'path' } });
    expect(fake.shownInFolder).toEqual([data, engineLogPath(dbPath)]);
    expect(await bridge.call('desktop.pick', { kind: 'anything' } as never)).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'kind' } });
  });

  test('Save exports a run to the file the user chose, named after the run, and saves figures from data URLs', async () => {
    const [run] = await call('runs.list', { status: 'completed' });
    await call('runs.update', { runId: run.id, name: 'demo: layers / all' });
    const out = path.join(tmp, 'chosen.csv');
    fake.dialogAnswers.push({ canceled: false, filePath: out });
    const saved = await call('desktop.saveExport', { runId: run.id, format: 'csv' });
    expect(saved).toMatchObject({ path: out });
    expect(saved.written).toBeGreaterThan(0);
    expect(path.basename(fake.dialogCalls.at(-1)!.options.defaultPath as string)).toBe(`demo-layers-all-${run.id.slice(0, 8)}.csv`);
    expect(fs.readFileSync(out, 'utf8')).toBe((await call('runs.export', { runId: run.id, format: 'csv' })).content);

    fake.dialogAnswers.push({ canceled: true });
    expect(await call('desktop.saveExport', { runId: run.id, format: 'json' })).toEqual({ path: null, written: 0 });

    const png = path.join(tmp, 'figure.png');
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
    fake.dialogAnswers.push({ canceled: false, filePath: png });
    expect(await call('desktop.saveFile', { fileName: 'precision.png', mimeType: 'image/png', content: `data:image/png;base64,${bytes.toString('base64')}` })).toEqual({ path: png });
    expect(fs.readFileSync(png)).toEqual(bytes);
    expect(await call('desktop.showInFolder', { path: png })).toEqual({ shown: true });

    fake.dialogAnswers.push({ canceled: false, filePath: path.join(tmp, 'no-such-dir', 'f.svg') });
    expect(await bridge.call('desktop.saveFile', { fileName: 'f.svg', mimeType: 'image/svg+xml', content: '<svg/>' })).toMatchObject({
      ok: false,
      error: { code: 'output_unwritable', path: path.join(tmp, 'no-such-dir', 'f.svg') },
    });
  });

  test('a second window on the same results cache is refused and the first comes to the front; another cache gets its own', async () => {
    const win = fake.windows[0];
    win.minimized = true;
    const focusedBefore = win.focused;
    const second = newFake('second');
    // Same appData as the first, as two launches of the app on one machine would have.
    second.app.setPath('appData', fake.app.getPath('appData'));
    const refused = await runDesktop(second, { nodePath: process.execPath, dbPath, rendererDir });
    expect(refused.primary).toBe(false);
    expect(refused.supervisor).toBeUndefined();
    expect(second.windows).toHaveLength(0);
    expect(second.app.quitted).toBe(true);
    expect(win.focused).toBe(focusedBefore + 1);
    expect(win.minimized).toBe(false);

    const other = newFake('other');
    other.app.setPath('appData', fake.app.getPath('appData'));
    const own = await runDesktop(other, { nodePath: process.execPath, dbPath: path.join(tmp, 'other.sqlite'), rendererDir });
    expect(own.primary).toBe(true);
    other.app.quit();
    await own.quitted;
  });
});

describe('quitting', () => {
  test('quit stops the engine (SIGTERM) and waits for it: no child process is left', async () => {
    const fake = newFake('quit');
    const desktop = await runDesktop(fake, { nodePath: process.execPath, dbPath: path.join(tmp, 'quit.sqlite'), rendererDir });
    const { pid } = await desktop.supervisor!.start();
    expect(alive(pid!)).toBe(true);
    fake.app.quit();
    expect(fake.app.quitted).toBe(false); // held until the engine is gone
    await desktop.quitted;
    expect(fake.app.quitted).toBe(true);
    expect(alive(pid!)).toBe(false);
    expect(fs.readFileSync(engineLogPath(path.join(tmp, 'quit.sqlite')), 'utf8')).toContain('engine stopping (SIGTERM)');
  });

  test('an engine that ignores SIGTERM is killed after the grace period', async () => {
    const fake = newFake('stuck');
    const desktop = await runDesktop(fake, { nodePath: process.execPath, dbPath: path.join(tmp, 'stuck.sqlite'), rendererDir, graceMs: 300 });
    const { pid } = await desktop.supervisor!.start();
    process.kill(pid!, 'SIGSTOP'); // a process that cannot handle its SIGTERM
    fake.app.quit();
    await desktop.quitted;
    expect(alive(pid!)).toBe(false);
    expect(fs.readFileSync(engineLogPath(path.join(tmp, 'stuck.sqlite')), 'utf8')).toContain('--- engine stopped: signal SIGKILL ---');
  });
});

describe('when the engine cannot run', () => {
  test('a results cache that cannot open stops the engine with its coded error, and it is not restarted in a loop', async () => {
    const fake = newFake('fatal');
    const notADb = path.join(tmp, 'a-directory.sqlite');
    fs.mkdirSync(notADb);
    const desktop = await runDesktop(fake, { nodePath: process.execPath, dbPath: notADb, rendererDir });
    const state = await desktop.supervisor!.start();
    expect(state).toMatchObject({ state: 'stopped', restarting: false, restarts: 0, crash: { code: 1, error: { code: expect.not.stringMatching(/unexpected/) } } });
    expect(state.crash!.logTail.join('\n')).toContain('the results cache cannot be opened');
    expect(fake.windows).toHaveLength(1);
    fake.app.quit();
    await desktop.quitted;
  });

  test('without the Node binary to run the engine on, the window explains how to start the app', async () => {
    const fake = newFake('no-node');
    const desktop = await runDesktop(fake, { nodePath: undefined, dbPath: path.join(tmp, 'no-node.sqlite'), rendererDir });
    expect(desktop.supervisor).toBeUndefined();
    expect(fake.errorBoxes[0].content).toContain('npm start');
    expect(fake.app.exitCode).toBe(1);
  });
});

test('no engine process outlives the windows that started it', async () => {
  const { execFileSync } = await import('node:child_process');
  const children = () => execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('engine-process.ts'));
  await until(() => children().length === 0, 'every engine process to exit', 10_000);
  expect(children()).toEqual([]);
});
