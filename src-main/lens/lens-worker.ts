/** The lens worker: runs the tuned lens's onnxruntime sessions (local-sessions.ts) off the main thread. */
import { parentPort } from 'node:worker_threads';
import { serializeError } from '../errors.ts';
import { type LensCalls, releaseAll, runApply, runGemm, runGram } from './local-sessions.ts';

type Request = { [K in keyof LensCalls]: { id: number; op: K; payload: LensCalls[K] } }[keyof LensCalls];

async function handle(msg: Request): Promise<{ result: unknown; transfer: ArrayBuffer[] }> {
  switch (msg.op) {
    case 'gram': {
      const r = await runGram(msg.payload);
      return { result: r, transfer: [...new Set([r.xtx.buffer, r.xty.buffer, r.sumX.buffer, r.sumY.buffer])] as ArrayBuffer[] };
    }
    case 'gemm': {
      const r = await runGemm(msg.payload);
      return { result: r, transfer: [r.buffer as ArrayBuffer] };
    }
    case 'apply': {
      const r = await runApply(msg.payload);
      return { result: r, transfer: [r.buffer as ArrayBuffer] };
    }
    case 'release':
      return { result: await releaseAll(), transfer: [] };
  }
}

parentPort!.on('message', async (msg: Request) => {
  try {
    const { result, transfer } = await handle(msg);
    parentPort!.postMessage({ id: msg.id, ok: true, result }, transfer);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, ok: false, error: serializeError(e) });
  }
});
