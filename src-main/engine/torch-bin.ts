import fs from 'node:fs';
import yauzl from 'yauzl';
import { LogitscopeError } from '../errors.ts';
import { isNonWeightBuffer } from './config.ts';
import type { WeightFileIndex } from './safetensors.ts';
import { DTYPE_BYTES, type TensorRef, type WeightDtype } from './tensor-ref.ts';

/**
 * Reads a PyTorch `pytorch_model.bin` (the torch.save zip format) without loading it: the zip's
 * entries are stored uncompressed, so every tensor is a byte range of the .bin itself. A real
 * GPT-J .bin is 24 GB; only the central directory and `data.pkl` (tens of KB) are read here.
 */
export function readTorchBin(file: string): WeightFileIndex {
  const fd = fs.openSync(file, 'r');
  try {
    const fileSize = fs.fstatSync(fd).size;
    const entries = listZipEntries(fd, fileSize, file);
    const pklNames = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pklNames.length !== 1) {
      throw new LogitscopeError('weights_corrupt', `expected one "<folder>/data.pkl" in the archive, found ${pklNames.length}: not a torch.save checkpoint`, file);
    }
    const prefix = pklNames[0].slice(0, -'/data.pkl'.length);
    const byteorder = entries.get(`${prefix}/byteorder`);
    if (byteorder && readEntry(fd, fileSize, file, byteorder).toString('latin1').trim() !== 'little') {
      throw new LogitscopeError('weights_dtype_unsupported', 'the checkpoint was saved on a big-endian machine; only little-endian weights are supported', file);
    }
    const header = readEntry(fd, fileSize, file, entries.get(pklNames[0])!);
    const stateDict = unpickle(header, file);
    const dataStarts = new Map<string, number>();
    const tensors: TensorRef[] = [];
    for (const [name, value] of stateDict) {
      if (typeof name !== 'string') throw new LogitscopeError('weights_corrupt', 'data.pkl: a state dict key is not a string', file);
      if (isNonWeightBuffer(name)) continue;
      if (!(value instanceof TensorRecord)) {
        throw new LogitscopeError('weights_corrupt', `data.pkl: "${name}" is not a tensor`, file);
      }
      const { storage, storageOffset, size, stride } = value;
      const dtype = STORAGE_DTYPES.get(storage.cls);
      if (!dtype) {
        throw new LogitscopeError('weights_dtype_unsupported', `tensor "${name}" is stored as torch.${storage.cls}; only FloatStorage, HalfStorage and BFloat16Storage weights are supported`, file);
      }
      if (!isContiguous(size, stride)) {
        throw new LogitscopeError('weights_corrupt', `tensor "${name}" is not contiguous (size [${size}], stride [${stride}]); re-save it with .contiguous()`, file);
      }
      const entryName = `${prefix}/data/${storage.key}`;
      const entry = entries.get(entryName);
      if (!entry) throw new LogitscopeError('weights_corrupt', `tensor "${name}" refers to storage "${entryName}", which is not in the archive`, file);
      const el = DTYPE_BYTES[dtype];
      const numel = size.reduce((a, b) => a * b, 1);
      const end = (storageOffset + numel) * el;
      if (end > entry.uncompressedSize) {
        throw new LogitscopeError('weights_truncated', `tensor "${name}" needs ${end} bytes of storage "${entryName}", which holds only ${entry.uncompressedSize}`, file);
      }
      let start = dataStarts.get(entryName);
      if (start === undefined) {
        start = entryDataStart(fd, fileSize, file, entry);
        dataStarts.set(entryName, start);
      }
      tensors.push({ name, dtype, shape: size, file, offset: start + storageOffset * el, byteLength: numel * el });
    }
    return { tensors, header };
  } finally {
    fs.closeSync(fd);
  }
}

// A Map, not an object: the class name comes from the file and could be "constructor".
const STORAGE_DTYPES = new Map<string, WeightDtype>([
  ['FloatStorage', 'F32'],
  ['HalfStorage', 'F16'],
  ['BFloat16Storage', 'BF16'],
]);

/** Row-major contiguity; a dimension of size 1 may carry any stride, as in torch's own check. */
function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  if (size.length !== stride.length) return false;
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== expected) return false;
    expected *= size[i];
  }
  return true;
}

// ---- zip: yauzl parses the central directory (zip64 included); reads are synchronous so openCheckpoint can be too.

class SyncFdReader extends yauzl.RandomAccessReader {
  constructor(private readonly fd: number) {
    super();
  }
  override _readStreamForRange(): never {
    throw new Error('SyncFdReader only serves read()');
  }
  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    let err: Error | null = null;
    try {
      readFully(this.fd, buffer, offset, length, position);
    } catch (e) {
      err = e as Error;
    }
    callback(err);
  }
}

