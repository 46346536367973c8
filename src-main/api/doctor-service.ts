/** The `app.doctor` request: what this machine can run on, and what to install where CUDA is missing. */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { defaultCacheDir } from '../app-paths.ts';
import { CUDA_INSTALL_HINT, cudaProviderInstalled, ortBinaryDir } from '../engine/cuda-provider.ts';
import { listProviders, probeDevice } from '../engine/ort-session.ts';
import type { DoctorReport } from './contract.ts';

export async function doctor(dbPath: string): Promise<DoctorReport> {
  const version = (name: string) => createRequire(import.meta.url)(`${name}/package.json`).version as string;
  const cpu = await probeDevice('cpu');
  const devices: DoctorReport['devices'] = [{ device: 'cpu', starts: cpu.ok, detail: cpu.ok ? 'starts' : `fails: ${cpu.reason}` }];
  if (!cudaProviderInstalled()) {
    devices.push({ device: 'cuda', starts: false, detail: `the provider library is not in ${ortBinaryDir()}: ${CUDA_INSTALL_HINT}` });
  } else {
    const cuda = await probeDevice('cuda');
    devices.push({ device: 'cuda', starts: cuda.ok, detail: cuda.ok ? 'starts' : `installed but does not start: ${cuda.reason}` });
  }
  let gpus: string[];
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name,memory.used,memory.total,driver_version', '--format=csv,noheader'], { encoding: 'utf8' });
    gpus = out.trim().split('\n');
  } catch {
    gpus = [];
  }
  return {
    versions: { node: process.version, 'onnxruntime-node': version('onnxruntime-node'), 'better-sqlite3': version('better-sqlite3') },
    providers: listProviders(),
    devices,
    gpus,
    dbPath,
    cacheDir: defaultCacheDir(),
  };
}
