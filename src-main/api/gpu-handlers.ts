/** `gpu.*`: onnxruntime's CUDA provider, found or fetched (gpu-service.ts). */
import { gpuInstall, gpuStatus } from './gpu-service.ts';
import type { Handlers, RequestsOf } from './handlers.ts';

export function gpuHandlers(): Handlers<RequestsOf<'gpu'>> {
  return {
    'gpu.status': async () => gpuStatus(),
    'gpu.install': async (p) => gpuInstall(p.flavour),
  };
}
