/**
 * The one API between the engine side and every front (Electron window, browser page, CLI).
 * Declared once: a map from request to its payload and reply, and a map from event to payload.
 * Fronts derive their handler registration and their client type from these maps.
 *
 * Types only: this file is imported by the renderer bundle, so it must not pull in Node modules.
 */
import type { z } from 'zod';
import type { SerializedError } from '../errors.ts';
import type { FingerprintCheck } from '../data/fingerprint.ts';
import type { Parity } from '../sweep/parity.ts';
import type { MergeReport } from '../scale/merge.ts';
import type { ProviderState } from '../gpu/install.ts';
import type { DatasetFingerprint } from '../data/fingerprint.ts';
import type { DeviceId } from '../protocol/device.ts';
import type { LayerDifference, ProtocolSettings, Strategy, TrackChoice } from '../protocol/spec.ts';
import type { ReferenceCurve } from '../data/reference-curve.ts';
import type { engineStateSchema, EventSchemas, RequestSchemas } from './schemas.ts';
import type { SummaryRow, ExampleView, FollowView, ExampleRow, ExampleListView, DifferenceRow, DifferenceTest, DifferenceView, CommitmentView, ReferenceView, ComparisonRow, BySourceView } from './contract-review.ts';

export type { SummaryRow, ExampleView, FollowView, ExampleRow, ExampleListView, DifferenceRow, DifferenceTest, DifferenceView, CommitmentView, ReferenceView, ComparisonRow, BySourceView } from './contract-review.ts';

type PayloadOf<K extends keyof RequestSchemas> = z.input<RequestSchemas[K]>;

export type RunStatus = NonNullable<PayloadOf<'runs.list'>['status']>;

export interface AppInfo {
  version: string;
  /** The built-in demo, preselected on first start. */
  demo: { modelDir: string; dataFile: string; limit: number } | null;
  cuda: { providerInstalled: boolean };
  dbPath: string;
}

/** A model's device-memory plan (engine/model-plan.ts), in bytes. */
export interface MemoryPlanView {
  dtype: 'float32' | 'float16';
  weightBytes: number;
  workingBytes: number;
  totalBytes: number;
}

