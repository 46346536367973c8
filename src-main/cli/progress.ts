import type { ApiEvents } from '../api/contract.ts';
import { formatSeconds, lensFitWords } from '../api/format.ts';

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

type LensProgress = NonNullable<ApiEvents['sweep.preparing']['lens']>;

/**
 * The tuned-lens fit's progress on stderr, before the sweep's run exists: records read, train
 * examples collected (with an ETA from the rate so far), maps solved, held-out examples checked.
 * A new phase is shown at once; within a phase, as the sweep's bar (redrawn on a terminal, a plain
 * line at most every few seconds otherwise). A refused cached lens is always said.
 */
export function lensProgressPrinter(stream: NodeJS.WriteStream = process.stderr): { update(p: LensProgress): void; end(): void } {
  let phase = '';
  let phaseStarted = 0;
  let lastPlain = 0;
  let drawn = false;
  /** On a non-terminal: the phase's latest line when it was not printed, so a phase always ends on its final count. */
  let unprinted: string | undefined;
  const end = () => {
    if (drawn) stream.write('\n');
    drawn = false;
    if (unprinted !== undefined) stream.write(`${unprinted}\n`);
    unprinted = undefined;
  };
  return {
    update(p) {
      if (p.refused) {
        end();
        stream.write(`${p.refused}\n`);
      }
      const now = performance.now();
      const changed = p.phase !== phase;
      if (changed) {
        end();
        phase = p.phase;
        phaseStarted = now;
      }
      const elapsed = (now - phaseStarted) / 1000;
      const eta = p.done > 0 && p.total > p.done && elapsed > 0.5 ? `, ETA ${formatSeconds(((p.total - p.done) * elapsed) / p.done)}` : '';
      const text = `${lensFitWords(p)}${p.phase === 'selecting' ? '' : eta}`;
      if (stream.isTTY) {
        stream.write(`\r${text}\x1b[K`);
        drawn = true;
      } else if (changed || now - lastPlain > 3000 || (p.total > 0 && p.done === p.total)) {
        stream.write(`${text}\n`);
        lastPlain = now;
        unprinted = undefined;
      } else {
        unprinted = text;
      }
    },
    end,
  };
}
