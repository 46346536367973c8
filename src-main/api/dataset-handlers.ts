/** `dataset.*`: what a preset's slice of some files holds, before any sweep reads it. */
import { previewSlice } from '../data/preview.ts';
import { resolveProtocol } from '../sweep/protocol.ts';
import type { Handlers, RequestsOf } from './handlers.ts';

export function datasetHandlers(): Handlers<RequestsOf<'dataset'>> {
  return {
    'dataset.preview': async (p) => {
      const protocol = resolveProtocol(p.preset, p.overrides);
      const preview = await previewSlice(
        { files: p.files, start: protocol.poolStart, end: protocol.poolEnd, pileSetName: protocol.pileSetName, filter: protocol.filter },
        { sampleCount: p.sampleCount },
      );
      return {
        protocol,
        scanned: preview.scanned,
        passed: preview.passed,
        filteredOut: preview.filteredOut,
        skipped: { ...preview.skipped },
        filteredBy: { ...preview.filteredBy },
        capped: preview.capped,
        samples: preview.samples.map((r) => ({ recordIndex: r.index, source: r.source, text: r.text })),
      };
    },
  };
}
