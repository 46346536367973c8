import { type Issue, LogitscopeError } from '../errors.ts';

/**
 * A published per-layer table to put beside your own curves: the seed project's GPT-J numbers, a
 * paper's figure read off by hand, another lab's run. Read from JSON or CSV, checked as a whole
 * (every bad row is reported at once, by line or index), and drawn as a dashed series named by
 * its source. Format: docs/PROTOCOL.md, "Reference curves".
 */

/** The metrics a reference row may give; the names are the export's column names. */
export const REFERENCE_METRICS = ['precision_at_1', 'surprisal', 'surprisal_paper', 'kl', 'rank', 'entropy'] as const;
export type ReferenceMetric = (typeof REFERENCE_METRICS)[number];

export interface ReferenceRow {
  /** A technique id as runs name them (`logit_lens`, `patchscope`, `logitscope`, …), or the source's own name. */
  technique: string;
  layer: number;
  metric: ReferenceMetric;
  value: number;
  n?: number;
  low?: number;
  high?: number;
}

export interface ReferenceCurve {
  /** Who published it; named in the legend and in exported figures. */
  source: string;
  model?: string;
  /** How the numbers were made, in the source's words. */
  note?: string;
  rows: ReferenceRow[];
}

const MAX_ISSUES = 20;

/** Reads a reference table from a file's text; `name` (the file name) picks JSON or CSV and names a CSV's source. */
export function parseReferenceCurve(text: string, name: string): ReferenceCurve {
  const curve = /\.csv$/i.test(name) ? fromCsv(text, name) : fromJson(text, name);
  if (curve.rows.length === 0) throw new LogitscopeError('reference_parse', 'the reference table has no rows', name);
  return curve;
}

function fromJson(text: string, name: string): ReferenceCurve {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new LogitscopeError('reference_parse', `not JSON (${(e as Error).message}); a reference is a .json object or a .csv table`, name);
  }
  if (!isRecord(raw) || !Array.isArray(raw.rows)) {
    throw new LogitscopeError('reference_parse', 'a JSON reference is an object with "source" and "rows": [{technique, layer, metric, value, n?, low?, high?}]', name);
  }
  const issues: Issue[] = [];
  if (typeof raw.source !== 'string' || raw.source.trim() === '') issues.push({ path: 'source', message: 'must name who published the numbers' });
  const rows = raw.rows.flatMap((r, i): Located[] => {
    const at = `rows[${i}]`;
    if (!isRecord(r)) issues.push({ path: at, message: 'must be an object' });
    const row = isRecord(r) ? checkRow(r, at, issues) : undefined;
    return row ? [{ row, at }] : [];
  });
  const optionalText = (key: string) => (typeof raw[key] === 'string' ? { [key]: raw[key] } : {});
  return finish({ source: String(raw.source), ...optionalText('model'), ...optionalText('note') }, rows, issues, name);
}

function fromCsv(text: string, name: string): ReferenceCurve {
  const lines = text.split(/\r?\n/).map((l, i) => ({ line: i + 1, cells: splitCsvLine(l) })).filter((l) => l.cells.some((c) => c !== ''));
  const header = lines.shift();
  const required = ['layer', 'technique', 'metric', 'value'];
  const missing = required.filter((c) => !header?.cells.includes(c));
  if (!header || missing.length > 0) {
    throw new LogitscopeError('reference_parse', `a CSV reference needs the header columns ${required.join(', ')} (and optionally n, low, high); missing ${missing.join(', ')}`, name);
  }
  const issues: Issue[] = [];
  const rows = lines.flatMap(({ line, cells }): Located[] => {
    const record: Record<string, unknown> = {};
    header.cells.forEach((column, i) => {
      if (cells[i] !== undefined && cells[i] !== '') record[column] = column === 'technique' || column === 'metric' ? cells[i] : Number(cells[i]);
    });
    const row = checkRow(record, `line ${line}`, issues);
    return row ? [{ row, at: `line ${line}` }] : [];
  });
  return finish({ source: name.replace(/\.csv$/i, '') }, rows, issues, name);
}

function checkRow(r: Record<string, unknown>, at: string, issues: Issue[]): ReferenceRow | undefined {
  const before = issues.length;
  const bad = (field: string, message: string) => issues.push({ path: `${at}.${field}`, message });
  if (typeof r.technique !== 'string' || r.technique === '') bad('technique', 'must be a technique name');
  if (!Number.isInteger(r.layer) || (r.layer as number) < -1) bad('layer', 'must be an integer ≥ −1 (−1 = the embeddings, l = the output of block l)');
  if (!REFERENCE_METRICS.includes(r.metric as ReferenceMetric)) bad('metric', `must be one of ${REFERENCE_METRICS.join(', ')}`);
  if (typeof r.value !== 'number' || !Number.isFinite(r.value)) bad('value', 'must be a finite number');
  if (r.n !== undefined && (!Number.isInteger(r.n) || (r.n as number) < 1)) bad('n', 'must be a whole number of examples ≥ 1');
  for (const bound of ['low', 'high'] as const) {
    if (r[bound] !== undefined && (typeof r[bound] !== 'number' || !Number.isFinite(r[bound]))) bad(bound, 'must be a finite number');
  }
  if (issues.length > before) return undefined;
  const value = r.value as number;
  if ((r.low !== undefined && (r.low as number) > value) || (r.high !== undefined && (r.high as number) < value)) {
    bad('low', 'the interval must contain the value (low ≤ value ≤ high)');
    return undefined;
  }
  const optional = (key: 'n' | 'low' | 'high') => (r[key] !== undefined ? { [key]: r[key] as number } : {});
  return { technique: r.technique as string, layer: r.layer as number, metric: r.metric as ReferenceMetric, value, ...optional('n'), ...optional('low'), ...optional('high') };
}

/** A checked row and where it was read (`rows[3]`, `line 4`), for the messages about it. */
interface Located {
  row: ReferenceRow;
  at: string;
}

function finish(head: Omit<ReferenceCurve, 'rows'>, rows: Located[], issues: Issue[], name: string): ReferenceCurve {
  const seen = new Set<string>();
  for (const { row: r, at } of rows) {
    const key = `${r.technique}|${r.metric}|${r.layer}`;
    if (seen.has(key)) issues.push({ path: at, message: `${r.technique} ${r.metric} at layer ${r.layer} is given twice` });
    seen.add(key);
  }
  if (issues.length > 0) {
    const shown = issues.slice(0, MAX_ISSUES);
    const more = issues.length > MAX_ISSUES ? ` (first ${MAX_ISSUES} shown)` : '';
    throw new LogitscopeError('reference_parse', `${issues.length} problem${issues.length === 1 ? '' : 's'} in the reference table${more}`, name, shown);
  }
  return { ...head, rows: rows.map((l) => l.row) };
}

/** One CSV line's cells: commas separate, double quotes enclose, "" inside quotes is a quote. */
function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted && ch === '"' && line[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      cells.push(cell.trim());
      cell = '';
    } else cell += ch;
  }
  cells.push(cell.trim());
  return cells;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
