/**
 * The run-time import graph of the TypeScript sources: which module loads which when it runs.
 * Type-only imports (`import type`, or every name marked `type`) are left out, since tsx erases
 * them; dynamic `import('…')` of a literal path counts, since it loads when reached.
 */
import fs from 'node:fs';
import path from 'node:path';

const STATEMENT = /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

/** Every module a file loads at run time: relative ones as absolute paths, packages by name. */
export function runtimeImports(file: string): { local: string[]; packages: string[] } {
  const source = fs.readFileSync(file, 'utf8');
  const local: string[] = [];
  const packages: string[] = [];
  for (const m of source.matchAll(STATEMENT)) {
    const [, , typeOnly, clause, fromSpec, bareSpec, dynamicSpec] = m;
    if (typeOnly) continue;
    if (clause !== undefined && /^\{[^}]*\}$/.test(clause.trim())) {
      const names = clause.trim().slice(1, -1).split(',').map((n) => n.trim()).filter(Boolean);
      if (names.length > 0 && names.every((n) => n.startsWith('type '))) continue;
    }
    const spec = fromSpec ?? bareSpec ?? dynamicSpec;
    if (spec.startsWith('.')) local.push(path.resolve(path.dirname(file), spec));
    else packages.push(spec.startsWith('node:') ? spec : spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/'));
  }
  return { local, packages };
}

/** Every file and package reachable from `entry`, with the chain that first reached each. */
export function reachable(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[path.resolve(entry), [path.resolve(entry)]]]);
  const queue = [path.resolve(entry)];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const { local, packages } = runtimeImports(file);
    for (const target of [...local, ...packages]) {
      if (seen.has(target)) continue;
      seen.set(target, [...seen.get(file)!, target]);
      if (local.includes(target) && /\.(ts|mts|js|mjs)$/.test(target) && fs.existsSync(target)) queue.push(target);
    }
  }
  return seen;
}
