import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { CUDA13_PACKAGE, type InstallEnv, installCudaProvider, providerState } from '../src-main/gpu/install.ts';

/** A fake onnxruntime-node folder and a fake npm: nothing is downloaded, no GPU is needed. */
function fakeEnv(o: { ortNodeVersion?: string; packageSays?: string; packageLibs?: string[] } = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-install-'));
  const targetDir = path.join(root, 'bin');
  fs.mkdirSync(targetDir);
  fs.writeFileSync(path.join(targetDir, 'libonnxruntime.so.1'), 'core');
  const calls: string[] = [];
  const env: InstallEnv = {
    targetDir,
    ortNodeVersion: o.ortNodeVersion ?? '1.29.0',
    ortNodeDir: path.join(root, 'onnxruntime-node'),
    exec(command, args, opts) {
      calls.push(`${path.basename(command)} ${args.map((a) => path.basename(a)).join(' ')} ONNXRUNTIME_NODE_INSTALL=${opts.env?.ONNXRUNTIME_NODE_INSTALL}`);
      fs.writeFileSync(path.join(targetDir, 'libonnxruntime_providers_cuda.so'), 'cuda12 provider');
    },
    fetchPackage(spec, into) {
      calls.push(`fetch ${spec}`);
      const pkg = path.join(into, 'package');
      fs.mkdirSync(path.join(pkg, 'Plugins/Linux/x64'), { recursive: true });
      fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'com.github.asus4.onnxruntime.linux-x64-gpu', version: '0.4.9' }));
      fs.writeFileSync(path.join(pkg, 'README.md'), `# ONNX Runtime Plugin\nONNX Runtime ${o.packageSays ?? '1.29.0'} for Unity, CUDA 13\n`);
      for (const lib of o.packageLibs ?? ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']) {
        fs.writeFileSync(path.join(pkg, 'Plugins/Linux/x64', lib), `cuda13 ${lib}`);
      }
      return pkg;
    },
    log: () => {},
  };
  return { env, calls, targetDir };
}

describe('the CUDA provider installer', () => {
  test('with no provider the state is absent', () => {
    expect(providerState(fakeEnv().env)).toEqual({ state: 'absent' });
  });

  test('cuda13 copies both libraries beside libonnxruntime.so.1 after checking both versions, and the state is present', () => {
    const { env, calls, targetDir } = fakeEnv();
    expect(installCudaProvider('cuda13', env)).toEqual({ state: 'present', flavour: 'cuda13', onnxruntime: '1.29.0' });
    expect(calls).toEqual([`fetch ${CUDA13_PACKAGE}`]);
    expect(fs.readFileSync(path.join(targetDir, 'libonnxruntime_providers_cuda.so'), 'utf8')).toBe('cuda13 libonnxruntime_providers_cuda.so');
    expect(fs.readFileSync(path.join(targetDir, 'libonnxruntime_providers_shared.so'), 'utf8')).toBe('cuda13 libonnxruntime_providers_shared.so');
    expect(providerState(env)).toMatchObject({ state: 'present', flavour: 'cuda13' });
  });

  test('cuda13 is refused before any download when onnxruntime-node is not 1.29.0', () => {
    const { env, calls } = fakeEnv({ ortNodeVersion: '1.30.0' });
    expect(() => installCudaProvider('cuda13', env)).toThrow(expect.objectContaining({ code: 'device_unavailable', message: expect.stringMatching(/onnxruntime-node is 1\.30\.0/) }));
    expect(calls).toEqual([]);
    expect(providerState(env)).toEqual({ state: 'absent' });
  });

  test('cuda13 is refused when the package says another onnxruntime version or lacks a library, and nothing is copied', () => {
    for (const o of [{ packageSays: '1.28.0' }, { packageLibs: ['libonnxruntime_providers_cuda.so'] }]) {
      const { env, targetDir } = fakeEnv(o);
      expect(() => installCudaProvider('cuda13', env)).toThrow(expect.objectContaining({ code: 'device_unavailable' }));
      expect(fs.existsSync(path.join(targetDir, 'libonnxruntime_providers_cuda.so'))).toBe(false);
    }
  });

  test("cuda12 runs onnxruntime-node's own installer with ONNXRUNTIME_NODE_INSTALL=cuda12", () => {
    const { env, calls } = fakeEnv();
    expect(installCudaProvider('cuda12', env)).toEqual({ state: 'present', flavour: 'cuda12', onnxruntime: '1.29.0' });
    expect(calls).toEqual(['node install.js ONNXRUNTIME_NODE_INSTALL=cuda12']);
  });

  test('a provider recorded for another onnxruntime version, or of unknown origin, is the wrong version', () => {
    const { env } = fakeEnv();
    installCudaProvider('cuda12', env);
    expect(providerState({ ...env, ortNodeVersion: '1.30.0' })).toEqual({ state: 'wrong_version', found: '1.29.0', wanted: '1.30.0' });
    fs.rmSync(path.join(env.targetDir, 'logitscope-cuda-provider.json'));
    expect(providerState(env)).toMatchObject({ state: 'wrong_version', found: expect.stringMatching(/unknown/) });
  });
});
