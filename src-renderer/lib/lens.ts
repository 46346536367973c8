/**
 * The logit-lens picture's numbers, apart from the page: what colours each cell under each
 * switch, the legend, and the picture as an SVG figure and as rows (CSV). Pure functions of an
 * `extract` reply, so the picture, its export and the tests read the same values.
 */
import { csvTable, type CsvValue } from '../../src-main/csv.ts';
import type { ExtractCell, ExtractColumn, ExtractView } from '../../src-main/api/contract.ts';
import { showToken } from './labels.ts';

export type LensColour = 'probability' | 'logprob' | 'rank' | 'entropy';
export type Pin = { id: number; text: string } | null;

/** Colour steps; classes lens-c0..lens-c9 (CSS classes, as the page's CSP allows no inline styles). */
export const STEPS = 10;
/** A sequential scale (viridis' hues), low to high; the SVG export uses the same. */
export const PALETTE = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'];
/** Cells with no value under the switch (a measure not there). */
export const NONE_COLOUR = '#d0d7de';

/** A value and its step, or null (the colour of "no value"), with the sentence hover and labels use. */
export interface CellValue {
  value: number | null;
  step: number | null;
  text: string;
}

const pct = (p: number) => `${Number((p * 100).toPrecision(2))}%`;
const stepOf = (fraction: number) => Math.max(0, Math.min(STEPS - 1, Math.floor(fraction * STEPS)));

/**
 * The entropy scale's top: ln(dVocab) nats, a uniform distribution over every row of the model's
 * head (10.83 for GPT-J). One fixed scale, so colours compare across cells, prompts and pictures.
 */
export const maxEntropy = (dVocab: number) => Math.log(Math.max(2, dVocab));

/**
 * The pinned token's rank (1 = top-1) and probability in this cell: the engine's exact numbers once
 * the extraction follows it (the reply's `follow`, in every cell), else from the cell's top-k while
 * they are computed (null outside it).
 */
export function pinIn(cell: ExtractCell, pin: { id: number }): { rank: number; prob: number } | null {
  if (cell.followProb != null && cell.followRank != null) return { rank: cell.followRank, prob: cell.followProb };
  const i = cell.topK.findIndex((t) => t.id === pin.id);
  return i < 0 ? null : { rank: i + 1, prob: cell.topK[i].prob };
}

/** A rank on a log scale, 1 (the top) to dVocab (the bottom): exact ranks run far beyond any top-k. */
const rankStep = (rank: number, dVocab: number) => stepOf(1 - Math.log(rank) / Math.log(Math.max(2, dVocab)));

/**
 * A cell's value under a switch. `entropy` is the engine's, of the full next-token distribution
 * (all dVocab probabilities, computed on the device), not of the top-k the reply carries.
 */
export function cellValue(cell: ExtractCell, colour: LensColour, pin: Pin, dVocab: number): CellValue {
  const k = cell.topK.length;
  if (colour === 'entropy') {
    const h = cell.entropy;
    if (h === null) return { value: null, step: null, text: 'entropy not measured' };
    return { value: h, step: stepOf(h / maxEntropy(dVocab)), text: `entropy ${h.toFixed(2)} nats` };
  }
  if (colour === 'logprob') {
    const what = pin ? showToken(pin.text) : 'top-1';
    const p = pin ? pinIn(cell, pin)?.prob : cell.topK[0]?.prob;
    if (p === undefined) return { value: null, step: null, text: `${what} not in the top-${k}` };
    const lp = Math.log(p);
    // ln p from ln(1/dVocab) (a uniform guess) up to 0: the same fixed scale as entropy, upside down.
    return { value: lp, step: stepOf(1 + lp / maxEntropy(dVocab)), text: `ln p(${what}) = ${lp.toFixed(2)} nats` };
  }
  if (pin) {
    const at = pinIn(cell, pin);
    if (!at) return { value: null, step: null, text: `${showToken(pin.text)} not in the top-${k}` };
    if (colour === 'rank') return { value: at.rank, step: rankStep(at.rank, dVocab), text: `${showToken(pin.text)} rank ${at.rank}, ${pct(at.prob)}` };
    return { value: at.prob, step: stepOf(at.prob), text: `p(${showToken(pin.text)}) = ${pct(at.prob)}` };
  }
  // No pin: the top-1 is rank 1 everywhere, so both switches colour by its probability.
  const p = cell.topK[0]?.prob ?? 0;
  return { value: p, step: stepOf(p), text: `top-1 ${pct(p)}` };
}

