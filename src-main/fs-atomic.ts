import fs from 'node:fs';
import { threadId } from 'node:worker_threads';

/**
 * Files written through a sibling temporary file renamed into place once complete, so a crash, a
 * full disk or a failed export never leaves a half-written file under the real name. The one
 * place that does this, for exports, caches and installs alike.
 */
export interface AtomicOptions {
  /** Name the temporary file per process and thread, for files that several writers may replace at once. */
  unique?: boolean;
}

function partialOf(file: string, opts: AtomicOptions): string {
  return opts.unique ? `${file}.${process.pid}-${threadId}.partial` : `${file}.partial`;
}

export function writeAtomicallySync<T>(file: string, write: (partial: string) => T, opts: AtomicOptions = {}): T {
  const partial = partialOf(file, opts);
  try {
    const result = write(partial);
    fs.renameSync(partial, file);
    return result;
  } catch (e) {
    fs.rmSync(partial, { force: true });
    throw e;
  }
}

export async function writeAtomically<T>(file: string, write: (partial: string) => T | Promise<T>, opts: AtomicOptions = {}): Promise<T> {
  const partial = partialOf(file, opts);
  try {
    const result = await write(partial);
    fs.renameSync(partial, file);
    return result;
  } catch (e) {
    fs.rmSync(partial, { force: true });
    throw e;
  }
}

/** writeAtomicallySync for content already in memory. */
export function writeFileAtomically(file: string, data: string | Uint8Array, opts: AtomicOptions = {}): void {
  writeAtomicallySync(file, (partial) => fs.writeFileSync(partial, data), opts);
}
