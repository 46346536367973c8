import fs from 'node:fs';

/**
 * A test's gate, so that a test kills a sweep at a known point rather than by luck (a sweep of a
 * tiny model can finish between two polls). With LOGITSCOPE_TEST_HOLD=<examples>, or
 * <examples>@shard<index> for one shard of a devices sweep, the sweep stops once that many of its
 * examples are stored (0: before its first batch), writes the process id to `<database>.held` and
 * waits there, its thread blocked, until the process is killed. Unset, it does nothing.
 */
export function holdForTest(dbFile: string, examplesDone: number, shardIndex: number | undefined): void {
  const hold = process.env.LOGITSCOPE_TEST_HOLD?.match(/^(\d+)(?:@shard(\d+))?$/);
  if (!hold || examplesDone < Number(hold[1]) || (hold[2] !== undefined && Number(hold[2]) !== shardIndex)) return;
  fs.writeFileSync(`${dbFile}.held`, String(process.pid));
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}