/** What the colour scale means, for the legend and the figure. */
export function scaleLabel(colour: LensColour, pin: Pin, k: number, dVocab: number): { title: string; low: string; high: string } {
  if (colour === 'entropy') return { title: 'entropy of the next-token distribution (nats)', low: '0', high: `${maxEntropy(dVocab).toFixed(2)} (uniform over ${dVocab})` };
  if (colour === 'logprob') {
    const what = pin ? showToken(pin.text) : 'the top-1 token';
    return { title: `log-probability of ${what}, nats (from ln 1/${dVocab})`, low: `−${maxEntropy(dVocab).toFixed(2)}`, high: '0' };
  }
  if (pin && colour === 'rank') return { title: `rank of ${showToken(pin.text)} over all ${dVocab} ids (log scale)`, low: `${dVocab}`, high: '1' };
  if (pin) return { title: `probability of ${showToken(pin.text)}`, low: '0', high: '1' };
  if (colour === 'rank') return { title: 'probability of the top-1 token (pin a token to colour by its rank: the top-1 is rank 1 everywhere)', low: '0', high: '1' };
  return { title: 'probability of the top-1 token', low: '0', high: '1' };
}

/** The reply's columns; a single-position reply is one column. */
export function columnsOf(r: ExtractView): ExtractColumn[] {
  return r.columns ?? [{ position: r.position, reference: r.reference, cells: r.cells }];
}

export function cellOf(column: ExtractColumn, technique: string, layer: number): ExtractCell | undefined {
  return column.cells.find((c) => c.technique === technique && c.layer === layer);
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ENTITIES[c]);
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** Words into lines of at most `max` characters (a long word gets a line of its own). */
export function wrapText(s: string, max: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of s.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > max) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

export interface LensFigure {
  svg: string;
  width: number;
  height: number;
}

/**
 * The picture as an SVG figure: title, prompt, colour scale, and one panel per technique (layers
 * as rows, positions as columns, each cell its top-1 on its colour). ✓-cells (top-1 = the model's
 * own there) get a white outline, padding ids a dashed one, as on the page.
 */
