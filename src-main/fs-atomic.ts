import fs from 'node:fs';

/**
 * Writes `file` through a sibling `<file>.partial` renamed into place once complete, so a crash,
 * a full disk or a failed export never leaves a half-written file under the real name.
 */
export async function writeAtomically(file: string, write: (partial: string) => void | Promise<void>): Promise<void> {
  const partial = `${file}.partial`;
  try {
    await write(partial);
    fs.renameSync(partial, file);
  } catch (e) {
    fs.rmSync(partial, { force: true });
    throw e;
  }
}

/** writeAtomically for content already in memory. */
export function writeFileAtomically(file: string, data: string | Uint8Array): void {
  const partial = `${file}.partial`;
  try {
    fs.writeFileSync(partial, data);
    fs.renameSync(partial, file);
  } catch (e) {
    fs.rmSync(partial, { force: true });
    throw e;
  }
}
