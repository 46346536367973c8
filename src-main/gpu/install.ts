/**
 * Puts onnxruntime's CUDA provider beside onnxruntime-node's libonnxruntime.so.1, on request only
 * (never from `npm install`). The provider must be built for onnxruntime-node's exact version:
 *  - cuda12: onnxruntime-node's own install script, which fetches the CUDA 12 provider of its version;
 *  - cuda13: the npm package com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (a Unity package, about
 *    180 MB) ships a CUDA 13 build of the provider for onnxruntime 1.29.0, so it fits only 1.29.0.
 * What was installed is recorded in a small JSON file beside the libraries, so `providerState` can
 * tell a provider of another version from a matching one without loading it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { ortBinaryDir } from '../engine/cuda-provider.ts';
import { LogitscopeError } from '../errors.ts';
import { writeAtomicallySync } from '../fs-atomic.ts';

export type CudaFlavour = 'cuda12' | 'cuda13';

export const CUDA13_PACKAGE = 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9';
/** The onnxruntime version the CUDA 13 package's libraries are built for. */
export const CUDA13_ONNXRUNTIME = '1.29.0';
const CUDA13_LIBS = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];
const CUDA13_LIB_DIR = 'Plugins/Linux/x64';
const PROVIDER = 'libonnxruntime_providers_cuda.so';
const MARKER = 'logitscope-cuda-provider.json';

interface Marker {
  flavour: CudaFlavour;
  onnxruntime: string;
  source: string;
}

export type ProviderState =
  | { state: 'absent' }
  | { state: 'present'; flavour: CudaFlavour; onnxruntime: string }
  /** A provider is there, but recorded for another onnxruntime version, or by someone else (unknown). */
  | { state: 'wrong_version'; found: string; wanted: string };

/** Where things are; every field can be replaced, so the installer is tested without a GPU or network. */
export interface InstallEnv {
  /** The folder holding libonnxruntime.so.1, where the provider goes. */
  targetDir: string;
  /** onnxruntime-node's version, from its package.json. */
  ortNodeVersion: string;
  /** onnxruntime-node's package folder (its install script is script/install.js). */
  ortNodeDir: string;
  /** Runs a command, inheriting stdio; throws if it fails. */
  exec(command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv }): void;
  /** Fetches and unpacks an npm package into `into`; returns the unpacked folder (npm's "package/"). */
  fetchPackage(spec: string, into: string): string;
  log(line: string): void;
}

export function defaultInstallEnv(): InstallEnv {
  const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  const run: InstallEnv['exec'] = (command, args, opts) => execFileSync(command, args, { stdio: 'inherit', ...opts });
  return {
    targetDir: ortBinaryDir(),
    ortNodeVersion: (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version,
    ortNodeDir: path.dirname(pkg),
    exec: run,
    fetchPackage(spec, into) {
      // npm pack goes through the user's registry and cache settings, as any npm install would.
      run('npm', ['pack', spec, '--pack-destination', into, '--silent'], {});
      const tarball = fs.readdirSync(into).find((f) => f.endsWith('.tgz'));
      if (!tarball) throw new LogitscopeError('device_unavailable', `npm pack ${spec} left no tarball`, into);
      run('tar', ['-xzf', path.join(into, tarball), '-C', into], {});
      return path.join(into, 'package');
    },
    log: (line) => console.log(line),
  };
}

/** What is installed in `env.targetDir`, judged against onnxruntime-node's version. */
export function providerState(env: Pick<InstallEnv, 'targetDir' | 'ortNodeVersion'>): ProviderState {
  if (!fs.existsSync(path.join(env.targetDir, PROVIDER))) return { state: 'absent' };
  const marker = readMarker(env.targetDir);
  if (!marker) return { state: 'wrong_version', found: 'unknown (not installed by logitscope gpu install)', wanted: env.ortNodeVersion };
  if (marker.onnxruntime !== env.ortNodeVersion) return { state: 'wrong_version', found: marker.onnxruntime, wanted: env.ortNodeVersion };
  return { state: 'present', flavour: marker.flavour, onnxruntime: marker.onnxruntime };
}

/** Installs the provider of `flavour`, replacing whatever provider was there; returns the new state. */
export function installCudaProvider(flavour: CudaFlavour, env: InstallEnv = defaultInstallEnv()): ProviderState {
  if (process.platform !== 'linux' && env.targetDir === ortBinaryDir()) {
    throw new LogitscopeError('device_unavailable', `the CUDA providers offered here are Linux x64 builds; this is ${process.platform}`);
  }
  if (flavour === 'cuda12') installCuda12(env);
  else if (flavour === 'cuda13') installCuda13(env);
  else throw new LogitscopeError('argument_invalid', `unknown CUDA flavour "${flavour as string}" (cuda12 or cuda13)`, 'flavour');
  const state = providerState(env);
  if (state.state !== 'present') throw new LogitscopeError('device_unavailable', `the ${flavour} provider did not end up in ${env.targetDir}`, env.targetDir);
  env.log(`installed the ${flavour} provider for onnxruntime ${state.onnxruntime} in ${env.targetDir}`);
  return state;
}

function installCuda12(env: InstallEnv): void {
  fs.rmSync(path.join(env.targetDir, MARKER), { force: true });
  env.log(`running onnxruntime-node ${env.ortNodeVersion}'s own installer for the CUDA 12 provider`);
  env.exec(process.execPath, [path.join(env.ortNodeDir, 'script', 'install.js')], {
    cwd: env.ortNodeDir,
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'cuda12' },
  });
  if (!fs.existsSync(path.join(env.targetDir, PROVIDER))) {
    throw new LogitscopeError('device_unavailable', `onnxruntime-node's installer finished but ${PROVIDER} is not in ${env.targetDir}`, env.targetDir);
  }
  // That script fetches the provider of its own package's version, so it matches by construction.
  writeMarker(env.targetDir, { flavour: 'cuda12', onnxruntime: env.ortNodeVersion, source: `onnxruntime-node ${env.ortNodeVersion} script/install.js` });
}

