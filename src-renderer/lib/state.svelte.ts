/**
 * The renderer's shared state and the actions that change it. Events only say "this changed";
 * the handlers here refetch what they need (the Podman Desktop pattern), except progress, which
 * carries the running summary so the charts fill in without a request per batch.
 */
import type { ApiEvents, AppInfo, EngineState, SummaryRow, ModelView, RunView, SweepRequest } from '../../src-main/api/contract.ts';
import { tick } from 'svelte';
import { api } from './api.ts';
import { techniqueLabel } from './labels.ts';

export type Tab = 'charts' | 'inspector' | 'extract' | 'runs';

export const lab = $state({
  info: null as AppInfo | null,
  model: null as ModelView | null,
  /** A model load is in flight (Model panel or the demo): no sweep can start until it ends. */
  modelLoading: false,
  /** When the sweep this window asked for began preparing (ms); null once it has a run id. */
  preparing: null as number | null,
  /** How far that preparation has read the dataset (from sweep.preparing events), once known. */
  preparingProgress: null as Omit<ApiEvents['sweep.preparing'], 'requestId'> | null,
  /** The run shown in the charts and the inspector. */
  shown: null as RunView | null,
  /** The latest progress of the sweep this window started or resumed (kept after it ends). */
  live: null as ApiEvents['sweep.progress'] | null,
  /** Other runs drawn on the same charts, each with its own dash pattern. */
  overlays: [] as { runId: string; label: string; summary: SummaryRow[] }[],
  /** The sweep this window started or resumed and has not seen finish. */
  activeRunId: null as string | null,
  tab: 'charts' as Tab,
  /** Inspector: the example, and the cell a chart click asked for. */
  ordinal: 0,
  focus: null as { technique: string; layer: number } | null,
  /** The technique and layer a chart click asked the finder to list. */
  finderCell: null as { technique: string; layer: number } | null,
  /** Bumped on runs.changed so lists refetch. */
  runsVersion: 0,
  /** The last sweep outcome worth saying (cancelled, failed), for the sweep panel. */
  sweepNotice: null as string | null,
  sweepError: null as unknown,
  /** The Lab behind the page: the desktop's engine process, or browser mode's server (http-client.ts). */
  engine: null as EngineState | null,
  /** Why the Lab could not be read when it became ready (shown under the header). */
  labError: null as unknown,
  /** Desktop only: the file a Save dialog last wrote, for "Show in folder". */
  saved: null as string | null,
});

/** What the charts draw for the shown run: the live summary while it runs, the stored one after. */
export function shownSummary(): SummaryRow[] {
  if (!lab.shown) return [];
  if (lab.live?.runId === lab.shown.id && lab.shown.status === 'running') return lab.live.progress.summary;
  return lab.shown.summary;
}

export function labelOf(technique: string): string {
  return techniqueLabel(technique, lab.shown?.techniquePrompts);
}

export async function openRun(runId: string, tab: Tab = 'charts'): Promise<RunView> {
  const run = await api.call('runs.get', { runId });
  if (lab.shown?.id !== runId) {
    lab.ordinal = 0;
    lab.focus = null;
    lab.finderCell = null;
  }
  lab.shown = run;
  lab.overlays = lab.overlays.filter((o) => o.runId !== runId);
  lab.tab = tab;
  // Focus goes to what was opened, not back to the page, so a keyboard user carries on from there.
  void tick().then(() => document.getElementById(tab === 'charts' ? 'run-title' : `tab-${tab}`)?.focus());
  return run;
}

/** Adds the run to the overlays, or takes it off if it is there. */
export async function toggleOverlay(runId: string, label: string): Promise<void> {
  if (lab.overlays.some((o) => o.runId === runId)) {
    lab.overlays = lab.overlays.filter((o) => o.runId !== runId);
    return;
  }
  const run = await api.call('runs.get', { runId });
  lab.overlays = [...lab.overlays, { runId, label, summary: run.summary }];
}

/** A run's name as lists and legends show it. */
export const runLabel = (r: { id: string; name: string | null }) => r.name ?? `run ${r.id.slice(0, 8)}`;

/**
 * The sweep this window is starting or resuming. Its id is sent with the request and comes back on
 * every event of that sweep, so the window follows it from the first event, even one that arrives
 * (a small or fully cached sweep can finish) before the reply has said which run it is.
 */
let ours: { requestId: string; finished: boolean } | null = null;

