/**
 * The whole app at a laptop's 1024×700 and at 1920×1080, in headless Chromium against `serve` and a
 * real Lab: a 28-layer random checkpoint (GPT-J's depth) with one finished sweep over two sources.
 * Every tab must fit the width (no page-wide horizontal scroll, no control cut off), the sidebar
 * collapses and gives its width to the results, the charts grow with the window, and the
 * inspector's 28-layer grid has a compact mode whose header stays in view while it scrolls.
 * Screenshots go to test-output/e2e/layout-*.png.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';
import { HAS_CHROMIUM, layoutSettled, openApp, SKIP_REASON, type AppSession } from './harness.ts';

const LAYERS = 28;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-layout-'));
const model = path.join(tmp, 'deep-gptj');
const data = path.join(tmp, 'lines.jsonl');

/** Controls whose box reaches past the right edge of the window: cut off for a user who cannot scroll the page sideways. */
async function cutOff(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const named = (el: Element) => el.getAttribute('aria-label') ?? (el.textContent ?? '').trim().slice(0, 40);
    return [...document.querySelectorAll('button, input, select, a, [role="tab"]')]
      .filter((el) => {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) return false; // not rendered (collapsed, hidden)
        // Inside a scroll box of its own (a wide table) it can be scrolled to; only the page itself must fit.
        for (let p = el.parentElement; p; p = p.parentElement) {
          const s = getComputedStyle(p);
          if (/(auto|scroll)/.test(s.overflowX) && p.scrollWidth > p.clientWidth) return false;
        }
        return r.right > width + 1;
      })
      .map(named);
  });
}

describe.skipIf(!HAS_CHROMIUM)(`the app's layout at 1024×700 and 1920×1080, in headless Chromium${SKIP_REASON}`, () => {
  let app: AppSession;
  let page: Page;

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 11, config: { n_layer: LAYERS, n_embd: 32, n_head: 4, rotary_dim: 4 } });
    const lines = Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: `Record ${i} describes a long afternoon by the water, and then some more.`, meta: { pile_set_name: ['Wikipedia (en)', 'Github'][i % 2] } }));
    fs.writeFileSync(data, lines.join('\n'));
    app = await openApp({
      tmp,
      viewport: { width: 1024, height: 700 },
      prepare: async (l) => {
        await l.call('model.load', { dir: model });
        const { runId } = await l.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'patchscope' }, { id: 'logitscope' }], layers: null, k: 5, name: 'deep sweep with a rather long name to test the table' });
        await l.settled(runId);
      },
    });
    page = app.page;
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: /^Open deep sweep/ }).click();
  });

  afterAll(async () => app?.close());

  test('at 1024×700 every tab fits the width: no page-wide horizontal scroll and no control cut off', async () => {
    // What each tab shows once its data has come: measured only after it is there and has stopped moving.
    const shown: Record<string, string> = { Charts: '.main-charts .canvas-box', Inspector: '.inspector-grid tbody tr', Runs: 'table.runs', Extract: '.extract-form' };
    for (const tab of Object.keys(shown)) {
      await page.getByRole('tab', { name: tab }).click();
      await page.locator(shown[tab]).first().waitFor();
      await layoutSettled(page);
      await app.shot(`layout-1024-${tab.toLowerCase()}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `${tab}: the page scrolls sideways by ${overflow} px`).toBeLessThanOrEqual(0);
      expect(await cutOff(page), `${tab}: controls past the right edge`).toEqual([]);
    }
    // The runs table is wider than the window here and scrolls sideways, but its actions stay pinned in view.
    await page.getByRole('tab', { name: 'Runs' }).click();
    const open = await page.getByRole('button', { name: /^Open deep sweep/ }).boundingBox();
    expect(open!.x + open!.width).toBeLessThanOrEqual(1024);
  });

  test('the sidebar collapses to give the results its width, by mouse or keyboard, and comes back', async () => {
    await page.getByRole('tab', { name: 'Charts' }).click();
    const toggle = page.getByRole('button', { name: 'Hide the set-up panel' });
    const chartWidth = () => page.locator('.main-charts').evaluate((el) => el.getBoundingClientRect().width);
    const before = await chartWidth();
    await expect.poll(() => page.locator('aside').isVisible()).toBe(true);
    await toggle.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('aside').isVisible()).toBe(false);
    await expect.poll(chartWidth).toBeGreaterThan(before + 250);
    await app.shot('layout-1024-sidebar-hidden');
    // The toggle keeps focus and its state is announced; the choice survives a reload.
    expect(await page.getByRole('button', { name: 'Show the set-up panel' }).getAttribute('aria-expanded')).toBe('false');
    await page.reload();
    await expect.poll(() => page.getByRole('button', { name: 'Show the set-up panel' }).count()).toBe(1);
    expect(await page.locator('aside').isVisible()).toBe(false);
    await page.getByRole('button', { name: 'Show the set-up panel' }).click();
    await expect.poll(() => page.locator('aside').isVisible()).toBe(true);
  });

  test("the inspector's 28-layer grid: compact mode shows one line per cell, and the header stays in view while it scrolls", async () => {
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: /^Open deep sweep/ }).click();
    await page.getByRole('tab', { name: 'Inspector' }).click();
    const grid = page.locator('.inspector-grid');
    await expect.poll(() => grid.locator('tbody tr').count(), { timeout: 15_000 }).toBe(LAYERS);
    const tall = await grid.evaluate((el) => el.getBoundingClientRect().height);
    await page.getByRole('checkbox', { name: /compact/i }).check();
    await expect.poll(() => grid.evaluate((el) => el.getBoundingClientRect().height)).toBeLessThan(tall / 2.5);
    // Compact cells still say which token is top-1 and how likely: the first list item of each cell.
    expect(await grid.locator('tbody td').first().locator('li').count()).toBe(1);
    const scroller = page.locator('.grid-scroll');
    await scroller.evaluate((el) => (el.scrollTop = el.scrollHeight));
    const header = await page.locator('.inspector-grid thead th').first().boundingBox();
    const box = await scroller.boundingBox();
    expect(header!.y, 'the header row is at the top of the scrolled grid').toBeGreaterThanOrEqual(box!.y - 1);
    expect(header!.y).toBeLessThan(box!.y + 40);
    await app.shot('layout-1024-inspector-compact');
  });

  test('at 1920×1080 the charts grow with the window', async () => {
    await page.getByRole('tab', { name: 'Charts' }).click();
    const height = () => page.locator('.main-charts .canvas-box').first().evaluate((el) => el.getBoundingClientRect().height);
    const small = await height();
    await page.setViewportSize({ width: 1920, height: 1080 });
    await expect.poll(height).toBeGreaterThan(small + 200);
    await app.shot('layout-1920-charts');
    await page.setViewportSize({ width: 1024, height: 700 });
  });

  test('nothing broke on the way: no page, console or CSP errors', () => {
    expect(app.problems).toEqual([]);
  });
});
