import { describe, expect, it } from 'vitest';
import { csvField, csvLine, csvTable } from '../src-main/csv.ts';
import { parseCsv } from './fixtures/csv.ts';

describe('the CSV writer', () => {
  it('quotes a field with a comma, a quote, a \\n or a \\r, doubling its quotes, and leaves the rest bare', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('carriage\rreturn')).toBe('"carriage\rreturn"');
    expect(csvField(0.1)).toBe('0.1');
  });

  it('writes a list space-separated in one field, a boolean as 1 or 0 and null as an empty field', () => {
    expect(csvLine([[1, 2, 3], true, false, null, 'x'])).toBe('1 2 3,1,0,,x');
  });

  it('ends every line in CRLF, and a table reads back field for field', () => {
    const rows = [['id', 'text'], [1, 'a,"b"\r\nc'], [2, '']];
    const text = csvTable(rows);
    expect(text.endsWith('\r\n')).toBe(true);
    expect(parseCsv(text)).toEqual(rows.map((r) => r.map(String)));
  });
});
