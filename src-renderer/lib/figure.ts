/**
 * A chart as a figure for a paper: an SVG drawn from the numbers themselves (not a screenshot of
 * the canvas), with the title, the metric and its convention, the runs and n written into the
 * image, and the legend beside the plot. The PNG export is this SVG rasterized at 2×, so both
 * say the same thing; the CSV is the same numbers as rows.
 */
import { csvTable, type CsvValue } from '../../src-main/csv.ts';
import { colourOf, dashOf, type ChartRun } from './series.ts';

export interface FigureSpec {
  title: string;
  /** Under the title: the metric and its convention, the runs and n, the interval method. */
  notes: string[];
  yLabel: string;
  runs: ChartRun[];
  labelOf: (technique: string) => string;
  range?: { min: number; max: number };
}

const W = 960;
const H = 600;
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ENTITIES[c]);
const num = (x: number) => Number(x.toFixed(2));

/** About five round steps covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const span = hi - lo || 1;
  const raw = span / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

export function figureSvg(f: FigureSpec): string {
  const top = 40 + 18 * f.notes.length + 16;
  const legendW = 240;
  const box = { left: 80, top, right: W - legendW - 20, bottom: H - 60 };
  const points = f.runs.flatMap((r) => r.series.flatMap((s) => s.points));
  const layers = [...new Set(points.map((p) => p.layer))].sort((a, b) => a - b);
  const values = points.flatMap((p) => [p.mean, p.low, p.high]).filter((v): v is number => v !== null && Number.isFinite(v));
  let [lo, hi] = f.range ? [f.range.min, f.range.max] : [Math.min(0, ...values), Math.max(...values, 0)];
  if (!f.range) [lo, hi] = [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05];
  const [x0, x1] = [layers[0] ?? 0, layers.at(-1) ?? 1];
  const x = (l: number) => num(box.left + ((l - x0) / (x1 - x0 || 1)) * (box.right - box.left));
  const y = (v: number) => num(box.bottom - ((v - lo) / (hi - lo || 1)) * (box.bottom - box.top));
  const text = (tx: number, ty: number, s: string, extra = '') => `<text x="${tx}" y="${ty}" ${extra}>${escape(s)}</text>`;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    text(20, 30, f.title, 'font-size="18" font-weight="bold"'),
    ...f.notes.map((n, i) => text(20, 52 + 18 * i, n, 'fill="#444"')),
  ];
  for (const t of ticks(lo, hi)) {
    out.push(`<line x1="${box.left}" x2="${box.right}" y1="${y(t)}" y2="${y(t)}" stroke="#e5e5e5"/>`, text(box.left - 8, y(t) + 4, String(t), 'text-anchor="end"'));
  }
  const every = Math.ceil(layers.length / 16);
  layers.forEach((l, i) => {
    if (i % every === 0 || i === layers.length - 1) out.push(text(x(l), box.bottom + 18, l === -1 ? 'emb' : String(l), 'text-anchor="middle"'));
  });
  out.push(
    `<rect x="${box.left}" y="${box.top}" width="${box.right - box.left}" height="${box.bottom - box.top}" fill="none" stroke="#888"/>`,
    text((box.left + box.right) / 2, H - 20, 'layer (output of block l)', 'text-anchor="middle"'),
    text(20, (box.top + box.bottom) / 2, f.yLabel, `text-anchor="middle" transform="rotate(-90 20 ${(box.top + box.bottom) / 2})"`),
  );
  if (lo < 0 && hi > 0) out.push(`<line x1="${box.left}" x2="${box.right}" y1="${y(0)}" y2="${y(0)}" stroke="#555" stroke-width="1"/>`);

  const legend: string[] = [];
  f.runs.forEach((r, i) => {
    const dash = dashOf(i).join(' ');
    for (const s of r.series) {
      const c = colourOf(s.technique);
      const banded = s.points.filter((p) => p.low !== null && p.high !== null && Number.isFinite(p.low) && Number.isFinite(p.high));
      if (banded.length > 1) {
        const edge = [...banded.map((p) => `${x(p.layer)},${y(p.high!)}`), ...banded.reverse().map((p) => `${x(p.layer)},${y(p.low!)}`)];
        out.push(`<polygon points="${edge.join(' ')}" fill="${c}" fill-opacity="${i === 0 ? 0.18 : 0.09}" stroke="none"/>`);
      }
      const line = s.points.filter((p) => Number.isFinite(p.mean)).map((p) => `${x(p.layer)},${y(p.mean)}`);
      out.push(`<polyline points="${line.join(' ')}" fill="none" stroke="${c}" stroke-width="2" stroke-dasharray="${dash}"/>`);
      for (const p of s.points) if (Number.isFinite(p.mean)) out.push(`<circle cx="${x(p.layer)}" cy="${y(p.mean)}" r="3" fill="${c}"/>`);
      legend.push(`${f.labelOf(s.technique)}${f.runs.length > 1 ? ` · ${r.label}` : ''}|${c}|${dash}`);
    }
  });
  legend.forEach((entry, i) => {
    const [label, c, dash] = entry.split('|');
    const ly = box.top + 10 + 20 * i;
    const lx = box.right + 20;
    out.push(`<line x1="${lx}" x2="${lx + 28}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2.5" stroke-dasharray="${dash}"/>`, text(lx + 36, ly + 4, label.length > 30 ? `${label.slice(0, 29)}…` : label));
  });
  out.push('</svg>');
  return out.join('\n');
}

/** The SVG rasterized at `scale`× as a PNG data URL (a white background is part of the SVG); `size` for figures other than the charts' 960×600. */
export async function svgToPng(svg: string, scale = 2, size = { width: W, height: H }): Promise<string> {
  const image = new Image();
  image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = size.width * scale;
  canvas.height = size.height * scale;
  const ctx = canvas.getContext('2d')!;
  ctx.scale(scale, scale);
  ctx.drawImage(image, 0, 0, size.width, size.height);
  return canvas.toDataURL('image/png');
}

/** The chart's numbers, one row per run, technique and layer. */
export function figureCsv(f: FigureSpec): string {
  const rows: CsvValue[][] = [['run', 'run_id', 'technique', 'layer', 'n', 'mean', 'low', 'high']];
  for (const r of f.runs) {
    for (const s of r.series) for (const p of s.points) rows.push([r.label, r.runId, s.technique, p.layer, p.n, p.mean, p.low, p.high]);
  }
  return csvTable(rows);
}
