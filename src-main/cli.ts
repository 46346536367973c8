/** `npx logitscope <command>`: a thin front over the one API (api/lab.ts), like the app's window and page. */
import { isLogitscopeError } from './errors.ts';
import { formatCliError } from './cli/flags.ts';
import { datasetCommand } from './cli/dataset.ts';
import { doctorCommand } from './cli/doctor.ts';
import { extractCommand } from './cli/extract.ts';
import { gpuCommand } from './cli/gpu.ts';
import { runsCommand } from './cli/runs.ts';
import { sweepCommand } from './cli/sweep.ts';
import { serveCommand } from './cli/serve.ts';
import { startCommand } from './cli/start.ts';

const COMMANDS: Record<string, { summary: string; run(argv: string[]): Promise<void> }> = {
  extract: extractCommand,
  sweep: sweepCommand,
  serve: serveCommand,
  start: startCommand,
  runs: runsCommand,
  dataset: datasetCommand,
  doctor: doctorCommand,
  gpu: gpuCommand,
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return ['usage: logitscope <command> [options]', '', 'commands:', ...lines, '', 'Run `logitscope <command> --help` for its options.'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    await command.run(rest);
    // A command may set its own status (a cancelled sweep exits 130).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    console.error(formatCliError(e));
    return isLogitscopeError(e) ? 2 : 1;
  }
}

// `logitscope runs list | head` closes the pipe early: that ends the output, it is not a crash.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2));
