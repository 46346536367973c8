/** The protocol's text filter: a record is kept only if it passes every rule given. */
export interface TextFilter {
  /** Keep if `text.split(' ').length < maxWords` (Python's `len(text.split(" "))`: single spaces, empty pieces count). */
  maxWords?: number;
  /** Keep if the text has fewer than `maxChars` characters, counted as Python's `len` does (code points). */
  maxChars?: number;
}
