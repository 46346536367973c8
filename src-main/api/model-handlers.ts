/** `model.*`: load a model (swapped in by the EngineHost once no call uses the old one) and say which is loaded. */
import { LogitscopeError } from '../errors.ts';
import type { Handlers, LabContext, RequestsOf } from './handlers.ts';
import { modelView } from './views.ts';

export function modelHandlers(lab: LabContext): Handlers<RequestsOf<'model'>> {
  return {
    'model.load': async (p) => {
      // A sweep holds its engine to the end: a load would wait for it, so it is refused instead.
      const busy = lab.runs.anyRunning;
      if (busy !== undefined) {
        throw new LogitscopeError('model_busy', `a sweep is running on the loaded model (run ${busy.slice(0, 8)}): cancel it before loading another model`, 'dir');
      }
      const engine = await lab.engine.load(p);
      lab.emit('model.changed', { dir: engine.info.modelDir });
      return modelView(engine, lab.engine.loadSeconds);
    },
    'model.current': async () => {
      const engine = lab.engine.current;
      return engine ? modelView(engine, lab.engine.loadSeconds) : null;
    },
  };
}
