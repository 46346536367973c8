import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Envelope, EventName } from '../src-main/api/contract.ts';
import { CONTENT_SECURITY_POLICY, resolveStatic, startServer, type ApiHost, type RunningServer } from '../src-main/serve.ts';

/** A stand-in for the Lab: records what reaches it and emits events on demand. */
function fakeLab() {
  const calls: { name: string; payload: unknown }[] = [];
  const listeners = new Set<(name: EventName, payload: unknown) => void>();
  const lab: ApiHost = {
    dispatch: async (name, payload) => {
      calls.push({ name, payload });
      return { ok: true, result: { echo: name, payload } };
    },
    onEvent: (listener) => {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
  return { lab, calls, listeners, emit: (name: EventName, payload: unknown) => listeners.forEach((l) => l(name, payload)) };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Raw node:http, because fetch will not send a forged Host header. */
function request(port: number, opts: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('browser mode server', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-'));
  const renderer = path.join(dir, 'renderer');
  const fake = fakeLab();
  let server: RunningServer;
  const auth = () => ({ Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' });
  const post = (name: string, body: string, headers: Record<string, string> = auth()) => request(server.port, { method: 'POST', path: `/api/${name}`, headers, body });

  beforeAll(async () => {
    fs.mkdirSync(path.join(renderer, 'assets'), { recursive: true });
    fs.writeFileSync(path.join(renderer, 'index.html'), '<!doctype html><title>Lab</title>');
    fs.writeFileSync(path.join(renderer, 'assets', 'app.js'), 'console.log(1)');
    fs.writeFileSync(path.join(dir, 'secret.txt'), 'not for the browser');
    server = await startServer({ lab: fake.lab, rendererDir: renderer });
  });
  afterAll(async () => server?.close());

  test('it binds to loopback and prints a URL with a fresh 32-byte token', async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.token).toMatch(/^[0-9a-f]{64}$/);
    const other = await startServer({ lab: fake.lab, rendererDir: renderer });
    expect(other.token).not.toBe(server.token);
    await other.close();
  });

  test('a request with the token reaches the Lab and answers with its envelope', async () => {
    const r = await post('runs.list', JSON.stringify({ status: 'completed' }));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(r.body)).toEqual({ ok: true, result: { echo: 'runs.list', payload: { status: 'completed' } } });
  });

  test('requests without the right token are refused with 401 and never reach the Lab', async () => {
    const before = fake.calls.length;
    for (const headers of [{ 'Content-Type': 'application/json' }, { ...auth(), Authorization: 'Bearer wrong' }, { ...auth(), Authorization: `Bearer ${server.token}x` }]) {
      const r = await post('runs.list', '{}', headers);
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body)).toMatchObject({ ok: false, error: { code: 'unauthorized', path: 'token' } });
    }
    // The query form is only for the event stream, which cannot send headers.
    expect((await request(server.port, { method: 'POST', path: `/api/runs.list?token=${server.token}`, headers: { 'Content-Type': 'application/json' }, body: '{}' })).status).toBe(401);
    expect(fake.calls.length).toBe(before);
  });

  test('a foreign Host header (DNS rebinding) or a cross-origin Origin is refused with 403', async () => {
    const rebound = await post('runs.list', '{}', { ...auth(), Host: `evil.example:${server.port}` });
    expect(rebound.status).toBe(403);
    expect((await request(server.port, { path: '/', headers: { Host: 'evil.example' } })).status).toBe(403);
    const crossSite = await post('runs.list', '{}', { ...auth(), Origin: 'https://evil.example' });
    expect(crossSite.status).toBe(403);
    expect(JSON.parse(crossSite.body)).toMatchObject({ ok: false, error: { path: 'origin' } });
    const sameSite = await post('runs.list', '{}', { ...auth(), Origin: `http://127.0.0.1:${server.port}` });
    expect(sameSite.status).toBe(200);
    expect((await post('app.info', '{}', { ...auth(), Host: `localhost:${server.port}` })).status).toBe(200);
  });

  test('unknown requests, wrong methods, non-JSON bodies and oversized bodies get coded errors', async () => {
    const cases: [Promise<Reply>, number][] = [
      [post('no.such', '{}'), 404],
      [request(server.port, { path: '/api/runs.list', headers: auth() }), 405],
      [post('runs.list', '{"oops', auth()), 400],
      [post('runs.list', '{}', { Authorization: `Bearer ${server.token}`, 'Content-Type': 'text/plain' }), 415],
      [post('runs.list', JSON.stringify({ pad: 'x'.repeat(2 << 20) })), 413],
    ];
    for (const [reply, status] of cases) {
      const r = await reply;
      expect(r.status).toBe(status);
      expect((JSON.parse(r.body) as Envelope<unknown>).ok).toBe(false);
    }
  });

  test('the renderer is served with a strict CSP and the right MIME types, and nothing outside it', async () => {
    const index = await request(server.port, { path: '/' });
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe');
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    const js = await request(server.port, { path: '/assets/app.js' });
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/%00', '/assets']) {
      const r = await request(server.port, { path: p });
      expect(r.status, p).toBe(404);
      expect(r.body).not.toContain('not for the browser');
    }
    expect(resolveStatic(renderer, '/..%2fsecret.txt')).toBeNull();
  });

  test('the event stream needs the token and carries every Lab event as {name, payload}', async () => {
    expect((await request(server.port, { path: '/api/events' })).status).toBe(401);
    const received = await new Promise<string>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: server.port, path: `/api/events?token=${server.token}` }, (res) => {
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        let text = '';
        res.on('data', (c) => {
          text += c;
          if (text.includes('"runs.changed"')) {
            req.destroy();
            resolve(text);
          }
        });
        fake.emit('runs.changed', {});
      });
      req.on('error', reject);
    });
    expect(received).toContain(`data: ${JSON.stringify({ name: 'runs.changed', payload: {} })}\n\n`);
    // The stream unsubscribes when the client goes.
    await expect.poll(() => fake.listeners.size, { timeout: 10_000 }).toBe(0);
  });

  test('close() ends open event streams instead of hanging', async () => {
    const s = await startServer({ lab: fake.lab, rendererDir: renderer });
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const ended = new Promise<void>((resolve) => {
      http.get({ host: '127.0.0.1', port: s.port, path: `/api/events?token=${s.token}` }, (res) => {
        opened();
        res.resume();
        res.on('close', () => resolve());
      });
    });
    await open; // the stream is open: its headers came
    await s.close();
    await ended;
  });

  test('without a built renderer the page says how to build it', async () => {
    const s = await startServer({ lab: fake.lab, rendererDir: path.join(dir, 'missing') });
    const r = await request(s.port, { path: '/' });
    expect(r.status).toBe(503);
    expect(r.body).toContain('npm run build:renderer');
    await s.close();
  });
});

describe('npm start where no window can open', () => {
  test('it says why in plain words, points to browser mode and exits 1 without a stack trace', async () => {
    const env = { ...process.env, DISPLAY: '', WAYLAND_DISPLAY: '', ELECTRON_OVERRIDE_DIST_PATH: path.join(os.tmpdir(), 'no-electron-here') };
    const result = await promisify(execFile)(process.execPath, [path.resolve('bin/logitscope.js'), 'start'], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(1);
    if (process.platform === 'linux') expect(result.stderr).toContain('there is no display');
    expect(result.stderr).toContain('npx logitscope serve');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
