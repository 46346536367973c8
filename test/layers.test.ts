import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { checkLayers } from '../scripts/check-layers.ts';

const repo = path.resolve(import.meta.dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'layers-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(root: string, files: Record<string, string>): string {
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return root;
}

test('every import of src-main and src-renderer points down the layer table, type imports included, with no circle', () => {
  expect(checkLayers(repo).map((o) => `${o.file} → ${o.target ?? ''}: ${o.why}`)).toEqual([]);
});

test('an upward edge (a type import too), a circle and a file outside the table are each named with their file', () => {
  const root = write(path.join(tmp, 'bad'), {
    'src-main/engine/engine.ts': "import type { Lab } from '../api/lab.ts';\nexport const x = 1;\n",
    'src-main/api/lab.ts': "import { x } from '../engine/engine.ts';\nexport class Lab {}\n",
    'src-main/sweep/a.ts': "import { b } from './b.ts';\nexport const a = 1;\n",
    'src-main/sweep/b.ts': "import { a } from './a.ts';\nexport const b = 2;\n",
    'src-main/cli/runs.ts': "import { a } from '../sweep/a.ts';\n",
    'src-main/stray.ts': 'export {};\n',
    'src-renderer/App.svelte': "<script lang=\"ts\">\n  import { x } from '../src-main/engine/engine.ts';\n</script>\n",
  });
  const found = checkLayers(root).map((o) => `${o.file} → ${o.target ?? ''}: ${o.why}`);
  expect(found).toEqual(expect.arrayContaining([
    'src-main/engine/engine.ts → src-main/api/lab.ts: engine may not import api',
    'src-main/cli/runs.ts → src-main/sweep/a.ts: front may not import sweep',
    'src-renderer/App.svelte → src-main/engine/engine.ts: renderer may not import engine',
    'src-main/stray.ts → : is in no layer of scripts/check-layers.ts',
    'src-main/sweep/a.ts → src-main/sweep/b.ts: imports in a circle: src-main/sweep/a.ts → src-main/sweep/b.ts → src-main/sweep/a.ts',
  ]));
  // engine → api → engine is both upward and a circle.
  expect(found.some((f) => f.includes('imports in a circle') && f.includes('src-main/api/lab.ts') && f.includes('src-main/engine/engine.ts'))).toBe(true);
  expect(found).toHaveLength(6);
});

test('the same tree with the imports pointing down passes', () => {
  const root = write(path.join(tmp, 'good'), {
    'src-main/engine/engine.ts': 'export const x = 1;\n',
    'src-main/api/lab.ts': "import { x } from '../engine/engine.ts';\nimport type { Hook } from '../protocol/hooks.ts';\n",
    'src-main/protocol/hooks.ts': 'export type Hook = string;\n',
    'src-main/cli/runs.ts': "import '../api/lab.ts';\n",
  });
  expect(checkLayers(root)).toEqual([]);
});
