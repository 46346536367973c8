/**
 * Browser mode: the renderer bundle and the one API over plain HTTP, for a GPU box reached through
 * an SSH tunnel. POST /api/<request> answers with an Envelope; GET /api/events is a Server-Sent
 * Events stream of {name, payload}. Only node:http, so the whole attack surface is in this file.
 *
 * Who may drive it: whoever holds the random token printed in the URL. Other local users can reach
 * a loopback port but not the token; web pages in the user's browser cannot read it either, and
 * the Host and Origin checks stop DNS-rebinding and cross-site requests before the token matters.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { REQUEST_NAMES, type Envelope, type RequestName } from './api/contract.ts';
import type { Lab } from './api/lab.ts';
import type { SerializedError } from './errors.ts';

/**
 * The renderer's policy, also sent by the Electron protocol handler. Svelte's style directives set
 * styles through the CSSOM, which CSP allows, so no 'unsafe-inline' is needed anywhere.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const MAX_BODY_BYTES = 1 << 20;
/**
 * How often the event stream says the server is alive. The page calls the server lost after three
 * missed beats, so a killed server is noticed within seconds, and the beats keep SSH tunnels open.
 */
export const HEARTBEAT_MS = 2000;

export type ApiHost = Pick<Lab, 'dispatch' | 'onEvent'>;

export interface ServerOptions {
  lab: ApiHost;
  /** The built renderer (vite build output); index.html must be in it. */
  rendererDir: string;
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** Defaults to 32 random bytes as hex. */
  token?: string;
  /** Defaults to HEARTBEAT_MS. */
  heartbeatMs?: number;
}

export interface RunningServer {
  /** Open this: it carries the token. */
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** A file of the renderer bundle for a URL path, or null when it is outside the bundle or absent. */
export function resolveStatic(rendererDir: string, urlPath: string): { file: string; mime: string } | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const rel = decoded === '/' || decoded === '' ? 'index.html' : decoded.replace(/^\/+/, '');
  const root = path.resolve(rendererDir);
  const file = path.resolve(root, rel);
  const inside = path.relative(root, file);
  if (inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) return null;
  try {
    if (!fs.statSync(file).isFile()) return null;
  } catch {
    return null;
  }
  return { file, mime: MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream' };
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? crypto.randomBytes(32).toString('hex');
  // Names this server process for the page: after a lost stream, the same id means the same Lab came back.
  const instance = crypto.randomBytes(8).toString('hex');
  const heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS;
  const tokenBytes = Buffer.from(token);
  const streams = new Set<http.ServerResponse>();
  let allowedHosts: Set<string> | null = null;

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) sendEnvelope(res, 500, { code: 'unexpected', message: (e as Error).message });
      else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    setCommonHeaders(res);
    // A DNS-rebinding page reaches us under its own host name; only our names are accepted.
    if (allowedHosts && !allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      return sendEnvelope(res, 403, { code: 'forbidden_origin', message: 'unexpected Host header', path: 'host' });
    }
    const url = new URL(req.url ?? '/', 'http://placeholder');
    if (!url.pathname.startsWith('/api/')) return serveStatic(req, res, url.pathname);

    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host}`) {
      return sendEnvelope(res, 403, { code: 'forbidden_origin', message: 'cross-origin requests are refused', path: 'origin' });
    }
    const isEvents = url.pathname === '/api/events';
    // EventSource cannot send headers, so the stream alone may carry the token in the query.
    const given = bearer(req.headers.authorization) ?? (isEvents ? url.searchParams.get('token') : null);
    if (given === null || !sameToken(given)) {
      return sendEnvelope(res, 401, { code: 'unauthorized', message: 'missing or wrong access token: open the URL that `logitscope serve` printed', path: 'token' });
    }
    if (isEvents) {
      if (req.method !== 'GET') return sendEnvelope(res, 405, { code: 'argument_invalid', message: 'use GET for /api/events' });
      return openEventStream(req, res);
    }
    const name = url.pathname.slice('/api/'.length);
    if (!(REQUEST_NAMES as readonly string[]).includes(name)) {
      return sendEnvelope(res, 404, { code: 'argument_invalid', message: `unknown request "${name}"`, path: 'request' });
    }
    if (req.method !== 'POST') return sendEnvelope(res, 405, { code: 'argument_invalid', message: `use POST for /api/${name}` });
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return sendEnvelope(res, 415, { code: 'argument_invalid', message: 'the body must be application/json' });
    }
    const body = await readBody(req);
    if (body === null) return sendEnvelope(res, 413, { code: 'argument_invalid', message: `the body is over ${MAX_BODY_BYTES} bytes` });
    let payload: unknown;
    try {
      payload = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      return sendEnvelope(res, 400, { code: 'argument_invalid', message: 'the body is not valid JSON', path: 'body' });
    }
    const reply = await opts.lab.dispatch(name as RequestName, payload);
    sendJson(res, 200, reply);
  }

  function sameToken(given: string): boolean {
    const g = Buffer.from(given);
    return g.length === tokenBytes.length && crypto.timingSafeEqual(g, tokenBytes);
  }

  function openEventStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    // Transport events, beside the API's (which are unnamed `data:` messages): who answers, and that it still does.
    res.write(`event: hello\ndata: ${JSON.stringify({ server: instance, heartbeatMs })}\n\n`);
    streams.add(res);
    const unsubscribe = opts.lab.onEvent((name, payload) => res.write(`data: ${JSON.stringify({ name, payload })}\n\n`));
    const heartbeat = setInterval(() => res.write('event: heartbeat\ndata: {}\n\n'), heartbeatMs);
    const stop = () => {
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(res);
    };
    req.on('close', stop);
    res.on('close', stop);
  }

  async function serveStatic(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed');
    if (!fs.existsSync(path.join(opts.rendererDir, 'index.html'))) {
      return sendText(res, 503, 'The renderer is not built: run `npm run build:renderer`, then reload.');
    }
    const found = resolveStatic(opts.rendererDir, pathname);
    if (!found) return sendText(res, 404, 'not found');
    const content = await fs.promises.readFile(found.file);
    // Vite names assets by content hash, so they may be cached; index.html must not be.
    const cache = pathname.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
    res.writeHead(200, { 'Content-Type': found.mime, 'Content-Length': content.length, 'Cache-Control': cache });
    res.end(req.method === 'HEAD' ? undefined : content);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  // Bound to one loopback or named address: only its own names are valid Hosts. Bound to every
  // interface (0.0.0.0, ::) the address clients use is unknown, and the token is the only guard.
  const wildcard = host === '0.0.0.0' || host === '::';
  if (!wildcard) {
    const names = isLoopback(host) ? ['127.0.0.1', 'localhost', '[::1]'] : [host.includes(':') ? `[${host}]` : host];
    allowedHosts = new Set(names.map((n) => `${n}:${port}`.toLowerCase()));
  }
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/?token=${token}`,
    port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of streams) res.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function bearer(header: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return m ? m[1] : null;
}

function readBody(req: http.IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        resolve(null);
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function setCommonHeaders(res: http.ServerResponse): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

function sendEnvelope(res: http.ServerResponse, status: number, error: SerializedError): void {
  const envelope: Envelope<never> = { ok: false, error };
  sendJson(res, status, envelope);
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