export function lensSvg(opts: { view: ExtractView; techniques: string[]; labelOf: (t: string) => string; colour: LensColour; pin: Pin; model: string }): LensFigure {
  const { view, techniques, labelOf, colour, pin } = opts;
  const columns = columnsOf(view);
  const k = view.cells[0]?.topK.length ?? 0;
  const cw = 64;
  const ch = 20;
  const left = 110;
  const scale = scaleLabel(colour, pin, k, view.dVocab);
  const prompt = view.tokens.map((t) => t.text).join('');
  const notes = [
    `prompt: ${JSON.stringify(clip(prompt, 120))} (${view.tokens.length} tokens${view.bos ? ', BOS first' : ''})`,
    `model: ${opts.model} · colour: ${scale.title}`,
    `outlined: top-1 = the model's own next token there · dashed red: a padding id (≥ ${view.paddingFrom}, never produced by the tokenizer)`,
    `parity at layer ${view.parity.layer}: ${view.parity.status} (tolerance ${view.parity.toleranceNats} nats)`,
  ];
  const width = Math.max(860, left + cw * columns.length + 30);
  // Lines wrap to the figure's width (DejaVu Sans: about 0.58 em a character, bold 0.62).
  const title = wrapText(`Logit-lens picture: ${techniques.map(labelOf).join(', ')}`, Math.floor((width - 40) / (18 * 0.62)));
  const noteLines = notes.flatMap((n) => wrapText(n, Math.floor((width - 40) / (12 * 0.58))));
  const titleH = 30 + 22 * (title.length - 1);
  const headerH = titleH + 10 + 18 * noteLines.length + 50;
  const panelH = 30 + ch * view.layers.length + 56;
  const height = headerH + panelH * techniques.length + 10;
  const text = (x: number, y: number, s: string, extra = '') => `<text x="${x}" y="${y}" ${extra}>${escape(s)}</text>`;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...title.map((line, i) => text(20, 30 + 22 * i, line, 'font-size="18" font-weight="bold"')),
    ...noteLines.map((n, i) => text(20, titleH + 22 + 18 * i, n, 'fill="#444"')),
  ];
  // The colour scale: ten steps, low to high.
  const sy = titleH + 22 + 18 * noteLines.length + 8;
  out.push(text(20, sy + 14, scale.low, 'text-anchor="start"'));
  PALETTE.forEach((c, i) => out.push(`<rect x="${60 + i * 24}" y="${sy}" width="24" height="18" fill="${c}"/>`));
  out.push(text(60 + STEPS * 24 + 8, sy + 14, scale.high), `<rect x="${60 + STEPS * 24 + 120}" y="${sy}" width="24" height="18" fill="${NONE_COLOUR}"/>`, text(60 + STEPS * 24 + 150, sy + 14, 'no value'));
  techniques.forEach((t, ti) => {
    const top = headerH + ti * panelH;
    out.push(text(20, top + 14, labelOf(t), 'font-size="14" font-weight="bold"'));
    const gy = top + 24;
    view.layers.forEach((layer, li) => {
      const y = gy + li * ch;
      out.push(text(left - 8, y + 14, layer === -1 ? 'emb' : `layer ${layer}`, 'text-anchor="end"'));
      columns.forEach((col, ci) => {
        const cell = cellOf(col, t, layer);
        if (!cell) return;
        const v = cellValue(cell, colour, pin, view.dVocab);
        const fill = v.step === null ? NONE_COLOUR : PALETTE[v.step];
        const x = left + ci * cw;
        const stroke = cell.top1 >= view.paddingFrom ? ' stroke="#cf222e" stroke-width="2" stroke-dasharray="3 2"' : '';
        out.push(`<rect x="${x + 1}" y="${y + 1}" width="${cw - 2}" height="${ch - 2}" fill="${fill}"${stroke}/>`);
        // White inside black: visible on every colour of the scale.
        if (cell.correct) out.push(`<rect x="${x + 2.5}" y="${y + 2.5}" width="${cw - 5}" height="${ch - 5}" fill="none" stroke="#24292f" stroke-width="1"/><rect x="${x + 3.5}" y="${y + 3.5}" width="${cw - 7}" height="${ch - 7}" fill="none" stroke="#ffffff" stroke-width="1"/>`);
        const ink = v.step !== null && v.step < 6 ? '#ffffff' : '#000000';
        out.push(text(x + cw / 2, y + 14, clip(showToken(cell.topK[0]?.text ?? ''), 8), `text-anchor="middle" font-size="11" fill="${ink}"`));
      });
    });
    const by = gy + view.layers.length * ch;
    columns.forEach((col, ci) => {
      const x = left + ci * cw + cw / 2;
      out.push(text(x, by + 16, clip(showToken(view.tokens[col.position].text), 9), 'text-anchor="middle" font-weight="bold"'));
      out.push(text(x, by + 32, `→${clip(showToken(col.reference.text), 8)}`, 'text-anchor="middle" fill="#555" font-size="10"'));
    });
    out.push(text(left - 8, by + 16, 'token', 'text-anchor="end" fill="#555"'), text(left - 8, by + 32, "model's next", 'text-anchor="end" fill="#555" font-size="10"'));
  });
  out.push('</svg>');
  return { svg: out.join('\n'), width, height };
}

/** Every (position, technique, layer) row of the reply, as the sweeps' CSV names its columns. */
export function lensCsv(view: ExtractView): string {
  // The sweeps' CSV's columns (the measures beside the surprisals; empty where not measured).
  const rows: CsvValue[][] = [['position', 'token', 'reference_top1', 'technique', 'layer', 'top1', 'correct', 'surprisal', 'surprisal_paper', 'kl', 'rank', 'entropy', 'top_k_ids', 'top_k_probs', 'top_k_padding']];
  for (const col of columnsOf(view)) {
    for (const c of col.cells) {
      rows.push([
        col.position, view.tokens[col.position].text, col.reference.id, c.technique, c.layer, c.top1, Number(c.correct), c.surprisal, c.surprisalPaper,
        c.kl, c.rank, c.entropy,
        c.topK.map((t) => t.id).join(' '), c.topK.map((t) => t.prob).join(' '), c.topK.filter((t) => t.id >= view.paddingFrom).map((t) => t.id).join(' '),
      ]);
    }
  }
  return csvTable(rows);
}
