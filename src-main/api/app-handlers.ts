/** `app.*`: what the app is and where it keeps things; and `desktop.*`, which a Lab refuses. */
import fs from 'node:fs';
import path from 'node:path';
import { DEMO } from '../app-paths.ts';
import { cudaProviderInstalled } from '../engine/cuda-provider.ts';
import { LogitscopeError } from '../errors.ts';
import { CODE_VERSION } from './code-version.ts';
import type { RequestName } from './contract.ts';
import { doctor } from './doctor-service.ts';
import type { Handlers, LabContext, RequestsOf } from './handlers.ts';

/** The desktop window's main process answers these itself (desktop/shell.ts); they never reach a Lab there. */
const desktopOnly = (name: RequestName) => async (): Promise<never> => {
  throw new LogitscopeError('desktop_only', `${name} is answered by the desktop window (\`logitscope start\`), not in browser mode or the CLI`, 'request');
};

export function appHandlers(lab: LabContext): Handlers<RequestsOf<'app'> | RequestsOf<'desktop'>> {
  return {
    'app.info': async () => ({
      version: CODE_VERSION,
      demo: fs.existsSync(path.join(DEMO.modelDir, 'config.json')) ? { modelDir: DEMO.modelDir, dataFile: DEMO.dataFile, limit: DEMO.limit } : null,
      cuda: { providerInstalled: cudaProviderInstalled() },
      dbPath: lab.store.file,
    }),
    'app.doctor': async (p) => doctor(lab.store.file, p),
    'desktop.engine': desktopOnly('desktop.engine'),
    'desktop.restartEngine': desktopOnly('desktop.restartEngine'),
    'desktop.pick': desktopOnly('desktop.pick'),
    'desktop.saveExport': desktopOnly('desktop.saveExport'),
    'desktop.saveFile': desktopOnly('desktop.saveFile'),
    'desktop.showInFolder': desktopOnly('desktop.showInFolder'),
  };
}
