/**
 * The one API between the engine side and every front (Electron window, browser page, CLI).
 * Declared once: a map from request to its payload and reply, and a map from event to payload.
 * Fronts derive their handler registration and their client type from these maps.
 *
 * Types only: this file is imported by the renderer bundle, so it must not pull in Node modules.
 */
import type { SerializedError } from '../errors.ts';
import type { SweepProgress } from '../sweep/run-sweep.ts';
import type { LayerSummary, PresetName, ProtocolSettings, Strategy } from '../sweep/spec.ts';
import type { TargetLayerRule } from '../sweep/techniques.ts';

export type Device = 'cpu' | 'cuda';

export interface AppInfo {
  version: string;
  /** The built-in demo, preselected on first start. */
  demo: { modelDir: string; dataFile: string } | null;
  cuda: { providerInstalled: boolean };
  dbPath: string;
}

export interface ModelView {
  dir: string;
  identity: string;
  format: string;
  weightDtype: string;
  computeDtype: string;
  device: Device;
  fallbackReason?: string;
  config: {
    nLayers: number;
    dModel: number;
    nHeads: number;
    dHead: number;
    dMlp: number;
    nCtx: number;
    rotaryDim: number;
    dVocab: number;
  };
  loadSeconds: number;
}

export type ProtocolOverrides = Partial<Omit<ProtocolSettings, 'preset'>>;

export interface DatasetPreview {
  protocol: ProtocolSettings;
  scanned: number;
  passed: number;
  filteredOut: number;
  /** Capped previews stop scanning early and say so. */
  capped: boolean;
  samples: { recordIndex: number; source?: string; text: string }[];
}

/** A technique as the UI asks for it; custom patchscopes carry their prompt and target layer rule. */
export type TechniqueChoice =
  | { id: 'logit_lens' | 'patchscope' | 'logitscope' }
  | { id: 'custom'; prompt: string; targetLayer: TargetLayerRule };

export interface SweepRequest {
  files: string[];
  preset: PresetName;
  overrides?: ProtocolOverrides;
  techniques: TechniqueChoice[];
  /** null = every layer. */
  layers: number[] | null;
  k?: number;
  strategy?: Strategy;
  name?: string;
}

export interface RunSummaryView {
  id: string;
  name: string | null;
  status: 'running' | 'completed' | 'cancelled' | 'failed';
  createdAt: string;
  modelPath: string;
  files: string[];
  techniques: string[];
  layers: number[];
  examplesPlanned: number | null;
  examplesDone: number;
}

export interface RunView extends RunSummaryView {
  protocol: ProtocolSettings;
  strategy: Strategy;
  techniquePrompts: Record<string, { prompt?: string; promptTokens?: number[]; targetLayer?: 'same' | number }>;
  summary: LayerSummary[];
  error: SerializedError | null;
}

/** One example for the inspector: its text as tokens, the position, and every cell's top-k. */
export interface ExampleView {
  ordinal: number;
  recordIndex: number;
  source?: string;
  tokens: { id: number; text: string }[];
  position: number;
  reference: { id: number; text: string };
  cells: {
    technique: string;
    layer: number;
    top1: number;
    correct: boolean;
    surprisal: number;
    surprisalPaper: number;
    topK: { id: number; text: string; prob: number }[];
  }[];
}

export interface ComparisonRow {
  technique: string;
  layer: number;
  a?: LayerSummary;
  b?: LayerSummary;
}

/** Request name -> [payload, reply]. */
export interface ApiRequests {
  'app.info': [Record<string, never>, AppInfo];
  'model.load': [{ dir: string; device?: Device; allowCpuFallback?: boolean }, ModelView];
  'model.current': [Record<string, never>, ModelView | null];
  'dataset.preview': [{ files: string[]; preset: PresetName; overrides?: ProtocolOverrides; sampleCount?: number }, DatasetPreview];
  'sweep.start': [SweepRequest, { runId: string }];
  'sweep.cancel': [{ runId: string }, { cancelled: boolean }];
  'sweep.resume': [{ runId: string }, { runId: string }];
  'runs.list': [{ status?: RunSummaryView['status']; modelPath?: string; dataset?: string }, RunSummaryView[]];
  'runs.get': [{ runId: string }, RunView];
  'runs.example': [{ runId: string; ordinal: number }, ExampleView];
  'runs.compare': [{ a: string; b: string }, ComparisonRow[]];
  'runs.export': [{ runId: string; format: 'json' | 'csv' }, { fileName: string; mimeType: string; content: string }];
  'runs.delete': [{ runId: string }, { deleted: boolean }];
}

/** Event name -> payload. Events say "this changed" and carry ids and progress, never tensors. */
export interface ApiEvents {
  'sweep.progress': { runId: string; progress: SweepProgress };
  'sweep.finished': { runId: string; status: RunSummaryView['status']; error?: SerializedError };
  'model.changed': { dir: string };
  'runs.changed': Record<string, never>;
}

export type RequestName = keyof ApiRequests;
export type EventName = keyof ApiEvents;
export type Payload<K extends RequestName> = ApiRequests[K][0];
export type Reply<K extends RequestName> = ApiRequests[K][1];

/** How every reply crosses a boundary (IPC, HTTP): the result, or a coded error. */
export type Envelope<T> = { ok: true; result: T } | { ok: false; error: SerializedError };

export const REQUEST_NAMES: readonly RequestName[] = [
  'app.info',
  'model.load',
  'model.current',
  'dataset.preview',
  'sweep.start',
  'sweep.cancel',
  'sweep.resume',
  'runs.list',
  'runs.get',
  'runs.example',
  'runs.compare',
  'runs.export',
  'runs.delete',
];

export const EVENT_NAMES: readonly EventName[] = ['sweep.progress', 'sweep.finished', 'model.changed', 'runs.changed'];

/** The typed client every front's renderer uses; over Electron IPC or HTTP + an event stream. */
export interface ApiClient {
  call<K extends RequestName>(name: K, payload: Payload<K>): Promise<Reply<K>>;
  on<E extends EventName>(name: E, listener: (payload: ApiEvents[E]) => void): () => void;
}