export interface ModelView {
  dir: string;
  /** The engine's family (llama also runs mistral and qwen2) and config.json's model_type. */
  family: string;
  modelType: string;
  parameters: number;
  /** For the compute dtype it was loaded with. */
  memory: MemoryPlanView;
  /** The hub repository and commit when the folder is a hub cache snapshot. */
  origin: { repo: string; revision: string } | null;
  /**
   * How its tokenizer spells text; `bos`: the BOS it puts before every text (null for none);
   * `bosOnRequest`: the token a `bos` setting prepends where it puts none (the config's bos_token_id).
   */
  tokenizer: { style: 'byte-level' | 'sentencepiece'; bos: string | null; bosOnRequest: string; vocabSize: number };
  identity: string;
  format: string;
  weightDtype: string;
  computeDtype: string;
  device: DeviceId;
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


export type ProtocolOverrides = NonNullable<PayloadOf<'sweep.start'>['overrides']>;

export interface DatasetPreview {
  protocol: ProtocolSettings;
  scanned: number;
  passed: number;
  filteredOut: number;
  /** Records that hold an index but cannot be read, by reason. */
  skipped: { malformedJson: number; missingText: number; oversized: number };
  /** Records filtered out, each under the first rule it fails. */
  filteredBy: { pileSetName: number; maxWords: number; maxChars: number };
  /** Capped previews stop scanning early and say so. */
  capped: boolean;
  samples: { recordIndex: number; source?: string; text: string; track?: string | number }[];
  /** Passing records with a `track` field (the token a sweep with track 'record' follows). */
  withTrack: number;
}

/** A technique as the UI asks for it; custom patchscopes carry their prompt and target layer rule. */
export type TechniqueChoice = PayloadOf<'sweep.start'>['techniques'][number];

export type SweepRequest = PayloadOf<'sweep.start'>;

export interface RunSummaryView {
  id: string;
  name: string | null;
  status: RunStatus;
  createdAt: string;
  modelPath: string;
  files: string[];
  techniques: string[];
  layers: number[];
  examplesPlanned: number | null;
  examplesDone: number;
  notes: string | null;
  tags: string[];
}

/** Which model a run read, as recorded (null where a run recorded before families were does not say). */
export interface ModelProvenance {
  family: string | null;
  modelType: string | null;
  /** The hub repository and commit when the checkpoint was opened from a hub cache snapshot folder. */
  repo: string | null;
  revision: string | null;
}

export interface RunView extends RunSummaryView {
  /** The code that computed it: the package version and its commit or source hash (api/code-version.ts). */
  codeVersion: string;
  device: DeviceId;
  model: ModelProvenance;
  /** The compute dtype the run's numbers were made with (a resume uses the same). */
  computeDtype: 'float32' | 'float16';
  protocol: ProtocolSettings;
  strategy: Strategy;
  /** The files and how they were read: records scanned, filtered out, and skipped by reason. */
  dataset: { files: string[] } & Record<string, unknown>;
  /** `lens`: the tuned lens the run read through, in one line (its train slice, seed, ridge, key). */
  techniquePrompts: Record<string, { prompt?: string; promptTokens?: number[]; targetLayer?: 'same' | number; lens?: string }>;
  summary: SummaryRow[];
  /** At the last layer, each technique against the model's own distribution (sweep/parity.ts); a failure marks the run. */
  parity: Parity;
  error: SerializedError | null;
  /** The `logitscope sweep` command that computes this run again with every setting spelled out; null for a saved extraction. */
  command: string | null;
  /** It reads only rows it computed or merged itself (a recompute or merged run), never another run's. */
  ownsRows: boolean;
  /** 'record': each example also follows its record's own token (docs/PROTOCOL.md "Tracked tokens"). */
  track: TrackChoice;
  /**
   * Each dataset file the run recorded (dataset.fingerprints: size, mtime, sha256; packages for a
   * built-in) against what is there now; empty for runs recorded before fingerprints were.
   */
  datasetCheck: FingerprintCheck[];
}

/** An extraction's cell; `entropy` (nats, of the technique's full next-token distribution) is always measured here. */
export type ExtractCell = ExampleView['cells'][number];

/** One position of a many-position extraction: the model's own top-1 there and its grid. */
export interface ExtractColumn {
  position: number;
  reference: { id: number; text: string };
  cells: ExtractCell[];
  /** Per technique id: the first layer from which its top-1 is the model's at every later layer; null: never. */
  commitsAt: Record<string, number | null>;
}

/** One prompt's extraction: its tokens, the position read, and the layer × technique grid. */
export interface ExtractView {
  tokens: { id: number; text: string }[];
  /** With `positions`, the last one read; `reference` and `cells` are that position's. */
  position: number;
  bos: boolean;
  reference: { id: number; text: string };
  /** The read position's commitment layer per technique (with `positions`, the last column's). */
  commitsAt: Record<string, number | null>;
  /** With `positions`: every position read, in order (the logit-lens picture). */
  columns?: ExtractColumn[];
  /** Token ids from here up are rows of the model's head the tokenizer never produces (GPT-J: 50257..50399). */
  paddingFrom: number;
  /** Rows of the model's head (GPT-J: 50400): a cell's entropy is at most ln(dVocab). */
  dVocab: number;
  /** The same check as a stored run's, over this extraction's rows. */
  parity: Parity;
  techniques: { id: string; prompt?: string; targetLayer?: 'same' | number }[];
  layers: number[];
  /**
   * With `follow`: per cell, that token's exact probability and rank (1 = top-1; 1 + the ids with
   * a strictly greater logit), computed by the engine over the whole vocabulary, in or out of the top-k.
   */
  cells: ExtractCell[];
  follow?: { id: number; text: string };
  /** The export record of this extraction (the sweeps' schema, one example). */
  record: unknown;
}

export interface DoctorReport {
  versions: Record<string, string>;
  providers: { name: string; bundled: boolean }[];
  /** Per device: whether a session starts, or why not and what to install. */
  devices: { device: DeviceId; starts: boolean; detail: string }[];
  gpus: string[];
  dbPath: string;
  cacheDir: string;
  /** The desktop engine process's log for this results database (the window's banner links it too). */
  engineLog: string;
  /** With a model folder asked about: what it is and its memory plan per device kind, from config.json alone. */
  model?: { dir: string; family: string; modelType: string; parameters: number; plans: { device: 'cpu' | 'cuda'; plan: MemoryPlanView }[] };
}

export interface ExportReply {
  fileName: string;
  mimeType: string;
  /** The file's content, unless it was written to `out`; parquet comes base64-encoded. */
  content?: string;
  encoding?: 'utf8' | 'base64';
  /** Rows written (csv/parquet) or bytes (json), for the caller's message. */
  written: number;
}


/** The CUDA provider beside onnxruntime-node's library (targetDir), as gpu.status finds it or gpu.install leaves it. */
export interface GpuProvider {
  targetDir: string;
  provider: ProviderState;
}

/** Types the fronts print, named here so that no front imports below the API. */
export type { DatasetFingerprint, DeviceId, Parity };

/** The desktop's engine process: starting, ready or stopped, and how it last died. */
export type EngineState = z.output<typeof engineStateSchema>;

/** Request name -> reply. The payload of each is inferred from its schema (schemas.ts). */
interface Replies {
  'app.info': AppInfo;
  'app.doctor': DoctorReport;
  'gpu.status': GpuProvider;
  'gpu.install': GpuProvider;
  'model.load': ModelView;
  'model.current': ModelView | null;
  'dataset.preview': DatasetPreview;
  'sweep.start': { runId: string };
  'sweep.cancel': { cancelled: boolean };
  'sweep.resume': { runId: string };
  extract: ExtractView;
  /** `bosLength`: how many of the tokens come before the text's own (1 where a BOS is first). */
  'extract.tokenize': { tokens: { id: number; text: string }[]; nCtx: number; bosLength: number };
  'extract.save': { runId: string };
  'runs.list': RunSummaryView[];
  'runs.get': RunView;
  'runs.example': ExampleView;
  'runs.follow': FollowView;
  'runs.examples': ExampleListView;
  'runs.bySource': BySourceView;
  'runs.compare': ComparisonRow[];
  'runs.export': ExportReply;
  'runs.delete': { deleted: boolean };
  'runs.diff': DifferenceView;
  'runs.diffTechniques': DifferenceView;
  'runs.commitment': CommitmentView;
  /** The built-in reference tables (docs/reference), by name. */
  'references.list': { name: string; source: string; model?: string; rows: number }[];
  'references.get': ReferenceView;
  'references.parse': ReferenceView;
  'runs.merge': MergeReport;
  'runs.update': RunSummaryView;
  'desktop.engine': EngineState;
  'desktop.restartEngine': EngineState;
  /** Empty when the dialog was cancelled. */
  'desktop.pick': { paths: string[] };
  /** path null: the dialog was cancelled and nothing was written. */
  'desktop.saveExport': { path: string | null; written: number };
  'desktop.saveFile': { path: string | null };
  'desktop.showInFolder': { shown: boolean };
}

/** Request name -> [payload, reply]. */
export type ApiRequests = { [K in keyof RequestSchemas]: [PayloadOf<K>, Replies[K]] };

/** Event name -> payload. Events say "this changed" and carry ids and progress, never tensors. */
export type ApiEvents = { [E in keyof EventSchemas]: z.output<EventSchemas[E]> };

export type RequestName = keyof ApiRequests;
export type EventName = keyof ApiEvents;
export type Payload<K extends RequestName> = ApiRequests[K][0];
export type Reply<K extends RequestName> = ApiRequests[K][1];
/** A payload as its handler receives it: checked by its schema, with the schema's defaults filled in. */
export type Parsed<K extends RequestName> = z.output<RequestSchemas[K]>;

/** How every reply crosses a boundary (IPC, HTTP): the result, or a coded error. */
export type Envelope<T> = { ok: true; result: T } | { ok: false; error: SerializedError };

export const REQUEST_NAMES: readonly RequestName[] = [
  'app.info',
  'app.doctor',
  'gpu.status',
  'gpu.install',
  'model.load',
  'model.current',
  'dataset.preview',
  'sweep.start',
  'sweep.cancel',
  'sweep.resume',
  'extract',
  'extract.tokenize',
  'extract.save',
  'runs.list',
  'runs.get',
  'runs.example',
  'runs.follow',
  'runs.examples',
  'runs.bySource',
  'runs.compare',
  'runs.export',
  'runs.delete',
  'runs.diff',
  'runs.diffTechniques',
  'runs.commitment',
  'references.list',
  'references.get',
  'references.parse',
  'runs.merge',
  'runs.update',
  'desktop.engine',
  'desktop.restartEngine',
  'desktop.pick',
  'desktop.saveExport',
  'desktop.saveFile',
  'desktop.showInFolder',
];

/** The requests the desktop main process answers itself; the Lab (and so browser mode) refuses them. */
export const DESKTOP_REQUESTS = REQUEST_NAMES.filter((n) => n.startsWith('desktop.'));

export const EVENT_NAMES: readonly EventName[] = ['sweep.preparing', 'sweep.progress', 'sweep.finished', 'model.changed', 'runs.changed', 'engine.state'];

/** The typed client every front's renderer uses; over Electron IPC or HTTP + an event stream. */
export interface ApiClient {
  call<K extends RequestName>(name: K, payload: Payload<K>): Promise<Reply<K>>;
  on<E extends EventName>(name: E, listener: (payload: ApiEvents[E]) => void): () => void;
}
