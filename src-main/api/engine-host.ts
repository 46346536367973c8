/**
 * The one loaded model of a Lab, lent out by lease. The engine is never disposed under a call that
 * uses it: every use holds a lease, a load swaps the new engine in only once the leases of the old
 * one are returned, and calls that arrive during a load wait for the new model. In the desktop app
 * this lives in the engine process, with the Lab.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Engine } from '../engine/engine.ts';
import { LogitscopeError } from '../errors.ts';
import { LENS_SESSIONS_MODULE } from '../lens/local-sessions.ts';

export interface LoadRequest {
  dir: string;
  device: string;
  dtype?: 'float32' | 'float16';
  allowCpuFallback: boolean;
}

export class EngineHost {
  private engine: Engine | undefined;
  private seconds = 0;
  private loading: Promise<unknown> | undefined;
  private leases = 0;
  private readonly leaseReleased = new Set<() => void>();

  constructor(private readonly cacheRoot: string) {}

  /** The loaded engine, if any, without a lease: for reading what it is, not for computing with it. */
  get current(): Engine | undefined {
    return this.engine;
  }

  /** How long the last load took, from the request to the swap. */
  get loadSeconds(): number {
    return this.seconds;
  }

  /** Loads a model and swaps it in once no call uses the old one; a second load waits for the first. */
  async load(r: LoadRequest): Promise<Engine> {
    while (this.loading) await this.loading.catch(() => {});
    const started = performance.now();
    const dir = path.resolve(r.dir);
    const modelDir = fs.existsSync(dir) ? fs.realpathSync(dir) : dir;
    // `loading` settles only once the new engine is swapped in: waiters that looped on a promise
    // that had already settled would spin in microtasks and starve the event loop.
    const loading = (async () => {
      try {
        const engine = await Engine.load({ modelDir, device: r.device, dtype: r.dtype, cacheRoot: this.cacheRoot, allowCpuFallback: r.allowCpuFallback, lensSessions: LENS_SESSIONS_MODULE });
        while (this.leases > 0) await new Promise<void>((resolve) => this.leaseReleased.add(resolve));
        const old = this.engine;
        this.engine = engine;
        this.seconds = (performance.now() - started) / 1000;
        await old?.dispose();
        return engine;
      } finally {
        this.loading = undefined;
      }
    })();
    this.loading = loading;
    return loading;
  }

  /** The loaded engine, held until `release`; waits for a load in progress. */
  async acquire(): Promise<Engine> {
    while (this.loading) await this.loading.catch(() => {});
    if (!this.engine) throw new LogitscopeError('model_not_loaded', 'load a model first', 'model');
    this.leases++;
    return this.engine;
  }

  release(): void {
    this.leases--;
    for (const wake of this.leaseReleased) wake();
    this.leaseReleased.clear();
  }

  /** A short call's use of the engine: leased for exactly as long as `fn` runs. */
  async use<T>(fn: (engine: Engine) => T | Promise<T>): Promise<T> {
    const engine = await this.acquire();
    try {
      return await fn(engine);
    } finally {
      this.release();
    }
  }

  /** After every lease is returned (the Lab cancels its sweeps first): a load in progress is waited for. */
  async dispose(): Promise<void> {
    await this.loading?.catch(() => {});
    await this.engine?.dispose();
    this.engine = undefined;
  }
}
