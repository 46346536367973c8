/** `dataset.*`: what a preset's slice of some files holds, before any sweep reads it. */
import type { Handlers, RequestsOf } from './handlers.ts';
import { datasetPreview } from './views.ts';

export function datasetHandlers(): Handlers<RequestsOf<'dataset'>> {
  return {
    'dataset.preview': async (p) => datasetPreview(p),
  };
}