async function begin(request: (requestId: string) => Promise<string>): Promise<void> {
  lab.sweepNotice = null;
  lab.sweepError = null;
  lab.live = null;
  lab.preparing = Date.now();
  lab.tab = 'charts';
  // lab.shown stays until the new run exists: a refused request must not take the run on screen away.
  const mine = { requestId: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`, finished: false };
  ours = mine;
  let runId: string;
  try {
    runId = await request(mine.requestId);
  } catch (e) {
    // Cancelled while the slice was read or a lens fitted: nothing was computed and no run exists.
    if ((e as { code?: string }).code !== 'cancelled') throw e;
    lab.sweepNotice = 'Cancelled before any example was computed: no run was created.';
    return;
  } finally {
    lab.preparing = null;
    lab.preparingProgress = null;
  }
  if (!mine.finished) lab.activeRunId = runId;
  const run = await openRun(runId);
  // Finished before the run was opened: what openRun read may predate the end, so read it again.
  if (mine.finished) {
    const fresh = await api.call('runs.get', { runId });
    if (lab.shown?.id === runId) lab.shown = fresh;
  }
  if (run.status !== 'running' && lab.activeRunId === runId) lab.activeRunId = null;
}

const isOurs = (runId: string, requestId: string | undefined) => runId === lab.activeRunId || (requestId !== undefined && requestId === ours?.requestId);

/**
 * Why this run cannot be resumed now, or null when Resume would work: one answer for the sidebar,
 * the run's note and the runs table, so the three never disagree.
 */
export function resumeBlocker(run: { status: string; modelPath: string }): string | null {
  if (run.status === 'completed') return 'It is complete.';
  if (run.status === 'running') return 'It is still running.';
  if (lab.engine && lab.engine.state !== 'ready') return 'The Lab is not answering.';
  if (lab.activeRunId !== null || lab.preparing !== null) return 'A sweep is running: wait for it or cancel it.';
  if (lab.modelLoading) return 'A model is loading.';
  if (lab.model?.dir !== run.modelPath) return `Load its model first: ${run.modelPath}`;
  return null;
}

/** Cancels the sweep this window started: its run once it exists, before that its request (a lens fit). */
export async function cancelSweep(): Promise<void> {
  if (lab.activeRunId) await api.call('sweep.cancel', { runId: lab.activeRunId });
  else if (ours && lab.preparing !== null) await api.call('sweep.cancel', { requestId: ours.requestId });
}

export const startSweep = (request: SweepRequest) => begin(async (requestId) => (await api.call('sweep.start', { ...request, requestId })).runId);
export const resumeSweep = (runId: string) => begin(async (requestId) => (await api.call('sweep.resume', { runId, requestId })).runId);

/**
 * The Lab came, went or came back (the desktop's engine process, or browser mode's server). While
 * it is away nothing is claimed to run; once it is there everything shown is read again, so runs
 * its predecessor was computing read as interrupted and a run still going is followed again.
 */
export function applyEngineState(state: EngineState): void {
  const wasReady = lab.engine?.state === 'ready';
  lab.engine = state;
  if (state.state !== 'ready') {
    lab.activeRunId = null;
    lab.live = null;
    lab.preparing = null;
    lab.preparingProgress = null;
  } else if (!wasReady) {
    void readLab().then(() => (lab.labError = null), (e) => (lab.labError = e));
  }
}

async function readLab(): Promise<void> {
  const [info, model] = await Promise.all([api.call('app.info', {}), api.call('model.current', {})]);
  lab.info = info;
  lab.model = model;
  lab.runsVersion++;
  const shown = lab.shown;
  if (!shown) {
    // The app opens on the most recent run, where the work was left.
    const [latest] = await api.call('runs.list', {});
    if (latest && !lab.shown && lab.preparing === null) lab.shown = await api.call('runs.get', { runId: latest.id });
    return;
  }
  const fresh = await api.call('runs.get', { runId: shown.id });
  if (lab.shown?.id !== shown.id) return;
  lab.shown = fresh;
  if (fresh.status === 'running') lab.activeRunId = fresh.id;
}

/** Subscribes to every event; returns the function that unsubscribes. */
export function listen(): () => void {
  const offs = [
    api.on('sweep.preparing', ({ requestId, ...read }) => {
      // Not after the request has ended: a cancelled fit's last word may come after its reply.
      if (requestId === ours?.requestId && lab.preparing !== null) lab.preparingProgress = read;
    }),
    api.on('sweep.progress', ({ runId, requestId, progress }) => {
      if (isOurs(runId, requestId)) lab.live = { runId, progress };
    }),
    api.on('sweep.finished', async ({ runId, requestId, status, error }) => {
      const mine = isOurs(runId, requestId);
      if (!mine && runId !== lab.shown?.id) return;
      if (mine) {
        if (requestId !== undefined && requestId === ours?.requestId) ours.finished = true;
        lab.activeRunId = null;
        if (status === 'cancelled') lab.sweepNotice = 'Cancelled. Finished examples are kept; Resume continues from there.';
        if (status === 'interrupted') lab.sweepNotice = 'The engine stopped during this sweep. Finished examples are kept; Resume continues from there.';
        if (status === 'failed' && error) lab.sweepError = error;
      }
      if (runId !== lab.shown?.id) return;
      const run = await api.call('runs.get', { runId });
      // Another run may have been opened while this one was read.
      if (lab.shown?.id === runId) lab.shown = run;
    }),
    api.on('runs.changed', () => lab.runsVersion++),
    api.on('model.changed', async () => {
      lab.model = await api.call('model.current', {});
    }),
    api.on('engine.state', applyEngineState),
  ];
  return () => offs.forEach((off) => off());
}
