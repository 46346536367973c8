/**
 * Errors in the command line's words. The API reports a request's problems by their path in the
 * payload (`overrides.limit`, `techniques.1.lens.train.end`) and in the validator's sentences, which
 * is right for code that builds payloads; a person at the terminal typed flags. This maps each
 * path to the flag that sets it and rewords the validator's range sentences, so the CLI says
 * `--limit must be at least 1`. Pure: the HTTP API and the app keep the paths.
 */
import { formatError, type Issue, LogitscopeError } from '../errors.ts';

/** Payload paths (numbers as `N`) to the flag that sets them; the first matching pattern wins. */
const FLAGS: [RegExp, string][] = [
  [/^overrides\.limit$/, '--limit'],
  [/^overrides\.poolStart$/, '--pool-start'],
  [/^overrides\.poolEnd$/, '--pool-end'],
  [/^overrides\.evalStart$/, '--eval-start'],
  [/^overrides\.evalEnd$/, '--eval-end'],
  [/^overrides\.shuffleSeed$/, '--shuffle-seed'],
  [/^overrides\.pileSetName$/, '--pile-set'],
  [/^overrides\.filter\.maxWords$/, '--max-words'],
  [/^overrides\.filter\.maxChars$/, '--max-chars'],
  [/^overrides\.positionSeed$/, '--seed'],
  [/^overrides\.bos$/, '--bos'],
  [/^k$/, '--top-k'],
  [/^preset$/, '--preset'],
  [/^batchSize$/, '--batch-size'],
  [/^shard\.count$/, "--shard's N (i/N)"],
  [/^shard\.index$/, "--shard's i (i/N)"],
  [/^shard$/, '--shard'],
  [/^devices(\.\d+)?$/, '--devices'],
  [/^layers(\.\d+)?$/, '--layers'],
  [/^files(\.\d+)?$/, '--data'],
  [/^techniques\.\d+\.lens\.train(\.\w+)?$/, '--lens-train'],
  [/^techniques\.\d+\.lens\.ridge$/, '--lens-ridge'],
  [/^techniques\.\d+\.lens\.positionSeed$/, '--lens-seed'],
  [/^techniques\.\d+\.prompt$/, '--prompt'],
  [/^techniques\.\d+\.targetLayer(\.\w+)?$/, '--prompt-layer'],
  [/^techniques(\.\d+.*)?$/, '--techniques'],
  [/^text$/, '--text'],
  [/^position$/, '--position'],
  [/^positions(\.\w+)?$/, '--positions'],
  [/^dir$/, '--model'],
  [/^device$/, '--device'],
  [/^dtype$/, '--dtype'],
  [/^out$/, '--out'],
  [/^name$/, '--name'],
];

export function flagOf(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  return FLAGS.find(([re]) => re.test(path))?.[1];
}

/** The validator's range sentences, in a person's words. */
function reword(message: string): string {
  const rules: [RegExp, (m: RegExpExecArray) => string][] = [
    [/^Too small: expected (?:number|int) to be >=(.+)$/, (m) => `must be at least ${m[1]}`],
    [/^Too small: expected (?:number|int) to be >(.+)$/, (m) => `must be greater than ${m[1]}`],
    [/^Too big: expected (?:number|int) to be <=(.+)$/, (m) => `must be at most ${m[1]}`],
    [/^Too big: expected (?:number|int) to be <(.+)$/, (m) => `must be less than ${m[1]}`],
    [/^Too small: expected array to have >=(\d+) items?$/, (m) => `needs at least ${m[1]}`],
    [/^Too big: expected array to have <=(\d+) items?$/, (m) => `takes at most ${m[1]}`],
    [/^Invalid input: expected int, received number$/, () => 'must be a whole number'],
  ];
  for (const [re, to] of rules) {
    const m = re.exec(message);
    if (m) return to(m);
  }
  return message;
}

/** One problem as the CLI says it: "--limit must be at least 1", or "--flag: sentence". */
function issueLine(issue: Issue): string {
  const flag = flagOf(issue.path);
  if (!flag) return `${issue.path ? `${issue.path}: ` : ''}${issue.message}`;
  const worded = reword(issue.message);
  return worded !== issue.message ? `${flag} ${worded}` : `${flag}: ${issue.message}`;
}

/**
 * formatError for the terminal: a request's problems named by flag. Paths that are files or that
 * no flag sets are left as they are.
 */
export function formatCliError(e: unknown): string {
  if (!(e instanceof LogitscopeError)) return formatError(e);
  if (e.issues && e.issues.length > 1) {
    return `[${e.code}] ${e.issues.length} problems with the options\n${e.issues.map((i) => `  - ${issueLine(i)}`).join('\n')}`;
  }
  // A flag's own error whose sentence opens with the flag ("--position -1: ...", "--limit must be ..."): said once.
  if (e.path?.startsWith('--') && opensWithFlag(e.message, e.path)) return `[${e.code}] ${e.message}`;
  // A single problem: the error's own path and message (issues[0] says the same).
  if (flagOf(e.path) === undefined || e.path?.startsWith('--')) return formatError(e);
  return `[${e.code}] ${issueLine({ path: e.path!, message: e.message })}`;
}

function opensWithFlag(message: string, flag: string): boolean {
  if (!message.startsWith(flag)) return false;
  const rest = message.slice(flag.length);
  return /^(:|\s\S+:\s|\s(must|is)\s)/.test(rest);
}
