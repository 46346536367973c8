/**
 * The Extract tab in headless Chromium against `serve` and a real Lab (tiny 3-layer checkpoint):
 * a typed prompt, a clicked position, the layer × technique grid, custom target prompts, a followed
 * token, keyboard-only use, the too-long message, "save as example" into Runs and its export, and
 * the view's numbers against `logitscope extract --json` on the same checkpoint.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExtractView } from '../../src-main/api/contract.ts';
import type { RunningServer } from '../../src-main/serve.ts';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';
import { HAS_CHROMIUM, openApp, SKIP_REASON, type AppSession } from './harness.ts';

const LAYERS = 3;
const PROMPT = 'The Eiffel Tower is in';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-extract-'));
const model = path.join(tmp, 'tiny-gptj');

describe.skipIf(!HAS_CHROMIUM)(`the Extract tab in headless Chromium${SKIP_REASON}`, () => {
  let app: AppSession;
  let server: RunningServer;
  let page: Page;
  const shot = (name: string) => app.shot(name);
  const grid = () => page.getByRole('table', { name: /Top-k next tokens/ });
  const tokens = () => page.getByRole('listbox', { name: 'Prompt tokens: the position to read' }).getByRole('option');
  /** The reply the page got to its next `extract` request, as the view shows it. */
  const nextReply = () => page.waitForResponse((r) => r.url().endsWith('/api/extract')).then(async (r) => (await r.json()).result as ExtractView);

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 5 });
    app = await openApp({ tmp, acceptDownloads: true, prepare: async (l) => void (await l.call('model.load', { dir: model })) });
    ({ server, page } = app);
    await page.getByRole('tab', { name: 'Extract' }).click();
  });

  afterAll(async () => app?.close());

  test('a typed prompt shows as tokens with their ids; a clicked token is the position; Run shows the grid and the chart', async () => {
    await page.getByLabel('Prompt', { exact: true }).fill(PROMPT);
    await expect.poll(() => tokens().count()).toBeGreaterThan(4);
    // The last token is chosen until another is clicked.
    expect(await tokens().last().getAttribute('aria-selected')).toBe('true');
    expect(await page.locator('[role=option][aria-selected=true]').count()).toBe(1);
    expect(await tokens().nth(0).getAttribute('title')).toMatch(/^position 0 · id \d+$/);
    await tokens().nth(2).click();
    expect(await tokens().nth(2).getAttribute('aria-selected')).toBe('true');
    const reply = nextReply();
    await page.getByRole('button', { name: 'Run extraction' }).click();
    expect((await reply).position).toBe(2);
    await expect.poll(() => grid().locator('tbody tr').count()).toBe(LAYERS);
    expect(await grid().locator('thead th').count()).toBe(1 + 3);
    expect(await grid().locator('td').first().innerText()).toMatch(/s \d+\.\d\d nats · s\(paper\) \d+\.\d\d nats/);
    // At the last layer the logit lens reads the model's own output: ✓.
    expect(await page.locator(`#extract-cell-logit_lens-${LAYERS - 1}`).getAttribute('class')).toMatch(/hit/);
    const values = JSON.parse((await page.locator('figure.mini-chart').getAttribute('data-values'))!) as Record<string, number[]>;
    expect(Object.keys(values)).toEqual(['logit_lens', 'patchscope', 'logitscope']);
    expect(values.logit_lens).toHaveLength(LAYERS);
    await shot('extract-01-grid');
  });

  test('a custom target prompt with a fixed target layer runs as a fourth technique; an empty one is refused beside it', async () => {
    await page.getByRole('button', { name: 'Add target prompt' }).click();
    await page.getByRole('button', { name: 'Run extraction' }).click();
    await expect.poll(() => page.getByRole('group', { name: 'Custom target prompts (patchscopes)' }).getByRole('alert').innerText()).toMatch(/Target prompt 1 is empty/);
    await page.getByLabel('Target prompt 1', { exact: true }).fill('hello->there;?->');
    await page.getByLabel('Target layer').selectOption('fixed');
    await page.getByLabel('Target prompt 1: fixed target layer').fill('1');
    const reply = nextReply();
    await page.getByRole('button', { name: 'Run extraction' }).click();
    expect((await reply).techniques.at(-1)).toEqual({ id: 'custom_1', prompt: 'hello->there;?->', targetLayer: 1 });
    await expect.poll(() => grid().locator('thead th').count()).toBe(1 + 4);
    expect(await grid().locator('thead').innerText()).toContain('custom 1: "hello->there;?->"');
  });

  test('clicking a top-k token follows it: the chart plots its exact probability at every layer, in or out of the top-k', async () => {
    const pick = page.locator('#extract-cell-logitscope-0').getByRole('button').nth(1);
    const name = (await pick.getAttribute('aria-label'))!;
    const id = Number(/\(id (\d+)\)$/.exec(name)![1]);
    const reply = nextReply();
    await pick.click();
    const view = await reply;
    expect(view.follow?.id).toBe(id);
    await expect.poll(() => page.locator('figure.mini-chart figcaption').innerText()).toMatch(/followed token/);
    const values = JSON.parse((await page.locator('figure.mini-chart').getAttribute('data-values'))!) as Record<string, (number | null)[]>;
    const cell = view.cells.find((c) => c.technique === 'logitscope' && c.layer === 0)!;
    expect(Math.abs(values.logitscope[0]! - cell.topK[1].prob)).toBeLessThan(1e-6);
    // Every cell has the engine's number: its top-k probability where the token is there (float32
    // rounding apart), and a number, never a gap, where it is not; the rank counts from 1.
    for (const c of view.cells) {
      const at = c.topK.findIndex((t) => t.id === id);
      expect(typeof c.followProb).toBe('number');
      if (at >= 0) {
        expect(Math.abs(c.followProb! - c.topK[at].prob)).toBeLessThan(1e-6);
        expect(c.followRank).toBe(at + 1);
      } else expect(c.followRank!).toBeGreaterThan(c.topK.length);
    }
    expect(values.logitscope.every((v) => typeof v === 'number')).toBe(true);
    expect(await page.getByRole('button', { name, pressed: true }).count()).toBeGreaterThan(0);
    await shot('extract-02-follow');
    await page.getByRole('button', { name: 'Stop following' }).click();
    await expect.poll(() => page.locator('figure.mini-chart figcaption').innerText()).toBe("p(model's top-1) per layer");
  });

  test('keyboard only: arrow keys move the position along the tokens and Enter runs', async () => {
    await page.getByRole('button', { name: 'Remove target prompt 1' }).click();
    await tokens().nth(2).focus();
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowRight');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('prompt-token-1');
    expect(await tokens().nth(1).getAttribute('aria-selected')).toBe('true');
    const reply = nextReply();
    await page.keyboard.press('Enter');
    expect((await reply).position).toBe(1);
    await expect.poll(() => page.locator('#extract-result-heading').innerText()).toMatch(/^Position 1:/);
  });

  test('the view shows the numbers `logitscope extract --json` gives for the same prompt and position', async () => {
    const out = path.join(tmp, 'cli.json');
    const env = { ...process.env, LOGITSCOPE_DB: path.join(tmp, 'cli.sqlite'), LOGITSCOPE_CACHE_DIR: path.join(tmp, 'graphs') };
    await promisify(execFile)(process.execPath, ['bin/logitscope.js', 'extract', '--model', model, '--text', PROMPT, '--position', '1', '--top-k', '10', '--json', out], { env });
    const cli = JSON.parse(fs.readFileSync(out, 'utf8')).examples[0] as {
      position: number; reference_top1: number; layers: { technique: string; layer: number; top1: number; surprisal: number; top_k: { ids: number[]; probs: number[] } }[];
    };
    expect(cli.position).toBe(1);
    const values = JSON.parse((await page.locator('figure.mini-chart').getAttribute('data-values'))!) as Record<string, number[]>;
    for (const r of cli.layers) {
      // The grid's first token button names the top-1 id; the chart holds p(model's top-1).
      const top1 = await page.locator(`#extract-cell-${r.technique}-${r.layer}`).getByRole('button').first().getAttribute('aria-label');
      expect(Number(/\(id (\d+)\)$/.exec(top1!)![1])).toBe(r.top1);
      expect(Math.abs(values[r.technique][r.layer] - Math.exp(-r.surprisal))).toBeLessThan(1e-6);
    }
    const shown: ExtractView = await page.evaluate(async (token) => (await (await fetch('/api/extract', { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ text: 'The Eiffel Tower is in', position: 1, k: 10, bos: false }) })).json()).result, server.token);
    expect(shown.reference.id).toBe(cli.reference_top1);
    for (const r of cli.layers) {
      const cell = shown.cells.find((c) => c.technique === r.technique && c.layer === r.layer)!;
      cell.topK.forEach((t, i) => {
        expect(t.id).toBe(r.top_k.ids[i]);
        expect(Math.abs(t.prob - r.top_k.probs[i])).toBeLessThan(1e-6);
      });
    }
  });

  test('"Save as example" stores a one-example run that shows in Runs and exports', async () => {
    await page.getByLabel('Example name (optional)').fill('eiffel at 1');
    await page.getByRole('button', { name: 'Save as example' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Saved as' }).innerText()).toMatch(/Saved as the one-example run “eiffel at 1”/);
    await shot('extract-03-saved');
    await page.getByRole('button', { name: 'Show in Runs' }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'eiffel at 1' }) });
    await expect.poll(() => row.count()).toBe(1);
    await shot('extract-04-runs');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export eiffel at 1 as JSON' }).click()]);
    const exported = JSON.parse(fs.readFileSync((await download.path())!, 'utf8'));
    expect(exported.examples).toHaveLength(1);
    expect(exported.examples[0].position).toBe(1);
    expect(exported.examples[0].layers).toHaveLength(3 * LAYERS);
    await page.getByRole('tab', { name: 'Extract' }).click();
  });

  test('a prompt longer than the model reads gets its message beside the prompt; an empty one too', async () => {
    await page.getByLabel('Prompt', { exact: true }).fill('word '.repeat(200));
    const note = page.locator('.extract-form').getByRole('alert').first();
    await expect.poll(() => note.innerText()).toMatch(/more than the model's n_positions \(128\)[\s\S]*prompt_too_long · text/);
    await shot('extract-05-too-long');
    await page.getByLabel('Prompt', { exact: true }).fill('');
    await page.getByRole('button', { name: 'Run extraction' }).click();
    await expect.poll(() => note.innerText()).toMatch(/Type a prompt first/);
  });

  describe('the logit-lens picture (every position)', () => {
    /** "The" comes twice: two columns, not one. */
    const REPEATED = 'The cat saw the dog. The cat';
    const panel = (t: string) => page.locator(`table.lens[data-technique="${t}"]`);
    const cellClass = (t: string, li: number, ci: number) => page.locator(`#lens-${t}-${li}-${ci}`).getAttribute('class');
    let view: ExtractView;

    test('a typed prompt read at every position shows one panel per technique, layers × positions, repeated tokens as separate columns', async () => {
      await page.getByLabel('Prompt', { exact: true }).fill(REPEATED);
      await expect.poll(() => tokens().count()).toBeGreaterThan(6);
      await page.getByLabel('every position (the logit-lens picture)').check();
      const reply = nextReply();
      await page.getByRole('button', { name: 'Run extraction' }).click();
      view = await reply;
      const n = view.tokens.length;
      expect(view.columns!.map((c) => c.position)).toEqual(Array.from({ length: n }, (_, i) => i));
      await expect.poll(() => page.locator('table.lens').count()).toBe(3);
      // Two techniques at least side by side: the lens and the logitscope, each layers × positions.
      for (const t of ['logit_lens', 'logitscope']) {
        expect(await panel(t).locator('tbody tr').count()).toBe(LAYERS);
        expect(await panel(t).locator('thead th').count()).toBe(1 + n);
        expect(await panel(t).locator('tbody button').count()).toBe(LAYERS * n);
      }
      const heads = await panel('logit_lens').locator('thead th code').allInnerTexts();
      expect(heads).toEqual(view.tokens.map((t) => t.text.replace(/^ /, '␣')));
      expect(heads.filter((h) => h === '␣cat')).toHaveLength(2);
      // Each cell says its top-1; cells whose top-1 is the model's own there are marked: at the last layer the lens's always are.
      const last = view.columns![n - 1].cells.find((c) => c.technique === 'logit_lens' && c.layer === LAYERS - 1)!;
      expect(await page.locator(`#lens-logit_lens-${LAYERS - 1}-${n - 1}`).getAttribute('aria-label')).toContain(`top-1 ${last.topK[0].text.replace(/^ /, '␣')}`);
      for (let ci = 0; ci < n; ci++) expect(await cellClass('logit_lens', LAYERS - 1, ci)).toMatch(/\bhit\b/);
      // Coloured by the top-1's probability: the class is its tenth.
      const c0 = view.columns![0].cells.find((c) => c.technique === 'logitscope' && c.layer === 0)!;
      expect(await cellClass('logitscope', 0, 0)).toContain(`lens-c${Math.min(9, Math.floor(c0.topK[0].prob * 10))}`);
      await expect.poll(() => page.locator('#extract-result-heading .parity summary').innerText()).toBe('parity ✓');
      await shot('extract-06-picture');
    });

    test('hovering a cell shows its top-k; clicking it opens its position\'s full grid with that cell in focus', async () => {
      const hover = page.getByRole('region', { name: 'Cell under the pointer' });
      await page.locator('#lens-logitscope-1-2').hover();
      await expect.poll(() => hover.locator('h4').innerText()).toMatch(/^logitscope · layer 1 · position 2/);
      const cell = view.columns![2].cells.find((c) => c.technique === 'logitscope' && c.layer === 1)!;
      expect(await hover.locator('li').count()).toBe(cell.topK.length);
      expect(await hover.getByRole('button').first().getAttribute('aria-label')).toBe(`Pin token ${cell.topK[0].text.replace(/^ /, '␣')} (id ${cell.topK[0].id})`);
      await shot('extract-07-hover');
      await page.locator('#lens-logitscope-1-2').click();
      await expect.poll(() => page.locator('#lens-grid-heading').innerText()).toMatch(/^Position 2:/);
      expect(await page.locator('#lens-grid-logitscope-1').getAttribute('class')).toMatch(/focused/);
    });

    test('padding ids (at or past the tokenizer size, 50257 here) are marked in a hovered top-k and in the full grid', async () => {
      expect(view.paddingFrom).toBe(50257);
      // The random head ranks some of its 143 padding rows into a top-20 (seeded, so always the same cells).
      const techniques = view.techniques.map((t) => t.id);
      const found = view.columns!.flatMap((col, ci) => col.cells.map((c) => ({ c, ci, li: c.layer, pads: c.topK.filter((t) => t.id >= 50257).length }))).find((x) => x.pads > 0);
      expect(found).toBeDefined();
      const { c, ci, li, pads } = found!;
      expect(techniques).toContain(c.technique);
      await page.locator(`#lens-${c.technique}-${li}-${ci}`).hover();
      const hover = page.getByRole('region', { name: 'Cell under the pointer' });
      await expect.poll(() => hover.locator('.pad-tag').count()).toBe(pads);
      await page.locator(`#lens-${c.technique}-${li}-${ci}`).click();
      await page.getByLabel('show every top-k token').check();
      await expect.poll(() => page.locator(`#lens-grid-${c.technique}-${li} .pad-tag`).count()).toBe(pads);
      await page.getByLabel('show every top-k token').uncheck();
    });

    test('pinning a token from a cell follows it: every cell is coloured by its exact probability or rank (never grey, also outside the top-20), its trajectory drawn per technique; entropy switches the colours', async () => {
      const hover = page.getByRole('region', { name: 'Cell under the pointer' });
      const cell = view.columns![2].cells.find((c) => c.technique === 'logitscope' && c.layer === 1)!;
      const pinned = cell.topK[1];
      // Selects position 2 (the trajectory's) and leaves the pointer on the cell.
      await page.locator('#lens-logitscope-1-2').click();
      const reply = nextReply();
      await hover.getByRole('button', { name: `Pin token ${pinned.text.replace(/^ /, '␣')} (id ${pinned.id})` }).click();
      // The pin runs the extraction again, following the token: the engine's numbers for every cell.
      const followed = await reply;
      expect(followed.follow?.id).toBe(pinned.id);
      await expect.poll(() => page.locator('figure.mini-chart figcaption').innerText()).toMatch(/across layers at position 2/);
      const values = JSON.parse((await page.locator('figure.mini-chart').getAttribute('data-values'))!) as Record<string, (number | null)[]>;
      expect(Object.keys(values)).toEqual(['logit_lens', 'patchscope', 'logitscope']);
      for (const [t, series] of Object.entries(values)) {
        series.forEach((v, layer) => expect(v).toBe(followed.columns![2].cells.find((x) => x.technique === t && x.layer === layer)!.followProb));
      }
      const classOfPinned = (c: ExtractView['cells'][number], mode: 'probability' | 'rank') => {
        const fraction = mode === 'probability' ? c.followProb! : 1 - Math.log(c.followRank!) / Math.log(followed.dVocab);
        return `lens-c${Math.max(0, Math.min(9, Math.floor(fraction * 10)))}`;
      };
      let outside = 0;
      const check = async (mode: 'probability' | 'rank') => {
        for (const [ci, col] of followed.columns!.entries()) {
          for (const c of col.cells.filter((x) => x.technique === 'logitscope')) {
            const cls = await cellClass('logitscope', c.layer, ci);
            expect(cls).toContain(classOfPinned(c, mode));
            expect(cls).not.toContain('lens-none');
            if (!c.topK.some((x) => x.id === pinned.id)) {
              outside++;
              // Outside the cell's top-20, the token still has its number.
              expect(c.followRank!).toBeGreaterThan(c.topK.length);
              if (mode === 'rank') expect(await page.locator(`#lens-logitscope-${c.layer}-${ci}`).getAttribute('aria-label')).toContain(`rank ${c.followRank}`);
            }
          }
        }
      };
      await check('probability');
      expect(outside).toBeGreaterThan(0);
      await expect.poll(() => page.locator('.lens-legend').innerText()).not.toMatch(/grey|not in the top/);
      await shot('extract-08-pinned');
      await page.getByRole('button', { name: 'Rank', exact: true }).click();
      await check('rank');
      await expect.poll(() => page.locator('.lens-legend').innerText()).toMatch(/over all 50400 ids \(log scale\)/);
      await shot('extract-08b-pinned-rank');
      await page.getByRole('button', { name: 'Entropy', exact: true }).click();
      // The engine's entropy of each cell's full next-token distribution, on one scale 0..ln(dVocab) nats:
      // every cell's class is its tenth, and its label says the value the reply carries.
      expect(view.dVocab).toBe(50400);
      const hMax = Math.log(view.dVocab);
      for (const [ci, col] of view.columns!.entries()) {
        for (const c of col.cells.filter((x) => x.technique === 'logit_lens')) {
          expect(c.entropy!).toBeGreaterThan(0);
          expect(c.entropy!).toBeLessThanOrEqual(hMax + 1e-4);
          expect(await cellClass('logit_lens', c.layer, ci)).toContain(`lens-c${Math.max(0, Math.min(9, Math.floor((c.entropy! / hMax) * 10)))}`);
          expect(await page.locator(`#lens-logit_lens-${c.layer}-${ci}`).getAttribute('aria-label')).toContain(`entropy ${c.entropy!.toFixed(2)} nats`);
        }
      }
      await expect.poll(() => page.locator('.lens-legend').innerText()).toMatch(/entropy of the next-token distribution \(nats\):\s*0[\s\S]*10\.83 \(uniform over 50400\)/);
      // The side panel shows the hovered cell's entropy.
      const hovered = view.columns![2].cells.find((x) => x.technique === 'logitscope' && x.layer === 1)!;
      await page.locator('#lens-logitscope-1-2').hover();
      await expect.poll(() => hover.locator('p.hint').innerText()).toContain(`entropy ${hovered.entropy!.toFixed(2)} nats (next-token distribution)`);
      await page.getByRole('button', { name: 'Probability', exact: true }).click();
    });

    test('a typed token can be pinned; a text of more than one token is refused beside the box', async () => {
      await page.getByLabel('Pin a token').fill(' cat dog');
      await page.getByRole('button', { name: 'Pin', exact: true }).click();
      await expect.poll(() => page.locator('.lens-bar + * [role=alert], .lens-bar ~ [role=alert]').first().innerText()).toMatch(/is 2 tokens; pin one token/);
      await page.getByLabel('Pin a token').fill(' cat');
      await page.getByRole('button', { name: 'Pin', exact: true }).click();
      const cat = view.tokens.find((t) => t.text === ' cat')!;
      await expect.poll(() => page.locator('.lens-pin').innerText()).toContain(`(id ${cat.id})`);
      const unpinned = nextReply();
      await page.getByRole('button', { name: 'Unpin' }).click();
      expect((await unpinned).follow).toBeUndefined();
    });

    test('keyboard: one tab stop per panel, arrow keys move between cells, Enter opens the cell', async () => {
      const stops = await panel('logit_lens').locator('button[tabindex="0"]').count();
      expect(stops).toBe(1);
      await page.locator('#lens-logit_lens-0-0').focus();
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('ArrowDown');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('lens-logit_lens-1-2');
      expect(await panel('logit_lens').locator('button[tabindex="0"]').getAttribute('id')).toBe('lens-logit_lens-1-2');
      await page.keyboard.press('End');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe(`lens-logit_lens-1-${view.tokens.length - 1}`);
      await expect.poll(() => page.getByRole('region', { name: 'Cell under the pointer' }).locator('h4').innerText()).toMatch(/^logit lens · layer 1 · position/);
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('#lens-grid-heading').innerText()).toMatch(new RegExp(`^Position ${view.tokens.length - 1}:`));
    });

    test('the picture saves as SVG and PNG with title, prompt, technique and colour scale, and its rows as CSV and JSON', async () => {
      // The keyboard test left a cell focused, its top-k box beside it: Escape dismisses it.
      await page.keyboard.press('Escape');
      await expect.poll(() => page.locator('.lens-hover.floating').count()).toBe(0);
      const save = async (name: string) => {
        const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name }).click()]);
        return { file: (await download.path())!, name: download.suggestedFilename() };
      };
      const svg = await save('Save picture as SVG');
      expect(svg.name).toMatch(/^logit-lens-The_cat_saw_the_dog_The_cat\.svg$/);
      const text = fs.readFileSync(svg.file, 'utf8');
      expect(text).toContain('Logit-lens picture: logit lens, token-identity patchscope, logitscope');
      expect(text).toContain('prompt: &quot;The cat saw the dog. The cat&quot;');
      expect(text).toContain('probability of the top-1 token');
      expect(text).toContain('parity at layer 2: pass');
      expect((text.match(/<rect [^>]*fill="#[0-9a-f]{6}"\/>/g) ?? []).length).toBeGreaterThanOrEqual(3 * LAYERS * view.tokens.length);
      const png = await save('Save picture as PNG');
      const bytes = fs.readFileSync(png.file);
      expect(bytes.subarray(1, 4).toString()).toBe('PNG');
      fs.copyFileSync(png.file, path.join('test-output', 'e2e', 'extract-09-picture-export.png'));
      const csv = fs.readFileSync((await save('Save rows as CSV')).file, 'utf8').trim().split('\r\n');
      expect(csv[0]).toBe('position,token,reference_top1,technique,layer,top1,correct,surprisal,surprisal_paper,kl,rank,entropy,top_k_ids,top_k_probs,top_k_padding');
      // The token's text may hold a comma: the measures are read from the end (three list fields after them).
      const c0 = view.columns![0].cells[0];
      expect(csv[1].split(',').slice(-6, -3)).toEqual([String(c0.kl), String(c0.rank), String(c0.entropy)]);
      expect(csv).toHaveLength(1 + view.tokens.length * 3 * LAYERS);
      const json = JSON.parse(fs.readFileSync((await save('Save rows as JSON')).file, 'utf8'));
      expect(json.examples.map((e: { position: number }) => e.position)).toEqual(view.columns!.map((c) => c.position));
      expect(json.parity.status).toBe('pass');
    });

    test('saved, the picture is a run of one example per position whose header carries the parity badge', async () => {
      await page.getByLabel('Example name (optional)').fill('cat picture');
      await page.getByRole('button', { name: 'Save as examples (one per position)' }).click();
      await expect.poll(() => page.getByRole('status').filter({ hasText: 'Saved as' }).innerText()).toMatch(new RegExp(`run of ${view.tokens.length} examples “cat picture”`));
      await page.getByRole('button', { name: 'Show in Runs' }).click();
      await page.getByRole('button', { name: 'Open cat picture' }).click();
      const badge = page.locator('#run-title .parity');
      await expect.poll(() => badge.locator('summary').innerText()).toBe('parity ✓');
      await badge.locator('summary').click();
      await expect.poll(() => badge.innerText()).toMatch(/At the last layer \(2\)[\s\S]*logit_lens: matches over 8 rows/);
      await shot('extract-10-run-parity');
      await badge.locator('summary').click();
      await page.getByRole('tab', { name: 'Extract' }).click();
      await page.getByLabel('the chosen position (every layer × technique, top-k)').check();
    });
  });

  test('every control has an accessible name, and nothing broke: no page, console or CSP errors', async () => {
    const unnamed = await page.$$eval('button, input, select, textarea, [role=option]', (els) =>
      els.filter((el) => !((el as HTMLInputElement).labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.textContent?.trim())).map((el) => el.outerHTML.slice(0, 80)),
    );
    expect(unnamed).toEqual([]);
    expect(app.problems).toEqual([]);
  });
});
