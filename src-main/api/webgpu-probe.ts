/**
 * `logitscope doctor`'s WebGPU check, run as a child process (doctor-service.ts): asking Dawn for an
 * adapter can hang on a broken driver, and Dawn prints its warnings straight to the process's
 * stderr, so the check runs where it can be timed out and its output read. Prints one JSON line,
 * probeDevice's answer.
 */
import { probeDevice } from '../engine/ort-session.ts';

const result = await probeDevice('webgpu');
process.stdout.write(`${JSON.stringify(result)}\n`);
// onnxruntime's WebGPU context may keep native threads alive; the answer is out, so leave now.
process.exit(0);
