/**
 * The tuned lenses' apply sessions a worker keeps open, by lens folder, with the size, mtime and
 * inode of the weights they map: a lens fitted again into the same folder (its cache was cleared)
 * gets a fresh session. They go with the worker, as the model's own sessions do (Engine.dispose
 * ends it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError } from '../errors.ts';
import type { DeviceChoice } from '../protocol/device.ts';
import { LENS_WEIGHTS } from '../protocol/lens-settings.ts';
import { Lru } from './lru.ts';
import type { Session } from './ort-session.ts';

/**
 * Opens a tuned lens's apply session (lens/graphs.ts applyGraph) on the engine's device, mapping
 * the weights in `dir`. Given by the worker, which knows the device.
 */
export type LensOpener = (dir: string) => Promise<Session>;

/** What the module named by the load request's lensSessions exports (lens/local-sessions.ts). */
export interface LensSessionsModule {
  openApplySession(o: { dir: string; device: DeviceChoice; nLayers: number; dModel: number }): Promise<Session>;
}

/** Lens sessions kept: each maps a lens's (L+1)·d² float32 weights (1.9 GB for GPT-J). */
const MAX_LENSES = 2;

interface OpenLens {
  stamp: string;
  session: Promise<Session>;
}

export class LensSessions {
  private readonly lenses = new Lru<string, OpenLens>(MAX_LENSES, (old) => void releaseWhenOpen(old.session));

  constructor(private readonly openLens?: LensOpener) {}

  /** The apply session of the lens in `dir`, opened once per lens file and kept (the least recently used is released first). */
  session(dir: string): Promise<Session> {
    if (!this.openLens) throw new LogitscopeError('engine_failed', 'this engine cannot apply a tuned lens (no lens session opener)');
    let st: fs.Stats;
    try {
      st = fs.statSync(path.join(dir, LENS_WEIGHTS));
    } catch (e) {
      throw new LogitscopeError('cache_corrupt', `the tuned lens's weights cannot be read (${(e as Error).message}); delete ${dir} to fit it again`, dir);
    }
    const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    const kept = this.lenses.get(dir);
    if (kept?.stamp === stamp) return kept.session;
    if (kept) {
      this.lenses.delete(dir);
      void releaseWhenOpen(kept.session);
    }
    const opened: OpenLens = { stamp, session: this.openLens(dir) };
    // A failed open is not kept: the next batch tries again.
    opened.session.catch(() => this.lenses.peek(dir) === opened && this.lenses.delete(dir));
    this.lenses.set(dir, opened);
    return opened.session;
  }
}

async function releaseWhenOpen(session: Promise<Session>): Promise<void> {
  const s = await session.catch(() => null);
  await s?.release();
}
