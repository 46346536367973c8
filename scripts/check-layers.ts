/**
 * The layer rule of the sources: every import of src-main and src-renderer points down the one
 * table below, and no files import each other in a circle. Type-only imports count too: a type
 * imported from above is still a dependency on what lives above. `npx tsx scripts/check-layers.ts`
 * lists each offending edge with its file and exits 1; test/layers.test.ts runs it on the repo.
 */
import fs from 'node:fs';
import path from 'node:path';
import { imports } from './import-graph.ts';

interface Layer {
  name: string;
  /** Paths relative to the repository root: a folder ends in '/', anything else is one file. */
  paths: string[];
  /** The layers this one may import (itself always). */
  may: string[];
}

const BASE = ['src-main/errors.ts', 'src-main/fs-atomic.ts', 'src-main/fs-errors.ts', 'src-main/app-paths.ts', 'src-main/db-paths.ts', 'src-main/csv.ts'];

/** Bottom first. The allowed directions of the whole code base: change them here and only here. */
export const LAYERS: Layer[] = [
  { name: 'base', paths: BASE, may: [] },
  { name: 'protocol', paths: ['src-main/protocol/'], may: ['base'] },
  { name: 'engine', paths: ['src-main/engine/'], may: ['base', 'protocol'] },
  { name: 'gpu', paths: ['src-main/gpu/'], may: ['base', 'protocol', 'engine'] },
  { name: 'data', paths: ['src-main/data/'], may: ['base', 'protocol', 'engine', 'gpu'] },
  { name: 'lens', paths: ['src-main/lens/'], may: ['base', 'protocol', 'engine', 'gpu', 'data'] },
  { name: 'sweep', paths: ['src-main/sweep/'], may: ['base', 'protocol', 'engine', 'gpu', 'data', 'lens'] },
  { name: 'store', paths: ['src-main/store/'], may: ['base', 'protocol', 'engine', 'gpu', 'data', 'lens', 'sweep'] },
  { name: 'scale', paths: ['src-main/scale/'], may: ['base', 'protocol', 'engine', 'gpu', 'data', 'lens', 'sweep', 'store'] },
  { name: 'api', paths: ['src-main/api/'], may: ['base', 'protocol', 'engine', 'gpu', 'data', 'lens', 'sweep', 'store', 'scale'] },
  // The fronts reach the lab only through the one API, so a feature built there reaches them all.
  {
    name: 'front',
    paths: ['src-main/cli/', 'src-main/desktop/', 'src-main/cli.ts', 'src-main/serve.ts', 'src-main/electron.ts', 'src-main/preload.ts', 'src-main/engine-process.ts', 'src-main/shard-worker.ts'],
    may: ['base', 'protocol', 'api'],
  },
  { name: 'renderer', paths: ['src-renderer/'], may: ['base', 'protocol', 'api'] },
];

export interface Offence { file: string; target?: string; why: string }

function layerOf(rel: string): Layer | undefined {
  return LAYERS.find((l) => l.paths.some((p) => (p.endsWith('/') ? rel.startsWith(p) : rel === p)));
}

function sources(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|svelte)$/.test(f) && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f));
}

/** Every upward edge, every file outside the table, and every circle of imports under `root`. */
export function checkLayers(root: string): Offence[] {
  const rel = (p: string) => path.relative(root, p).split(path.sep).join('/');
  const files = [...sources(path.join(root, 'src-main')), ...sources(path.join(root, 'src-renderer'))];
  const offences: Offence[] = [];
  const edges = new Map<string, string[]>();
  for (const file of files) {
    const from = rel(file);
    const layer = layerOf(from);
    if (!layer) offences.push({ file: from, why: 'is in no layer of scripts/check-layers.ts' });
    const targets = imports(file).filter((e) => e.local).map((e) => rel(e.target))
      .filter((t) => t.startsWith('src-main/') || t.startsWith('src-renderer/'));
    edges.set(from, [...new Set(targets)]);
    for (const target of targets) {
      const below = layerOf(target);
      if (layer && below && below !== layer && !layer.may.includes(below.name)) {
        offences.push({ file: from, target, why: `${layer.name} may not import ${below.name}` });
      }
    }
  }
  for (const circle of circles(edges)) offences.push({ file: circle[0], target: circle[1], why: `imports in a circle: ${[...circle, circle[0]].join(' → ')}` });
  return offences;
}

/** The strongly connected components of more than one file (Tarjan), each as one circle through it. */
function circles(edges: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        if (!edges.has(w)) continue;
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do { w = stack.pop()!; onStack.delete(w); component.push(w); } while (w !== v);
    if (component.length > 1) found.push(circleThrough(component, edges));
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

/** One circle inside a component, from its first file back to it, to name in the report. */
function circleThrough(component: string[], edges: Map<string, string[]>): string[] {
  const inside = new Set(component);
  const start = [...component].sort()[0];
  const came = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of edges.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(came.get(path[0])!);
        return path;
      }
      if (!came.has(w)) { came.set(w, v); queue.push(w); }
    }
  }
  return component;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const offences = checkLayers(path.resolve(import.meta.dirname, '..'));
  for (const o of offences) console.log(`${o.file}${o.target ? ` → ${o.target}` : ''}: ${o.why}`);
  if (offences.length > 0) {
    console.log(`${offences.length} offending edge(s); the allowed directions are LAYERS in scripts/check-layers.ts`);
    process.exit(1);
  }
  console.log('layers: every import points down, no circles');
}
