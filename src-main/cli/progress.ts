import type { ApiEvents } from '../api/contract.ts';
import { formatSeconds } from '../api/format.ts';

type SweepProgress = ApiEvents['sweep.progress']['progress'];

/** A one-line progress bar on stderr; on a non-terminal, a plain line at most every few seconds. */
export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): { update(p: SweepProgress): void; end(): void } {
  let lastPlain = 0;
  let drawn = false;
  return {
    update(p) {
      const fraction = p.examplesTotal === 0 ? 1 : p.examplesDone / p.examplesTotal;
      const rate = p.throughput === null ? '' : `  ${p.throughput.toFixed(1)} ex/s`;
      const eta = p.etaSeconds === null ? '' : `  ETA ${formatSeconds(p.etaSeconds)}`;
      const cached = p.examplesFromCache > 0 ? `  (${p.examplesFromCache} from cache)` : '';
      const text = `${p.examplesDone}/${p.examplesTotal} examples${rate}${eta}${cached}`;
      if (stream.isTTY) {
        const width = 30;
        const filled = Math.round(fraction * width);
        stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
        drawn = true;
      } else if (Date.now() - lastPlain > 3000 || p.examplesDone === p.examplesTotal) {
        stream.write(`${text}\n`);
        lastPlain = Date.now();
      }
    },
    end() {
      if (drawn) stream.write('\n');
    },
  };
}