function readFully(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buffer, offset + done, Math.min(length - done, 1 << 30), position + done);
    if (n === 0) throw new Error('unexpected end of file');
    done += n;
  }
}

function listZipEntries(fd: number, fileSize: number, file: string): Map<string, yauzl.Entry> {
  const entries = new Map<string, yauzl.Entry>();
  let zip: yauzl.ZipFile | undefined;
  let error: Error | undefined;
  const options = { lazyEntries: true, autoClose: false, validateEntrySizes: true };
  yauzl.fromRandomAccessReader(new SyncFdReader(fd), fileSize, options, (err, z) => {
    if (err) return void (error = err);
    z.on('error', (e: Error) => void (error ??= e));
    z.on('entry', (e: yauzl.Entry) => void entries.set(e.fileName, e));
    zip = z;
  });
  while (!error && zip && zip.entriesRead < zip.entryCount) {
    const before = zip.entriesRead;
    zip.readEntry();
    if (!error && zip.entriesRead === before) throw new Error('yauzl no longer reads entries synchronously from a synchronous reader');
  }
  if (error || !zip) throw zipError(fd, fileSize, file, error);
  return entries;
}

function zipError(fd: number, fileSize: number, file: string, error: Error | undefined): LogitscopeError {
  const head = Buffer.alloc(Math.min(4, fileSize));
  fs.readSync(fd, head, 0, head.length, 0);
  if (head.length === 4 && head.readUInt32LE(0) === 0x04034b50 && /central directory record signature not found/.test(error?.message ?? '')) {
    return new LogitscopeError('weights_truncated', 'the zip archive has no central directory: the file is cut short (re-download it)', file);
  }
  if (head[0] === 0x80) {
    return new LogitscopeError('weights_corrupt', 'this is the legacy (pre-1.6) torch.save format, which is not supported; re-save it with a recent PyTorch or convert it to safetensors', file);
  }
  return new LogitscopeError('weights_corrupt', `not a torch.save zip archive (${error?.message ?? 'unreadable'})`, file);
}

/** Absolute offset of an entry's bytes: after its local header, whose extra field torch uses to 64-byte-align the data. */
function entryDataStart(fd: number, fileSize: number, file: string, entry: yauzl.Entry): number {
  if (entry.compressionMethod !== 0) {
    throw new LogitscopeError('weights_corrupt', `zip entry "${entry.fileName}" is compressed; torch.save stores entries uncompressed, so this archive was re-packed by another tool and cannot be read in place`, file);
  }
  const local = Buffer.alloc(30);
  const at = entry.relativeOffsetOfLocalHeader;
  if (at + 30 > fileSize) throw new LogitscopeError('weights_truncated', `zip entry "${entry.fileName}" starts past the end of the file`, file);
  readFully(fd, local, 0, 30, at);
  if (local.readUInt32LE(0) !== 0x04034b50) throw new LogitscopeError('weights_corrupt', `zip entry "${entry.fileName}" has no local header`, file);
  const start = at + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  if (start + entry.uncompressedSize > fileSize) {
    throw new LogitscopeError('weights_truncated', `zip entry "${entry.fileName}" ends past the end of the file: the file is cut short`, file);
  }
  return start;
}

function readEntry(fd: number, fileSize: number, file: string, entry: yauzl.Entry): Buffer {
  const start = entryDataStart(fd, fileSize, file, entry);
  const buf = Buffer.alloc(entry.uncompressedSize);
  readFully(fd, buf, 0, buf.length, start);
  return buf;
}

// ---- pickle: just the opcodes torch.save emits for a state dict (protocol 2, plus the few protocol 4 adds).
// Nothing is ever called: globals become names, and only the three callables a state dict uses are understood.

class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
}
class StorageRef {
  constructor(readonly cls: string, readonly key: string) {}
}
class TensorRecord {
  constructor(readonly storage: StorageRef, readonly storageOffset: number, readonly size: number[], readonly stride: number[]) {}
}
/** The result of calling a global we do not model; harmless unless a tensor is expected there. */
class Opaque {
  constructor(readonly callable: unknown) {}
}

