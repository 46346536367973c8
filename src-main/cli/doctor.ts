import { formatParameters, memoryPlanWords } from '../api/format.ts';
import { parseOptions, withLab } from './options.ts';

const HELP = `usage: logitscope doctor [--db FILE] [--model DIR]

Says which onnxruntime execution providers this build has and which devices start here (cpu, cuda,
and whether a WebGPU adapter is found, with the reason when not), with the --device that fits, what
to install where CUDA is missing, the GPU (nvidia-smi) and where results and caches are kept.
With --model: the checkpoint's family, parameter count and device-memory plan (from config.json).`;

/** `logitscope doctor`: the app.doctor request, printed. */
export const doctorCommand = {
  summary: 'which execution providers load here, the GPU, and where data is kept',
  async run(argv: string[]) {
    const o = parseOptions(argv, { db: { type: 'string' }, model: { type: 'string' } }, HELP);
    if (!o) return;
    const report = await withLab({ db: o.db }, (lab) => lab.call('app.doctor', { ...(o.model !== undefined && { modelDir: o.model }) }));
    console.log(Object.entries(report.versions).map(([name, v]) => `${name} ${v}`).join(', '));
    console.log(`providers in this build: ${report.providers.map((p) => `${p.name}${p.bundled ? '' : ' (installed separately)'}`).join(', ')}`);
    for (const d of report.devices) console.log(`${`${d.device}:`.padEnd(7)} ${d.detail}`);
    if (report.gpus.length === 0) console.log('gpu:    nvidia-smi not found or no NVIDIA GPU');
    for (const line of report.gpus) console.log(`gpu:    ${line}`);
    console.log(`results database: ${report.dbPath}`);
    console.log(`graph and weight cache: ${report.cacheDir}`);
    console.log(`desktop engine log: ${report.engineLog}`);
    if (report.model) {
      const m = report.model;
      console.log(`model ${m.dir}: ${m.family}${m.modelType !== m.family ? ` (model_type ${m.modelType})` : ''}, ${formatParameters(m.parameters)} parameters (${m.parameters})`);
      for (const { device, plan } of m.plans) console.log(`memory on ${device}: ${memoryPlanWords(plan)}`);
    }
  },
};
