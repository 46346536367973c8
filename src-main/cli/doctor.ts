import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { defaultCacheDir } from '../app-paths.ts';
import { CUDA_INSTALL_HINT, cudaProviderInstalled, ortBinaryDir } from '../engine/cuda-provider.ts';
import { listProviders, probeDevice } from '../engine/ort-session.ts';
import { defaultDbPath } from '../store/location.ts';

/** `logitscope doctor`: what this machine can run on, and what to install when CUDA is missing. */
export const doctorCommand = {
  summary: 'which execution providers load here, the GPU, and where data is kept',
  async run() {
    const version = (name: string) => createRequire(import.meta.url)(`${name}/package.json`).version as string;
    console.log(`node ${process.version}, onnxruntime-node ${version('onnxruntime-node')}, better-sqlite3 ${version('better-sqlite3')}`);
    console.log(`providers in this build: ${listProviders().map((p) => `${p.name}${p.bundled ? '' : ' (installed separately)'}`).join(', ')}`);
    const cpu = await probeDevice('cpu');
    console.log(`cpu:  ${cpu.ok ? 'starts' : `fails: ${cpu.reason}`}`);
    if (!cudaProviderInstalled()) {
      console.log(`cuda: the provider library is not in ${ortBinaryDir()}: ${CUDA_INSTALL_HINT}`);
    } else {
      const cuda = await probeDevice('cuda');
      console.log(`cuda: ${cuda.ok ? 'starts' : `installed but does not start: ${cuda.reason}`}`);
    }
    try {
      const gpus = execFileSync('nvidia-smi', ['--query-gpu=name,memory.used,memory.total,driver_version', '--format=csv,noheader'], { encoding: 'utf8' });
      for (const line of gpus.trim().split('\n')) console.log(`gpu:  ${line}`);
    } catch {
      console.log('gpu:  nvidia-smi not found or no NVIDIA GPU');
    }
    console.log(`results database: ${defaultDbPath()}`);
    console.log(`graph and weight cache: ${defaultCacheDir()}`);
  },
};