function installCuda13(env: InstallEnv): void {
  if (env.ortNodeVersion !== CUDA13_ONNXRUNTIME) {
    throw new LogitscopeError(
      'device_unavailable',
      `the CUDA 13 provider in ${CUDA13_PACKAGE} is built for onnxruntime ${CUDA13_ONNXRUNTIME}, but onnxruntime-node is ${env.ortNodeVersion}; use cuda12, or pin onnxruntime-node ${CUDA13_ONNXRUNTIME}`,
      env.ortNodeDir,
    );
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'logitscope-cuda13-'));
  try {
    env.log(`fetching ${CUDA13_PACKAGE} (about 180 MB) with npm pack`);
    const pkg = env.fetchPackage(CUDA13_PACKAGE, tmp);
    const says = packageOnnxruntimeVersion(pkg);
    if (says !== CUDA13_ONNXRUNTIME) {
      throw new LogitscopeError('device_unavailable', `${CUDA13_PACKAGE} says it ships onnxruntime ${says ?? '(no version found)'}, not ${CUDA13_ONNXRUNTIME}: not installed`, pkg);
    }
    const libs = CUDA13_LIBS.map((lib) => path.join(pkg, CUDA13_LIB_DIR, lib));
    const missing = libs.filter((f) => !fs.existsSync(f));
    if (missing.length > 0) throw new LogitscopeError('device_unavailable', `${CUDA13_PACKAGE} lacks ${missing.map((f) => path.basename(f)).join(', ')}`, pkg);
    fs.rmSync(path.join(env.targetDir, MARKER), { force: true });
    for (const lib of libs) {
      // Copied beside libonnxruntime.so.1, where onnxruntime looks for provider libraries.
      writeAtomicallySync(path.join(env.targetDir, path.basename(lib)), (partial) => fs.copyFileSync(lib, partial));
    }
    writeMarker(env.targetDir, { flavour: 'cuda13', onnxruntime: says, source: CUDA13_PACKAGE });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The onnxruntime version an unpacked package states: its package.json description/keywords, or its README. */
export function packageOnnxruntimeVersion(pkgDir: string): string | undefined {
  const texts: string[] = [];
  const manifest = path.join(pkgDir, 'package.json');
  if (fs.existsSync(manifest)) {
    const json = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { description?: string; keywords?: string[]; displayName?: string };
    texts.push(json.displayName ?? '', json.description ?? '', ...(json.keywords ?? []));
  }
  for (const name of ['README.md', 'readme.md', 'README']) {
    const f = path.join(pkgDir, name);
    if (fs.existsSync(f)) texts.push(fs.readFileSync(f, 'utf8'));
  }
  for (const text of texts) {
    const m = /onnx\s*runtime\D{0,40}?(\d+\.\d+\.\d+)/i.exec(text);
    if (m) return m[1];
  }
  return undefined;
}

function readMarker(dir: string): Marker | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

function writeMarker(dir: string, marker: Marker): void {
  fs.writeFileSync(path.join(dir, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
}
