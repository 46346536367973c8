/**
 * Weight conversion between the checkpoint's dtype and the compute dtype, run by onnxruntime: a
 * one-node Cast graph streamed over each tensor in chunks, so no element is touched by JavaScript.
 * bf16 has no onnxruntime-node tensor type; its bits go in as uint16 and come out as the bits of
 * the equal float32 (a bf16 is the top half of a float32), which is exact.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import { LogitscopeError } from '../errors.ts';
import { GraphBuilder } from './graph/onnx-builder.ts';
import type { ComputeType } from './graph/layers.ts';
import { createSession, type HostTensor, type Session } from './ort-session.ts';
import { DTYPE_BYTES, type TensorRef, type WeightDtype } from './tensor-ref.ts';

/** Elements per Cast run: 64 MiB of fp32 input, big enough that a run's overhead vanishes. */
const CHUNK = 1 << 24;

const read = promisify(fs.read);
const write = promisify(fs.write);

type Step = (bytes: Uint8Array, n: number) => Promise<Uint8Array>;

/** x [n] of `from` -> y [n] of `to`: one Cast (and for bf16 the shift that makes it a float32's bits). */
function castGraph(from: 'float32' | 'float16' | 'bf16', to: 'float32' | 'float16'): Uint8Array {
  const b = new GraphBuilder(`cast_${from}_${to}`);
  if (from === 'bf16') {
    const x = b.input('x', 'uint16', ['n']);
    const wide = b.op('Cast', [x], { to: GraphBuilder.elemCode('uint32') }); // [n]
    const sixteen = b.op('Cast', [b.constInt64([16], [])], { to: GraphBuilder.elemCode('uint32') });
    b.output(b.op('BitShift', [wide, sixteen], { direction: 'LEFT' }), 'y', 'uint32', ['n']);
  } else {
    b.output(b.op('Cast', [b.input('x', from, ['n'])], { to: GraphBuilder.elemCode(to) }), 'y', to, ['n']);
  }
  return b.encode();
}

function hostTensor(type: 'float32' | 'float16' | 'uint16', bytes: Uint8Array, n: number): HostTensor {
  if (type === 'float32') return { type, data: new Float32Array(bytes.buffer, bytes.byteOffset, n), dims: [n] };
  return { type, data: new Uint16Array(bytes.buffer, bytes.byteOffset, n), dims: [n] };
}

function asBytes(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * Converts tensors from their own dtype to `to`. Sessions are made on first use and kept for the
 * converter's life; `release` frees them.
 */
export class WeightConverter {
  private readonly sessions = new Map<string, Session>();

  /** Bytes per element of the output. */
  static bytes(to: ComputeType): number {
    return to === 'float32' ? 4 : 2;
  }

  /**
   * Writes each tensor's values as `to` into `fd` at its offset, CHUNK elements at a time. The
   * chunks of all tensors form one pipeline: reading the next chunk (even of the next tensor) and
   * writing the last one run on libuv's threads while onnxruntime casts this one. On a 2-core
   * machine the write into the page cache is the slowest of the three (~350 MB/s of output), and
   * GPT-J's attention matrices are one chunk each, so a pipeline per tensor would run them serially.
   */
  async convertTensors(tensors: readonly { ref: TensorRef; offset: number }[], to: ComputeType, fd: number): Promise<void> {
    const outBytes = WeightConverter.bytes(to);
    const chunks = tensors.flatMap(({ ref, offset }) => {
      const n = ref.shape.reduce((a, b) => a * b, 1);
      return Array.from({ length: Math.ceil(n / CHUNK) }, (_, i) => ({ ref, count: Math.min(CHUNK, n - i * CHUNK), from: i * CHUNK, to: offset + i * CHUNK * outBytes }));
    });
    const sources = new Map<string, number>();
    const source = (file: string) => sources.get(file) ?? sources.set(file, fs.openSync(file, 'r')).get(file)!;
    // Two input buffers, alternating: chunk j+1 is read into one while chunk j, in the other, is cast.
    const buffers = [0, 1].map(() => new Uint8Array(CHUNK * 4));
    const read = (j: number) => {
      const { ref, count, from } = chunks[j];
      const inBytes = DTYPE_BYTES[ref.dtype];
      return readFully(source(ref.file), buffers[j % 2].subarray(0, count * inBytes), ref.offset + from * inBytes, ref);
    };
    let writing: Promise<unknown> = Promise.resolve();
    try {
      let reading = chunks.length > 0 ? read(0) : undefined;
      for (let j = 0; j < chunks.length; j++) {
        const bytes = await reading!;
        if (j + 1 < chunks.length) reading = read(j + 1);
        const { ref, count } = chunks[j];
        const out = await (await this.step(ref.dtype, to))(bytes, count);
        await writing;
        writing = writeFully(fd, out, chunks[j].to);
      }
      await writing;
    } finally {
      await writing.catch(() => {});
      for (const src of sources.values()) fs.closeSync(src);
    }
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
  }

  private async step(from: WeightDtype, to: ComputeType): Promise<Step> {
    const same = (from === 'F32' && to === 'float32') || (from === 'F16' && to === 'float16');
    // A copy: the input buffer is refilled while this chunk's write may still be pending.
    if (same) return async (bytes) => bytes.slice();
    if (from === 'BF16') {
      const widen = await this.cast('bf16', 'float32');
      if (to === 'float32') return widen;
      const narrow = await this.cast('float32', 'float16');
      return async (bytes, n) => narrow(await widen(bytes, n), n);
    }
    return this.cast(from === 'F32' ? 'float32' : 'float16', to);
  }

  private async cast(from: 'float32' | 'float16' | 'bf16', to: 'float32' | 'float16'): Promise<Step> {
    const key = `${from}>${to}`;
    let session = this.sessions.get(key);
    if (!session) {
      session = await createSession(castGraph(from, to), { device: 'cpu', weightFolder: '.', label: `weight conversion ${from} to ${to}` });
      this.sessions.set(key, session);
    }
    const s = session;
    const inType = from === 'bf16' ? 'uint16' : from;
    return async (bytes, n) => asBytes((await s.run({ x: hostTensor(inType, bytes, n) }, ['y'])).y);
  }
}

async function readFully(fd: number, dst: Uint8Array, position: number, ref: TensorRef): Promise<Uint8Array> {
  let done = 0;
  while (done < dst.length) {
    const { bytesRead } = await read(fd, dst, done, dst.length - done, position + done);
    if (bytesRead === 0) throw new LogitscopeError('weights_truncated', `tensor "${ref.name}" runs past the end of the file (was it changed after opening?)`, ref.file);
    done += bytesRead;
  }
  return dst;
}

async function writeFully(fd: number, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) done += (await write(fd, data, done, data.length - done, position + done)).bytesWritten;
}
