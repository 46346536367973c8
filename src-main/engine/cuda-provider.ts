import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** What a GPU user runs to get the CUDA provider; kept next to the check so the two agree. */
export const CUDA_INSTALL_HINT =
  'install the CUDA provider with `npx logitscope gpu install cuda12` (it runs `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install`) ' +
  'or `npx logitscope gpu install cuda13` (it must match onnxruntime-node exactly), and put that CUDA version\'s libraries and cuDNN 9 on LD_LIBRARY_PATH';

/** Where onnxruntime-node keeps its native libraries (and where the CUDA provider is installed). */
export function ortBinaryDir(): string {
  const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  return path.join(path.dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
}

/**
 * Whether the CUDA provider library is installed next to onnxruntime-node. Checked by file, without
 * loading onnxruntime, so the UI can tell before anything starts; it still needs CUDA/cuDNN to load.
 */
export function cudaProviderInstalled(): boolean {
  return fs.existsSync(path.join(ortBinaryDir(), 'libonnxruntime_providers_cuda.so'));
}
