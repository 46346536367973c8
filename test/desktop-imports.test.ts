import path from 'node:path';
import { expect, test } from 'vitest';
import { reachable, runtimeImports } from '../scripts/import-graph.ts';

const repo = path.resolve(import.meta.dirname, '..');
const rel = (chain: string[]) => chain.map((p) => (path.isAbsolute(p) ? path.relative(repo, p) : p)).join(' → ');

test('nothing the Electron main entry loads reaches better-sqlite3 or onnxruntime-node (they live in the engine process)', () => {
  const graph = reachable(path.join(repo, 'src-main/electron.ts'));
  expect(graph.size).toBeGreaterThan(10);
  const native = [...graph.entries()].filter(([target]) => /^(better-sqlite3|onnxruntime-node)$|store\/sqlite\.ts$|engine\/ort-session\.ts$/.test(target));
  expect(native.map(([, chain]) => rel(chain))).toEqual([]);
  // The engine process, by contrast, reaches both: the walk would see an edge that went wrong.
  const engine = reachable(path.join(repo, 'src-main/engine-process.ts'));
  expect(engine.has('better-sqlite3')).toBe(true);
  expect(engine.has(path.join(repo, 'src-main/engine/ort-session.ts'))).toBe(true);
});

test('the import reader skips type-only imports and counts dynamic ones', () => {
  const { local, packages } = runtimeImports(path.join(repo, 'src-main/cli/serve.ts'));
  expect(local).toContain(path.join(repo, 'src-main/api/lab.ts')); // `await import('../api/lab.ts')`
  expect(packages).toContain('node:fs');
  const shell = runtimeImports(path.join(repo, 'src-main/desktop/shell.ts'));
  expect(shell.local).not.toContain(path.join(repo, 'src-main/desktop/electron-like.ts')); // import type
});