function unpickle(data: Buffer, file: string): Map<unknown, unknown> {
  const fail = (msg: string) => new LogitscopeError('weights_corrupt', `data.pkl: ${msg}`, file);
  let pos = 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const need = (n: number) => {
    if (pos + n > data.length) throw fail(`ends unexpectedly at byte ${data.length}`);
    const at = pos;
    pos += n;
    return at;
  };
  const pop = () => {
    if (stack.length === 0) throw fail(`stack underflow at byte ${pos - 1}`);
    return stack.pop();
  };
  const popMark = () => {
    const items = stack;
    const outer = marks.pop();
    if (!outer) throw fail(`no MARK before byte ${pos - 1}`);
    stack = outer;
    return items;
  };
  const top = () => {
    if (stack.length === 0) throw fail(`stack underflow at byte ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) throw fail(`ends unexpectedly at byte ${data.length}`);
    const s = data.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof Map)) throw fail(`SETITEMS on a non-dict at byte ${pos - 1}`);
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]) => {
    if (!Array.isArray(target)) throw fail(`APPENDS on a non-list at byte ${pos - 1}`);
    target.push(...items);
  };

  for (;;) {
    const opAt = pos;
    const op = data[need(1)];
    switch (op) {
      case 0x80: need(1); break; // PROTO
      case 0x95: need(8); break; // FRAME: framing only matters to streaming readers
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(data.readUInt8(need(1))); break; // BININT1
      case 0x4d: stack.push(data.readUInt16LE(need(2))); break; // BININT2
      case 0x4a: stack.push(data.readInt32LE(need(4))); break; // BININT
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        const n = data[need(1)];
        const at = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[at + i]);
        if (n > 0 && data[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`integer too large at byte ${opAt}`);
        stack.push(Number(v));
        break;
      }
      case 0x47: stack.push(data.readDoubleBE(need(8))); break; // BINFLOAT
      case 0x58: { // BINUNICODE
        const n = data.readUInt32LE(need(4));
        const at = need(n);
        stack.push(data.toString('utf8', at, at + n));
        break;
      }
      case 0x8c: { // SHORT_BINUNICODE
        const n = data[need(1)];
        const at = need(n);
        stack.push(data.toString('utf8', at, at + n));
        break;
      }
      case 0x71: memo.set(data[need(1)], top()); break; // BINPUT
      case 0x72: memo.set(data.readUInt32LE(need(4)), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const key = op === 0x68 ? data[need(1)] : data.readUInt32LE(need(4));
        if (!memo.has(key)) throw fail(`memo key ${key} is unset at byte ${opAt}`);
        stack.push(memo.get(key));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(new PyGlobal(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        stack.push(new PyGlobal(String(pop()), String(name)));
        break;
      }
      case 0x74: { const items = popMark(); stack.push(items); break; } // TUPLE (popMark swaps `stack`)
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x62: pop(); break; // BUILD: the state (e.g. a state dict's _metadata) is not needed
      case 0x51: stack.push(persistentLoad(pop(), opAt, fail)); break; // BINPERSID
      case 0x52: { // REDUCE
        const args = pop();
        stack.push(reduce(pop(), args, opAt, fail));
        break;
      }
      case 0x2e: { // STOP
        const result = pop();
        if (!(result instanceof Map)) throw fail('does not hold a state dict (a saved model object, perhaps); save model.state_dict() instead');
        return result;
      }
      default:
        throw fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opAt}`);
    }
  }
}

/** torch.save's persistent ids: ('storage', torch.<X>Storage, key, location, numel). */
function persistentLoad(pid: unknown, at: number, fail: (m: string) => Error): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof PyGlobal) || (typeof pid[2] !== 'string' && typeof pid[2] !== 'number')) {
    throw fail(`unexpected persistent id at byte ${at}`);
  }
  return new StorageRef(pid[1].name, String(pid[2]));
}

function reduce(callable: unknown, args: unknown, at: number, fail: (m: string) => Error): unknown {
  if (!(callable instanceof PyGlobal) || !Array.isArray(args)) throw fail(`REDUCE without a callable at byte ${at}`);
  const fn = `${callable.module}.${callable.name}`;
  if (fn === 'collections.OrderedDict') return new Map();
  if (fn === 'torch._utils._rebuild_parameter' || fn === 'torch._utils._rebuild_parameter_with_state') return args[0];
  // Tensor subclasses: (rebuild function, subclass, its args, state).
  if (fn === 'torch._tensor._rebuild_from_type_v2') return reduce(args[0], args[2], at, fail);
  if (fn !== 'torch._utils._rebuild_tensor_v2') return new Opaque(callable);
  const [storage, offset, size, stride] = args;
  const isInts = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
  if (!(storage instanceof StorageRef) || !Number.isSafeInteger(offset) || (offset as number) < 0 || !isInts(size) || !isInts(stride)) {
    throw fail(`malformed _rebuild_tensor_v2 call at byte ${at}`);
  }
  return new TensorRecord(storage, offset as number, size, stride);
}
