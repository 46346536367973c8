/**
 * The desktop window, as close as this machine gets without the Electron binary: the real
 * renderer bundle and the real preload bundle (dist/electron/preload.cjs, built by
 * electron.config.ts) in headless Chromium; the real desktop main process (desktop/shell.ts) with
 * a fake Electron module in this test's process, where the Node builds of better-sqlite3 and
 * onnxruntime-node are refused as Electron refuses them; and a real engine process on this Node
 * with the built-in demo model.
 *
 * Chromium plays Electron's part: app://logitscope/ is served by the shell's own protocol handler
 * (its CSP included), the preload's require('electron') gets contextBridge and an ipcRenderer that
 * reach the shell's ipcMain with the page's frame as the sender, and the shell's
 * webContents.send reaches the preload's listener.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EVENT_CHANNEL } from '../../src-main/api/ipc.ts';
import { DEMO } from '../../src-main/app-paths.ts';
import { runDesktop, type Desktop } from '../../src-main/desktop/shell.ts';
import { refuseNodeBuildsOfNativeModules } from '../fixtures/electron-abi.ts';
import { FakeElectron } from '../fixtures/fake-electron.ts';
import { CHROMIUM, HAS_CHROMIUM, SHOTS, SKIP_REASON } from './harness.ts';

/** Where Chromium loads the page; requests to it are answered by the shell's app:// handler. */
const ORIGIN = 'http://logitscope.test';
const toAppUrl = (url: string) => url.replace(`${ORIGIN}/`, 'app://logitscope/');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'desktop-window-'));

/** Runs the preload bundle as Electron would, with `require('electron')` answered by the page's stand-ins. */
function preloadHarness(preloadSource: string): string {
  return `(() => {
    const listeners = [];
    const electron = {
      contextBridge: { exposeInMainWorld: (key, value) => Object.defineProperty(window, key, { value, enumerable: true }) },
      ipcRenderer: {
        invoke: (channel, ...args) => window.__electronInvoke(channel, args),
        on: (channel, listener) => { listeners.push([channel, listener]); },
      },
    };
    window.__electronEmit = (channel, args) => { for (const [c, l] of listeners) if (c === channel) l({ sender: 'ipcRenderer' }, ...args); };
    const module = { exports: {} };
    (function (require, module, exports) { ${preloadSource} \n})((name) => { if (name === 'electron') return electron; throw new Error('a sandboxed preload can only require electron, not ' + name); }, module, module.exports);
  })();`;
}

