/**
 * The app as a user meets it, for the browser end-to-end tests and the README's picture scripts:
 * the real renderer bundle built by vite, `startServer` over a real Lab (SQLite file, graph cache in
 * a temporary folder), and Debian's Chromium driven by playwright-core. Page errors, console
 * errors and CSP violations are collected, so a test can assert that nothing broke on the way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { build } from 'vite';
import { Lab } from '../../src-main/api/lab.ts';
import { startServer, type RunningServer } from '../../src-main/serve.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
/** Why the e2e suites are skipped where Chromium is missing; appended to their titles. */
export const SKIP_REASON = HAS_CHROMIUM ? '' : ' (skipped: /usr/bin/chromium is missing; apt-get install -y chromium)';
/** Without the background-networking flags Chromium keeps trying hosts this machine cannot reach. */
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
export const SHOTS = path.resolve('test-output/e2e');

export interface AppSession {
  lab: Lab;
  server: RunningServer;
  browser: Browser;
  page: Page;
  /** Page errors, console errors and CSP violations seen so far. */
  problems: string[];
  /** A full-page screenshot into test-output/e2e/<name>.png. */
  shot(name: string): Promise<void>;
  close(): Promise<void>;
}

export interface AppOptions {
  /** A temporary folder of the test's own: the renderer build, results database and graph cache go there. */
  tmp: string;
  /** Work on the Lab before the page opens (load a model, run a sweep). */
  prepare?: (lab: Lab) => Promise<void>;
  viewport?: { width: number; height: number };
  acceptDownloads?: boolean;
}

export async function openApp(opts: AppOptions): Promise<AppSession> {
  fs.mkdirSync(SHOTS, { recursive: true });
  const rendererDir = path.join(opts.tmp, 'renderer');
  await build({ configFile: path.resolve('vite.config.ts'), build: { outDir: rendererDir, emptyOutDir: true }, logLevel: 'warn' });
  const lab = await Lab.open({ dbPath: path.join(opts.tmp, 'results.sqlite'), cacheRoot: path.join(opts.tmp, 'graphs') });
  await opts.prepare?.(lab);
  const server = await startServer({ lab, rendererDir });
  // Chromium names downloads in the locale's charset: without a UTF-8 one (a bare environment) a
  // figure named "run · logit lens" downloads as "download".
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, env: { ...process.env, LANG: process.env.LANG || 'C.UTF-8' } });
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1440, height: 1000 }, acceptDownloads: opts.acceptDownloads ?? false });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
  await page.goto(server.url);
  return {
    lab,
    server,
    browser,
    page,
    problems,
    shot: async (name) => void (await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true })),
    close: async () => {
      await browser.close();
      await server.close();
      await lab.close();
    },
  };
}

/**
 * Resolves once the page's layout has stopped moving: fonts loaded, and the page's width and every
 * control's box the same over two animation frames (charts resize to their boxes a frame or two
 * after a tab shows). A condition to measure after, instead of a fixed wait.
 */
export async function layoutSettled(page: Page): Promise<void> {
  const boxes = () =>
    page.evaluate(async () => {
      await document.fonts.ready;
      await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
      const rects = [...document.querySelectorAll('button, input, select, a, canvas, table, [role="tab"]')].map((el) => {
        const r = el.getBoundingClientRect();
        return `${r.x},${r.y},${r.width},${r.height}`;
      });
      return `${document.documentElement.scrollWidth} ${rects.join(' ')}`;
    });
  let last = '';
  await expect.poll(async () => last === (last = await boxes()), { timeout: 15_000 }).toBe(true);
}
