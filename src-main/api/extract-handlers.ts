/** `extract*`: one typed prompt, on the loaded engine (leased for the call). */
import { extractOne, saveExtraction, tokenizeOne } from './extract-service.ts';
import type { Handlers, LabContext, RequestsOf } from './handlers.ts';

export function extractHandlers(lab: LabContext): Handlers<RequestsOf<'extract'>> {
  return {
    extract: async (p) => lab.engine.use((engine) => extractOne(engine, p)),
    'extract.tokenize': async (p) => lab.engine.use((engine) => tokenizeOne(engine, p)),
    'extract.save': async (p) =>
      lab.engine.use(async (engine) => {
        const saved = await saveExtraction(engine, lab.store, p);
        lab.emit('runs.changed', {});
        return saved;
      }),
  };
}
