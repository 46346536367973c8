/**
 * The import graph of the TypeScript sources. `imports` reads every import of a file, each marked
 * type-only or not (check-layers.ts counts both); `runtimeImports` and `reachable` are which module
 * loads which when it runs: type-only imports (`import type`, or every name marked `type`) are left
 * out, since tsx erases them; dynamic `import('…')` of a literal path counts, since it loads when reached.
 */
import fs from 'node:fs';
import path from 'node:path';

const STATEMENT = /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

/** One import of a file: where it points (relative ones as absolute paths, packages by name), and whether tsx erases it. */
export interface ImportEdge { target: string; local: boolean; typeOnly: boolean }

/** Every import statement of a file, type-only ones included and marked. */
export function imports(file: string): ImportEdge[] {
  const source = fs.readFileSync(file, 'utf8');
  const edges: ImportEdge[] = [];
  for (const m of source.matchAll(STATEMENT)) {
    const [, , typeKeyword, clause, fromSpec, bareSpec, dynamicSpec] = m;
    let typeOnly = typeKeyword !== undefined;
    if (!typeOnly && clause !== undefined && /^\{[^}]*\}$/.test(clause.trim())) {
      const names = clause.trim().slice(1, -1).split(',').map((n) => n.trim()).filter(Boolean);
      typeOnly = names.length > 0 && names.every((n) => n.startsWith('type '));
    }
    const spec = fromSpec ?? bareSpec ?? dynamicSpec;
    if (spec.startsWith('.')) edges.push({ target: path.resolve(path.dirname(file), spec), local: true, typeOnly });
    else edges.push({ target: spec.startsWith('node:') ? spec : spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/'), local: false, typeOnly });
  }
  return edges;
}

/** Every module a file loads at run time: relative ones as absolute paths, packages by name. */
export function runtimeImports(file: string): { local: string[]; packages: string[] } {
  const loaded = imports(file).filter((e) => !e.typeOnly);
  return { local: loaded.filter((e) => e.local).map((e) => e.target), packages: loaded.filter((e) => !e.local).map((e) => e.target) };
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
