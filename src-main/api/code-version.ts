/**
 * Which code made a result: recorded with every run (its provenance, `runs show`, exports), so
 * results of different code can be told apart. The package version alone never changes, so the
 * code is named by its git commit where the app runs from a checkout, and otherwise (an unpacked
 * copy, an installed app) by a hash of its source files. Nothing here reaches the network.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The app's root: package.json and src-main/ are here. */
const APP_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The folder whose files are the code that computes results. */
const SOURCE_DIR = 'src-main';

/**
 * `0.1.0+git.<12 hex of the commit>` (`.dirty` added where tracked files differ from it) in a git
 * checkout; `0.1.0+src.<12 hex of the source files' hash>` where there is no .git or no git.
 */
export function codeVersion(root: string = APP_ROOT): string {
  const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version as string;
  const commit = gitCommit(root);
  return `${version}+${commit ? `git.${commit}` : `src.${sourceHash(root)}`}`;
}

/** The checkout's commit, with `.dirty` where its tracked files were changed; undefined outside a checkout. */
function gitCommit(root: string): string | undefined {
  // A worktree's .git is a file; either way, without one git would find a checkout further up.
  if (!fs.existsSync(path.join(root, '.git'))) return undefined;
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const commit = git('rev-parse', 'HEAD').slice(0, 12);
    const dirty = git('status', '--porcelain', '--untracked-files=no', '--', SOURCE_DIR, 'package.json') !== '';
    return dirty ? `${commit}.dirty` : commit;
  } catch {
    return undefined; // git is not installed, or the checkout has no commit yet
  }
}

/** sha256 over the source files' paths and contents, in a fixed order. */
function sourceHash(root: string): string {
  const hash = createHash('sha256');
  const dir = path.join(root, SOURCE_DIR);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => f.split(path.sep).join('/')).sort() : [];
  for (const file of files) {
    const full = path.join(dir, file);
    if (!fs.statSync(full).isFile()) continue;
    hash.update(`${file}\0`);
    hash.update(fs.readFileSync(full));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 12);
}

/**
 * This process's code, worked out once as it starts (a few ms of git): the code it loaded then is
 * the code that computes, even if the files change while it runs. Recorded with every run it makes.
 */
export const CODE_VERSION: string = codeVersion();
