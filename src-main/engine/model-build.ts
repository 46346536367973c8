import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError } from '../errors.ts';
import { writeFileAtomically } from '../fs-atomic.ts';
import { mapFsFailureAsync } from '../fs-errors.ts';
import { recordHashes, reportRefused, verifyHashes } from './cache-check.ts';
import type { Checkpoint } from './checkpoint.ts';
import { buildBlocksGraph, buildUnembedGraph, type GraphName } from './graph/gptj-graphs.ts';
import type { ComputeType } from './graph/layers.ts';
import { planWeights } from './weight-plan.ts';

/**
 * Bump when the graph builders change, so cached graphs are rebuilt. If the change can alter any
 * number a graph computes, bump NUMERICS_VERSION (store/keys.ts) too, so stored results are not reused.
 */
export const GRAPH_VERSION = 11;

export interface BuiltModel {
  readonly cacheDir: string;
  /** The folder the sessions read weights from: the checkpoint's own, or the cache when converted. */
  readonly weightFolder: string;
  readonly converted: boolean;
  readonly graphs: Record<GraphName, Uint8Array>;
  readonly fromCache: boolean;
}

interface Meta {
  identity: string;
  dtype: ComputeType;
  graphVersion: number;
  weightFolder: string;
  /** sha256 of each graph file as written: checked on every open (cache-check.ts). */
  hashes?: Partial<Record<GraphName, string>>;
}

const BUILDERS = { blocks: buildBlocksGraph, unembed: buildUnembedGraph } as const;

/**
 * The graphs (and converted weights) for one checkpoint and compute dtype, cached under
 * `<cacheRoot>/<identity>/<dtype>/`. The identity hashes every byte of the checkpoint, so a changed
 * checkpoint, even one tensor edited in place, gets a fresh directory and never runs stale converted
 * weights; the .onnx files there can be opened in Netron to see exactly what runs.
 */
export async function prepareModel(ckpt: Checkpoint, dtype: ComputeType, cacheRoot: string): Promise<BuiltModel> {
  const cacheDir = path.join(cacheRoot, ckpt.identity.slice(0, 24), dtype);
  // A full disk or an unwritable cache folder is a coded error naming it (cache_full, cache_dir_unusable).
  return mapFsFailureAsync({ kind: 'cache', file: cacheDir }, () => buildOrOpen(ckpt, dtype, cacheDir));
}

async function buildOrOpen(ckpt: Checkpoint, dtype: ComputeType, cacheDir: string): Promise<BuiltModel> {
  fs.mkdirSync(cacheDir, { recursive: true });
  const plan = await planWeights(ckpt, dtype, cacheDir);
  const meta: Meta = { identity: ckpt.identity, dtype, graphVersion: GRAPH_VERSION, weightFolder: plan.folder };
  const metaFile = path.join(cacheDir, 'meta.json');
  const names = Object.keys(BUILDERS) as GraphName[];
  const file = (g: GraphName) => path.join(cacheDir, `${g}.onnx`);

  const recorded = readMeta(metaFile, meta);
  if (recorded && names.every((g) => fs.existsSync(file(g)))) {
    try {
      verifyHashes(names.map((g) => ({ file: file(g), hash: recorded.hashes?.[g] })), cacheDir, 'a built graph');
      const graphs = Object.fromEntries(names.map((g) => [g, new Uint8Array(fs.readFileSync(file(g)))])) as BuiltModel['graphs'];
      return { cacheDir, weightFolder: plan.folder, converted: plan.converted, graphs, fromCache: true };
    } catch (e) {
      if (!(e instanceof LogitscopeError && e.code === 'cache_corrupt')) throw e;
      reportRefused(e); // and rebuilt below
    }
  }
  const options = { config: ckpt.config, dtype, place: plan.place };
  const graphs = Object.fromEntries(names.map((g) => [g, BUILDERS[g](options)])) as BuiltModel['graphs'];
  for (const g of names) writeFileAtomically(file(g), graphs[g]);
  const hashes = recordHashes(names.map(file), cacheDir);
  writeFileAtomically(metaFile, JSON.stringify({ ...meta, hashes: Object.fromEntries(names.map((g, i) => [g, hashes[i]])) }, null, 2));
  return { cacheDir, weightFolder: plan.folder, converted: plan.converted, graphs, fromCache: false };
}

/** The recorded meta when it is for this identity, dtype, graph version and weight folder. */
function readMeta(metaFile: string, meta: Meta): Meta | undefined {
  try {
    const { hashes, ...rest } = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as Meta;
    // Graphs cached by a version that recorded no hashes are simply built again.
    return JSON.stringify(rest) === JSON.stringify(meta) && hashes ? { ...rest, hashes } : undefined;
  } catch {
    return undefined;
  }
}
