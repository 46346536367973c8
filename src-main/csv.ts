/**
 * The one CSV writer (RFC 4180): the run exports (store/export.ts), the figure and lens CSVs of the
 * renderer. A pure base module, beside errors.ts, so that the store below the API and the renderer
 * above it both import it. Lines end in CRLF, as RFC 4180 says and Excel expects.
 */

/** A field: a list is written space-separated inside one field, a boolean as 1 or 0, null as empty. */
export type CsvValue = string | number | boolean | null | readonly (number | string)[];

export const CSV_EOL = '\r\n';

/** One field, quoted when it holds a comma, a quote or a line break (\n or \r), its quotes doubled. */
export function csvField(v: CsvValue): string {
  const s = v === null ? '' : typeof v === 'boolean' ? String(Number(v)) : Array.isArray(v) ? v.join(' ') : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One line of fields, without its line end. */
export function csvLine(fields: readonly CsvValue[]): string {
  return fields.map(csvField).join(',');
}

/** A whole table, header first, every line ended. */
export function csvTable(rows: Iterable<readonly CsvValue[]>): string {
  let out = '';
  for (const row of rows) out += csvLine(row) + CSV_EOL;
  return out;
}
