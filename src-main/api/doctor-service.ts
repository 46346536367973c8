/** The `app.doctor` request: what this machine can run on, and what to install where CUDA is missing. */
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir } from '../app-paths.ts';
import { engineLogPath } from '../db-paths.ts';
import { CUDA_INSTALL_HINT, cudaProviderInstalled, ortBinaryDir } from '../engine/cuda-provider.ts';
import { listProviders, probeDevice } from '../engine/ort-session.ts';
import type { DoctorReport } from './contract.ts';
import { readModelConfig } from '../engine/config.ts';
import { memoryPlan, parameterCount } from '../engine/model-plan.ts';

/** What `modelDir` is and what it needs per device kind (CPU in float32, CUDA in float16, the engine's defaults), from config.json. */
function modelReport(modelDir: string): NonNullable<DoctorReport['model']> {
  const c = readModelConfig(modelDir);
  const plans = (['cpu', 'cuda'] as const).map((device) => ({ device, plan: memoryPlan(c, device === 'cpu' ? 'float32' : 'float16') }));
  return { dir: modelDir, family: c.family, modelType: c.modelType, parameters: parameterCount(c), plans };
}

export async function doctor(dbPath: string, opts: { modelDir?: string } = {}): Promise<DoctorReport> {
  const version = (name: string) => createRequire(import.meta.url)(`${name}/package.json`).version as string;
  const cpu = await probeDevice('cpu');
  const devices: DoctorReport['devices'] = [{ device: 'cpu', starts: cpu.ok, detail: cpu.ok ? 'starts' : `fails: ${cpu.reason}` }];
  if (!cudaProviderInstalled()) {
    devices.push({ device: 'cuda', starts: false, detail: `the provider library is not in ${ortBinaryDir()}: ${CUDA_INSTALL_HINT}` });
  } else {
    const cuda = await probeDevice('cuda');
    devices.push({ device: 'cuda', starts: cuda.ok, detail: cuda.ok ? 'starts: run with --device cuda (or cuda:N for GPU N)' : `installed but does not start: ${cuda.reason}` });
  }
  const webgpu = await probeWebGpu();
  devices.push({
    device: 'webgpu',
    starts: webgpu.ok,
    detail: webgpu.ok ? 'a WebGPU adapter is found and a session starts: run with --device webgpu' : `no WebGPU adapter found: ${webgpu.reason}`,
  });
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
    engineLog: engineLogPath(dbPath),
    ...(opts.modelDir !== undefined && { model: modelReport(opts.modelDir) }),
  };
}

const WEBGPU_PROBE = fileURLToPath(new URL('./webgpu-probe.ts', import.meta.url));
/** tsx's loader by its own location, as scale/devices.ts starts its children. */
const TSX = import.meta.resolve('tsx');
/** Long enough for Dawn to enumerate a real GPU's adapters (well under a second where measured). */
export const WEBGPU_PROBE_TIMEOUT_MS = 20_000;

/**
 * Whether a WebGPU session starts here: a one-node session with onnxruntime's bundled WebGPU
 * provider, in a child process that is killed after `timeoutMs`. A failure's reason is
 * onnxruntime's words for it ("Failed to get a WebGPU adapter: No supported adapters") with the
 * first line Dawn wrote to stderr (such as "Couldn't load Vulkan: libvulkan.so.1 ...").
 */
export function probeWebGpu(timeoutMs = WEBGPU_PROBE_TIMEOUT_MS): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TSX, WEBGPU_PROBE], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-8000)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    let finished = false; // 'error' and 'close' can both come
    const finish = (spawnError?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (spawnError) return resolve({ ok: false, reason: `the check could not start (${spawnError.message})` });
      if (timedOut) return resolve({ ok: false, reason: `no answer from the WebGPU provider within ${timeoutMs / 1000} s (the adapter request hung)` });
      const line = stdout.trim().split('\n').pop() ?? '';
      let answer: { ok: true } | { ok: false; reason: string } | undefined;
      try {
        answer = JSON.parse(line);
      } catch {
        answer = undefined;
      }
      if (answer?.ok) return resolve({ ok: true });
      const why = answer ? shortReason(answer.reason) : `the check exited without an answer${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}`;
      const dawn = /Warning: (.+)/.exec(stderr)?.[1]?.trim();
      resolve({ ok: false, reason: dawn && answer ? `${why} (${dawn})` : why });
    };
    child.on('error', (e) => finish(e));
    child.on('close', () => finish());
  });
}

/** onnxruntime's message names a source file and line before the words that matter. */
function shortReason(message: string): string {
  const adapter = /Failed to get a WebGPU adapter:[^\n)]*/.exec(message);
  return (adapter ? adapter[0] : message.split('\n')[0]).trim();
}
