/**
 * How a token's vocabulary entry spells bytes of text, in the two styles the supported families
 * use, and the display forms built from those bytes. Both styles reduce to bytes first, so one
 * display rule serves every family: a token whose bytes are whole UTF-8 characters shows as text,
 * a partial character shows its non-ASCII bytes as `<0xE2>`.
 */

/**
 * - `byte-level`: GPT-2's byte-level BPE (GPT-J, Pythia, Qwen2, Llama 3): every byte has a
 *   printable symbol, a space is `Ġ`.
 * - `sentencepiece`: SentencePiece-style BPE (Llama 2, Mistral, Gemma): pieces are UTF-8 text with
 *   `▁` for a space, and bytes the vocabulary lacks are byte-fallback tokens `<0x0A>`.
 */
export type TokenStyle = 'byte-level' | 'sentencepiece';

/** SentencePiece's visible space. */
export const SP_SPACE = '\u2581';

/**
 * GPT-2's byte-level alphabet, symbol -> byte: printable Latin-1 bytes stand for themselves, the
 * other bytes were shifted to U+0100 onward. Used to check a vocabulary's coverage and to show a
 * partial UTF-8 character byte by byte, which the library's decoder would turn into an anonymous "\uFFFD".
 */
export const BYTE_OF_SYMBOL: ReadonlyMap<string, number> = (() => {
  const table = new Map<string, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table.set(String.fromCharCode(printable ? b : 256 + shifted++), b);
  }
  return table;
})();

const SYMBOL_OF_BYTE: readonly number[] = (() => {
  const codes: number[] = [];
  for (const [symbol, b] of BYTE_OF_SYMBOL) codes[b] = symbol.charCodeAt(0);
  return codes;
})();

/** The byte-fallback piece of byte `b`, as SentencePiece names it: `<0x0A>`. */
export const byteToken = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

const BYTE_TOKEN = /^<0x([0-9A-F]{2})>$/;
const utf8 = new TextEncoder();

/** The bytes of text a (non-added) vocabulary entry stands for. */
export function tokenBytes(style: TokenStyle, token: string): number[] {
  if (style === 'byte-level') return Array.from(token, (c) => BYTE_OF_SYMBOL.get(c) ?? 0x3f);
  const byte = BYTE_TOKEN.exec(token);
  if (byte) return [parseInt(byte[1], 16)];
  return [...utf8.encode(token.replaceAll(SP_SPACE, ' '))];
}

/** The vocabulary entries that could spell exactly `text` as one token, most usual first (the inverse of tokenBytes). */
export function tokenSpellings(style: TokenStyle, text: string): string[] {
  const bytes = [...utf8.encode(text)];
  if (style === 'byte-level') return [String.fromCharCode(...bytes.map((b) => SYMBOL_OF_BYTE[b]))];
  return bytes.length === 1 ? [text.replaceAll(' ', SP_SPACE), byteToken(bytes[0])] : [text.replaceAll(' ', SP_SPACE)];
}

/** Bytes of the UTF-8 sequence a lead byte starts (1 for ASCII and for a byte that cannot lead one). */
export function utf8Length(b: number): number {
  return b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? (b <= 0xef ? 3 : 1) : b >= 0xc2 && b <= 0xdf ? 2 : 1;
}

export function decodeStrict(bytes: readonly number[]): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/** One token's display form from its bytes: its text, or ASCII with `<0xNN>` for the bytes of a partial character. */
export function displayBytes(bytes: readonly number[]): string {
  return decodeStrict(bytes) ?? bytes.map((b) => (b < 0x80 ? String.fromCharCode(b) : byteToken(b))).join('');
}

/**
 * Display forms of a run of tokens given as (byte, owning token) pairs: each whole UTF-8 character
 * goes to the token holding its last byte, so a token that only starts one shows as ""; a byte
 * that is not part of a whole character shows as `<0xNN>` in its own token.
 */
export function displayRun(bytes: readonly number[], owner: readonly number[]): Map<number, string> {
  const shown = new Map<number, string>();
  for (let i = 0; i < bytes.length; ) {
    const n = utf8Length(bytes[i]);
    const char = n > 1 && i + n <= bytes.length ? decodeStrict(bytes.slice(i, i + n)) : bytes[i] < 0x80 ? String.fromCharCode(bytes[i]) : undefined;
    const width = char === undefined ? 1 : n;
    const at = owner[i + width - 1];
    shown.set(at, (shown.get(at) ?? '') + (char ?? byteToken(bytes[i])));
    for (let j = i; j < i + width; j++) if (!shown.has(owner[j])) shown.set(owner[j], '');
    i += width;
  }
  return shown;
}
