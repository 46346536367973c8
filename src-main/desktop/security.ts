/**
 * What keeps the desktop window to our own page (Electron's security checklist): the page is
 * served from our own `app://` scheme with the same CSP as browser mode; navigation, new windows,
 * webviews and permission requests are refused; IPC is answered only for our own top frame.
 * The window itself runs with context isolation, the sandbox and no Node (shell.ts).
 */
import fs from 'node:fs';
import type { SenderFrame } from '../api/ipc.ts';
import { CONTENT_SECURITY_POLICY, resolveStatic } from '../serve.ts';
import type { ElectronLike } from './electron-like.ts';

export const SCHEME = 'app';
export const HOST = 'logitscope';
export const APP_URL = `${SCHEME}://${HOST}/index.html`;

export function isAppUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === `${SCHEME}:` && u.host === HOST;
  } catch {
    return false;
  }
}

/** Only our own page's top frame may call the API: not a subframe, not any other origin. */
export const isTrustedSender = (frame: SenderFrame | null): boolean => frame !== null && frame.parent === null && isAppUrl(frame.url);

/** Must run before `ready`: a standard, secure scheme gets a real origin, so CSP 'self' means it. */
export function registerScheme(protocol: ElectronLike['protocol']): void {
  protocol.registerSchemesAsPrivileged([{ scheme: SCHEME, privileges: { standard: true, secure: true } }]);
}

/** Serves the renderer bundle under app://logitscope/, with the CSP and nosniff on every file. */
export function serveRenderer(protocol: ElectronLike['protocol'], rendererDir: string): void {
  protocol.handle(SCHEME, async (request) => {
    const url = new URL(request.url);
    const found = url.host === HOST ? resolveStatic(rendererDir, url.pathname) : null;
    if (!found) return new Response('not found', { status: 404, headers: { 'X-Content-Type-Options': 'nosniff' } });
    return new Response(await fs.promises.readFile(found.file), {
      headers: { 'Content-Type': found.mime, 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'X-Content-Type-Options': 'nosniff' },
    });
  });
}

export function lockDown(app: ElectronLike['app'], session: ElectronLike['session']): void {
  app.on('web-contents-created', (_event, contents) => {
    // A single-page app never navigates: any navigation is a link or script gone wrong.
    contents.on('will-navigate', (event) => event.preventDefault());
    contents.on('will-redirect', (event) => event.preventDefault());
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
}