describe.skipIf(!HAS_CHROMIUM)(`the desktop window: real renderer and preload in Chromium, real shell and engine process${SKIP_REASON}`, () => {
  const fake = new FakeElectron(path.join(tmp, 'appData'), path.join(tmp, 'downloads'));
  const dbPath = path.join(tmp, 'results.sqlite');
  let desktop: Desktop;
  let browser: Browser;
  let page: Page;
  let restoreDlopen: () => void;
  let shownAt = 0;
  let launchedAt = 0;
  const problems: string[] = [];
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const enginePid = () => desktop.supervisor!.state().pid!;

  beforeAll(async () => {
    restoreDlopen = refuseNodeBuildsOfNativeModules();
    fs.mkdirSync(SHOTS, { recursive: true });
    fs.mkdirSync(path.join(tmp, 'downloads'));
    const rendererDir = path.join(tmp, 'renderer');
    await build({ configFile: path.resolve('vite.config.ts'), build: { outDir: rendererDir, emptyOutDir: true }, logLevel: 'warn' });
    await build({ configFile: path.resolve('electron.config.ts'), build: { outDir: path.join(tmp, 'electron'), emptyOutDir: true }, logLevel: 'warn' });
    const preload = fs.readFileSync(path.join(tmp, 'electron', 'preload.cjs'), 'utf8');

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
    await page.addInitScript(preloadHarness(preload));
    await page.exposeBinding('__electronInvoke', ({ frame }: { frame: Frame }, channel: string, args: unknown[]) =>
      fake.ipcRenderer({ url: toAppUrl(frame.url()), parent: frame.parentFrame() ? {} : null }).invoke(channel, ...args),
    );
    fake.toRenderer.on(EVENT_CHANNEL, (_event, ...args) => void page.evaluate(([c, a]) => (window as never as { __electronEmit(c: string, a: unknown[]): void }).__electronEmit(c, a), [EVENT_CHANNEL, args] as const).catch(() => {}));
    await page.route(`${ORIGIN}/**`, async (route) => {
      const response = await fake.protocolHandler!(new Request(toAppUrl(route.request().url())));
      await route.fulfill({ status: response.status, headers: Object.fromEntries(response.headers), body: Buffer.from(await response.arrayBuffer()) });
    });

    launchedAt = performance.now();
    desktop = await runDesktop(fake, { nodePath: process.execPath, dbPath, rendererDir });
    await page.goto(toAppUrl(fake.windows[0].url).replace('app://logitscope/', `${ORIGIN}/`));
    await page.getByRole('heading', { name: 'Logitscope Lab', level: 1 }).waitFor();
    shownAt = performance.now();
  });

  afterAll(async () => {
    await browser?.close();
    fake.app.quit();
    await desktop?.quitted;
    restoreDlopen?.();
  });

  test('the window shows at once, says the engine is starting, then ready, and runs the demo in one click', async () => {
    console.log(`desktop stand-in: page drawn ${((shownAt - launchedAt) / 1000).toFixed(2)} s after the shell started`);
    await page.getByText(/desktop · engine (starting|ready)/).waitFor();
    await page.getByText('desktop · engine ready').waitFor({ timeout: 60_000 });
    expect(desktop.supervisor!.state().startSeconds).toBeGreaterThan(0);

    await page.getByRole('button', { name: 'Run the demo' }).first().click();
    await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 120_000 }).toBe('completed');
    const win = fake.windows[0];
    expect(win.titles.some((t) => /— sweep \d+%/.test(t))).toBe(true);
    expect(win.progress.at(-1)).toBe(-1);
    await shot('desktop-demo');
  });

  test('"Choose…" fills the checkpoint directory and the dataset files from native dialogs', async () => {
    fake.dialogAnswers.push({ canceled: false, filePaths: [path.join(tmp, 'some', 'checkpoint')] });
    await page.getByRole('button', { name: 'Choose the checkpoint directory' }).click();
    await expect.poll(() => page.getByRole('textbox', { name: 'Checkpoint directory' }).inputValue()).toBe(path.join(tmp, 'some', 'checkpoint'));
    fake.dialogAnswers.push({ canceled: false, filePaths: ['/data/a.jsonl', '/data/b.parquet'] });
    await page.getByRole('button', { name: 'Choose dataset files' }).click();
    await expect.poll(() => page.getByRole('textbox', { name: 'Dataset files, one path per line' }).inputValue()).toBe('/data/a.jsonl\n/data/b.parquet');
    fake.dialogAnswers.push({ canceled: true, filePaths: [] });
    await page.getByRole('button', { name: 'Choose the checkpoint directory' }).click();
    await expect.poll(() => fake.dialogAnswers.length).toBe(0);
    expect(await page.getByRole('textbox', { name: 'Checkpoint directory' }).inputValue()).toBe(path.join(tmp, 'some', 'checkpoint'));
    await page.getByRole('textbox', { name: 'Checkpoint directory' }).fill(DEMO.modelDir);
  });

  test('an export goes through the Save dialog to the chosen file, and "Show in folder" opens it', async () => {
    await page.getByRole('tab', { name: 'Runs' }).click();
    const out = path.join(tmp, 'downloads', 'chosen-demo.csv');
    fake.dialogAnswers.push({ canceled: false, filePath: out });
    await page.getByRole('button', { name: /as CSV$/ }).first().click();
    await page.getByText(`Saved to ${out}`).waitFor();
    expect(fs.readFileSync(out, 'utf8')).toMatch(/^run_id,example,/);
    expect(path.dirname(fake.dialogCalls.at(-1)!.options.defaultPath as string)).toBe(path.join(tmp, 'downloads'));
    await page.getByRole('button', { name: 'Show in folder' }).click();
    await expect.poll(() => fake.shownInFolder).toEqual([out]);
    await shot('desktop-saved');
  });

  test('an engine killed mid-way raises the banner with the signal and its last log lines, the page stays, and the engine comes back', async () => {
    await page.getByRole('tab', { name: 'Charts' }).click();
    const firstPid = enginePid();
    process.kill(firstPid, 'SIGKILL');
    const banner = page.getByRole('alert').filter({ hasText: 'The engine process stopped' });
    await banner.getByText('killed by SIGKILL').waitFor();
    await banner.getByText(/It was restarted, with demo loaded again/).waitFor({ timeout: 60_000 });
    await banner.getByText('Its last log lines').click();
    await expect.poll(() => banner.locator('pre').innerText()).toContain('engine ready');
    await page.getByText('desktop · engine ready').waitFor();
    await shot('desktop-engine-restarted');

    process.kill(enginePid(), 'SIGKILL');
    await banner.getByText('It is not restarted by itself again').waitFor({ timeout: 60_000 });
    await page.getByText('desktop · engine stopped').waitFor();
    await shot('desktop-engine-stopped');
    await banner.getByRole('button', { name: 'Show the log file' }).click();
    await expect.poll(() => fake.shownInFolder.at(-1)).toBe(desktop.supervisor!.state().logFile);
    await banner.getByRole('button', { name: 'Restart engine' }).click();
    await page.getByText('desktop · engine ready').waitFor({ timeout: 60_000 });
    await expect.poll(() => banner.count()).toBe(0);
    expect(enginePid()).not.toBe(firstPid);
    // The runs of the first engine are all there for the third.
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: /as CSV$/ }).first().waitFor();
  });

  test('nothing broke on the way: no page errors, console errors or CSP violations', () => {
    expect(problems).toEqual([]);
  });
});
