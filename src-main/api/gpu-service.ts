/** The `gpu.status` and `gpu.install` requests: onnxruntime's CUDA provider, found or fetched (gpu/install.ts). */
import { type CudaFlavour, defaultInstallEnv, installCudaProvider, providerState } from '../gpu/install.ts';
import type { GpuProvider } from './contract.ts';

export function gpuStatus(): GpuProvider {
  const env = defaultInstallEnv();
  return { targetDir: env.targetDir, provider: providerState(env) };
}

/** Blocks while the provider is fetched (npm, or onnxruntime-node's installer), as the CLI always did. */
export function gpuInstall(flavour: CudaFlavour): GpuProvider {
  const env = defaultInstallEnv();
  return { targetDir: env.targetDir, provider: installCudaProvider(flavour, env) };
}
