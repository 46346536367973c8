import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { deviceSchema } from '../src-main/api/schemas.ts';
import { deviceName, parseDevice } from '../src-main/protocol/device.ts';
import { Engine } from '../src-main/engine/engine.ts';
import { executionProvider, probeDevice } from '../src-main/engine/ort-session.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

describe('device strings', () => {
  test('cpu, cuda, cuda:N and webgpu parse to a kind and a GPU index, and print back', () => {
    expect(parseDevice('cpu')).toEqual({ kind: 'cpu', index: 0 });
    expect(parseDevice('cuda')).toEqual({ kind: 'cuda', index: 0 });
    expect(parseDevice('cuda:0')).toEqual({ kind: 'cuda', index: 0 });
    expect(parseDevice('cuda:3')).toEqual({ kind: 'cuda', index: 3 });
    expect(parseDevice('cuda:127')).toEqual({ kind: 'cuda', index: 127 });
    expect(parseDevice('webgpu')).toEqual({ kind: 'webgpu', index: 0 });
    for (const d of ['cpu', 'cuda:0', 'cuda:5', 'webgpu']) expect(deviceName(parseDevice(d))).toBe(d);
  });

  test('anything else is an argument_invalid error on the field that names what a device is', () => {
    for (const bad of ['gpu', 'cuda:x', 'CUDA', 'cuda:', 'cuda:01', 'cuda:-1', 'cuda:1000', ' cpu', 'cuda:1,cuda:2', 'webgpu:0', '']) {
      expect(() => parseDevice(bad, '--device'), bad).toThrow(expect.objectContaining({ code: 'argument_invalid', path: '--device' }));
      expect(deviceSchema.safeParse(bad).success, bad).toBe(false);
    }
    expect(() => parseDevice('gpu')).toThrow(/cpu, cuda, cuda:N .* or webgpu/);
    for (const good of ['cpu', 'cuda', 'cuda:2', 'webgpu']) expect(deviceSchema.safeParse(good).success, good).toBe(true);
  });

  test('each device gets its onnxruntime execution provider, a CUDA GPU by its deviceId', () => {
    expect(executionProvider(parseDevice('cpu'))).toBe('cpu');
    expect(executionProvider(parseDevice('cuda'))).toEqual({ name: 'cuda', deviceId: 0 });
    expect(executionProvider(parseDevice('cuda:3'))).toEqual({ name: 'cuda', deviceId: 3 });
    expect(executionProvider(parseDevice('webgpu'))).toEqual({ name: 'webgpu' });
  });
});

describe('choosing a device when loading a model', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-device-'));
  const cacheRoot = path.join(tmp, 'cache');
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('a bad device is refused before the model directory is read', async () => {
    await expect(Engine.load({ modelDir: path.join(tmp, 'no-such-model'), device: 'cuda:x', cacheRoot })).rejects.toMatchObject({ code: 'argument_invalid', path: 'device' });
  });

  test('a GPU that cannot start is device_unavailable, or the CPU when fallback is allowed; the model says which device it runs on', async () => {
    const ckpt = writeTinyGptj({ dir: path.join(tmp, 'model'), format: 'safetensors', seed: 3 });
    for (const device of ['cuda:1', 'webgpu']) {
      const probe = await probeDevice(device);
      if (probe.ok) {
        // A machine with this GPU: the model loads on it, in fp16 by default.
        const engine = await Engine.load({ modelDir: ckpt.dir, device, cacheRoot });
        const { kind, index } = parseDevice(device);
        expect(engine.info).toMatchObject({ device: kind, deviceIndex: index, computeDtype: 'float16' });
        await engine.dispose();
        continue;
      }
      await expect(Engine.load({ modelDir: ckpt.dir, device, cacheRoot })).rejects.toMatchObject({ code: 'device_unavailable' });
      const engine = await Engine.load({ modelDir: ckpt.dir, device, cacheRoot, allowCpuFallback: true });
      expect(engine.info).toMatchObject({ device: 'cpu', deviceIndex: 0, computeDtype: 'float32' });
      expect(engine.info.fallbackReason).toMatch(device === 'webgpu' ? /WebGPU/ : /CUDA/);
      await engine.dispose();
    }
  });
});
