/**
 * Reference curves for the charts: the built-in tables shipped in docs/reference, and a table the
 * user picked, both read by the one parser (data/reference-curve.ts), so a bad file is refused
 * with every problem named before anything is drawn.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REFERENCE_DIR } from '../app-paths.ts';
import { parseReferenceCurve } from '../data/reference-curve.ts';
import { LogitscopeError } from '../errors.ts';
import type { Reply } from './contract.ts';
import type { Handlers, RequestsOf } from './handlers.ts';

/** `references.*`: they need neither a model nor the results cache. */
export function referenceHandlers(): Handlers<RequestsOf<'references'>> {
  return {
    'references.list': async () => listReferences(),
    'references.get': async (p) => getReference(p.name),
    'references.parse': async (p) => parseReference(p.name, p.text),
  };
}

const isTable = (file: string) => /\.(json|csv)$/i.test(file);

/** The built-in tables by file name; a file that does not parse is left out of the list (and refused by `getReference`). */
export function listReferences(dir = REFERENCE_DIR): Reply<'references.list'> {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter(isTable).sort() : [];
  return files.flatMap((name) => {
    try {
      const { source, model, rows } = getReference(name, dir);
      return [{ name, source, ...(model !== undefined && { model }), rows: rows.length }];
    } catch {
      return [];
    }
  });
}

export function getReference(name: string, dir = REFERENCE_DIR): Reply<'references.get'> {
  // A name, never a path: only the shipped tables can be read this way.
  if (name !== path.basename(name) || !isTable(name) || !fs.existsSync(path.join(dir, name))) {
    throw new LogitscopeError('argument_invalid', `no built-in reference "${name}"`, 'name');
  }
  return parseReference(name, fs.readFileSync(path.join(dir, name), 'utf8'));
}

export function parseReference(name: string, text: string): Reply<'references.parse'> {
  return { name, ...parseReferenceCurve(text, name) };
}
