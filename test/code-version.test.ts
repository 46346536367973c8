import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CODE_VERSION, codeVersion } from '../src-main/api/code-version.ts';
import { Lab } from '../src-main/api/lab.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

// Which code made a result (issue 24): the package version never changes, so runs name the commit,
// or where there is no checkout, a hash of the source files.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'code-version-'));
const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd, encoding: 'utf8' }).trim();

/** A small app tree: package.json and two source files. */
function appTree(dir: string, version = '0.1.0'): string {
  fs.mkdirSync(path.join(dir, 'src-main', 'api'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version }));
  fs.writeFileSync(path.join(dir, 'src-main', 'cli.ts'), 'export const a = 1;\n');
  fs.writeFileSync(path.join(dir, 'src-main', 'api', 'lab.ts'), 'export const b = 2;\n');
  return dir;
}

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the code version', () => {
  test('in a git checkout it is the package version and the commit, marked dirty once a source file changes', () => {
    const dir = appTree(path.join(tmp, 'checkout'));
    git(dir, 'init', '-q');
    git(dir, 'add', '.');
    git(dir, 'commit', '-qm', 'first');
    const head = git(dir, 'rev-parse', 'HEAD');
    expect(codeVersion(dir)).toBe(`0.1.0+git.${head.slice(0, 12)}`);
    fs.appendFileSync(path.join(dir, 'src-main', 'cli.ts'), '// changed\n');
    expect(codeVersion(dir)).toBe(`0.1.0+git.${head.slice(0, 12)}.dirty`);
    git(dir, 'commit', '-qam', 'second');
    expect(codeVersion(dir)).toBe(`0.1.0+git.${git(dir, 'rev-parse', 'HEAD').slice(0, 12)}`);
    expect(codeVersion(dir)).not.toContain(head.slice(0, 12));
  });

  test('in a copy without .git it is the package version and a hash of the source files: equal for equal files, new for any change', () => {
    const a = appTree(path.join(tmp, 'copy-a'));
    const b = appTree(path.join(tmp, 'copy-b'));
    expect(codeVersion(a)).toMatch(/^0\.1\.0\+src\.[0-9a-f]{12}$/);
    expect(codeVersion(b)).toBe(codeVersion(a)); // the folder's own path is not part of it
    const before = codeVersion(a);
    fs.writeFileSync(path.join(a, 'src-main', 'api', 'lab.ts'), 'export const b = 3;\n');
    expect(codeVersion(a)).not.toBe(before);
    fs.renameSync(path.join(b, 'src-main', 'api', 'lab.ts'), path.join(b, 'src-main', 'api', 'lab2.ts'));
    expect(codeVersion(b)).not.toBe(before); // a file moved is other code too
  });

  test("this app's own version names this checkout's commit", () => {
    const root = path.resolve('.');
    const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
    expect(CODE_VERSION.startsWith(`${version}+git.${git(root, 'rev-parse', 'HEAD').slice(0, 12)}`)).toBe(true);
  });
});

describe('every run records it', () => {
  const model = path.join(tmp, 'model');
  let lab: Lab;
  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 48 });
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    await lab.call('model.load', { dir: model });
  });
  afterAll(async () => lab?.close());

  test('in runs.get, `runs show` and the export, as app.info says', async () => {
    const { runId } = await lab.call('extract.save', { text: 'The sea was calm', techniques: [{ id: 'logit_lens' }], layers: [1] });
    expect((await lab.call('app.info', {})).version).toBe(CODE_VERSION);
    expect((await lab.call('runs.get', { runId })).codeVersion).toBe(CODE_VERSION);
    const out = path.join(tmp, 'run.json');
    await lab.call('runs.export', { runId, format: 'json', out });
    expect(JSON.parse(fs.readFileSync(out, 'utf8')).run.code_version).toBe(CODE_VERSION);
    const { stdout } = await promisify(execFile)(process.execPath, [path.resolve('bin/logitscope.js'), 'runs', 'show', runId, '--db', path.join(tmp, 'results.sqlite')]);
    expect(stdout.split('\n')).toContain(`code ${CODE_VERSION}`);
  }, 60_000);
});
