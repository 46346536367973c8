import { LogitscopeError } from '../errors.ts';
import { parseCommandLine, withLab } from './options.ts';

const HELP = `usage: logitscope gpu install cuda12|cuda13
       logitscope gpu status

Puts onnxruntime's CUDA provider beside onnxruntime-node's own library (never part of npm install).
  cuda12   onnxruntime-node's own installer fetches the CUDA 12 provider of its exact version
  cuda13   fetches the npm package com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (about 180 MB;
           a CUDA 13 build for onnxruntime 1.29.0), checks both versions, and copies its provider
Then put the CUDA and cuDNN 9 libraries of that CUDA version on LD_LIBRARY_PATH and run with --device cuda.`;

/** The provider is no business of the results database: an in-memory one leaves the user's unopened, as before these were requests. */
const NO_DB = { db: ':memory:' };

/** `logitscope gpu`: the gpu.install or gpu.status request, printed. */
export const gpuCommand = {
  summary: 'install the CUDA provider (cuda12 or cuda13), or show which is installed',
  async run(argv: string[]) {
    const parsed = parseCommandLine(argv, {}, HELP);
    if (!parsed) return;
    const [sub, flavour] = parsed.positionals;
    if (sub === 'status') {
      const { targetDir, provider: s } = await withLab(NO_DB, (lab) => lab.call('gpu.status', {}));
      if (s.state === 'absent') console.log(`no CUDA provider in ${targetDir}`);
      else if (s.state === 'present') console.log(`${s.flavour} provider for onnxruntime ${s.onnxruntime} in ${targetDir}`);
      else console.log(`a CUDA provider for onnxruntime ${s.found} is in ${targetDir}, but onnxruntime-node is ${s.wanted}: reinstall it`);
      return;
    }
    if (sub !== 'install') throw new LogitscopeError('argument_invalid', `${sub ? `unknown subcommand "${sub}"` : 'a subcommand is required'}\n\n${HELP}`);
    // Checked here too, so the usage comes with the refusal (the API's schema says the same words).
    if (flavour !== 'cuda12' && flavour !== 'cuda13') throw new LogitscopeError('argument_invalid', `choose cuda12 or cuda13\n\n${HELP}`, 'flavour');
    await withLab(NO_DB, (lab) => lab.call('gpu.install', { flavour }));
  },
};
