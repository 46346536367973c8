/**
 * The desktop main process's side of the engine process (engine-process.ts): starts it on the
 * Node binary that ran `logitscope start`, relays the API's requests and events over the Node IPC
 * channel, writes its output to a log file, and supervises it. When it dies the window stays up:
 * the runs it was computing are announced as interrupted, it is restarted once by itself (with the
 * model that was loaded), and after that only on request ("Restart engine").
 *
 * It answers like the Lab (`dispatch` never throws, `onEvent`), so the IPC wiring of api/ipc.ts
 * serves it unchanged. No import here reaches better-sqlite3 or onnxruntime-node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineState, Envelope, EventName, Payload, RunStatus } from '../api/contract.ts';
import { serializeError, type SerializedError } from '../errors.ts';
import { ENGINE_DB_ENV, type FromEngine, type ToEngine } from './engine-wire.ts';

const ENGINE_ENTRY = fileURLToPath(new URL('../engine-process.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const LOG_TAIL_LINES = 20;

export interface SupervisorOptions {
  /** The Node binary (not Electron's): `process.execPath` of the `logitscope start` that launched the app. */
  nodePath: string;
  /** The results database; undefined for the default one. */
  dbPath?: string;
  /** Where the engine's stdout and stderr are appended. */
  logFile: string;
  /** How long a stop waits after SIGTERM before SIGKILL. */
  graceMs?: number;
  env?: NodeJS.ProcessEnv;
}

type Listener = (name: EventName, payload: unknown) => void;

const failure = (code: SerializedError['code'], message: string): Envelope<never> => ({ ok: false, error: { code, message } });

export class EngineSupervisor {
  private child: ChildProcess | undefined;
  private current: EngineState;
  private readonly listeners = new Set<Listener>();
  private readonly pending = new Map<number, (envelope: Envelope<unknown>) => void>();
  private nextId = 0;
  private readyWaiters: (() => void)[] = [];
  private stopping = false;
  private autoRestarts = 0;
  private startedAt = 0;
  /** Runs this engine is computing (from its replies and events), announced as interrupted if it dies. */
  private readonly running = new Map<string, string | undefined>();
  /** Runs whose sweep.finished came before the reply that started them (a small or cached sweep). */
  private readonly finishedEarly = new Set<string>();
  /** The last model.load that succeeded, replayed after a restart so the window is where it was. */
  private lastLoad: Payload<'model.load'> | undefined;
  private logTail: string[] = [];
  /** What the engine said before exiting when its Lab could not open. */
  private fatal: SerializedError | undefined;
  private log: fs.WriteStream | undefined;
  /** Settles once the last process's log lines are on disk. */
  private logClosed: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: SupervisorOptions) {
    this.current = { state: 'stopped', pid: null, startSeconds: null, restarts: 0, restarting: false, logFile: opts.logFile, crash: null };
  }

  state(): EngineState {
    return structuredClone(this.current);
  }

  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts the engine process; resolves once it is ready (or has stopped, see state()). */
  async start(): Promise<EngineState> {
    if (this.child) return this.whenSettled();
    this.stopping = false;
    this.startedAt = performance.now();
    this.logTail = [];
    this.openLog();
    const child = spawn(this.opts.nodePath, ['--import', TSX, ENGINE_ENTRY], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...(this.opts.env ?? process.env), ELECTRON_RUN_AS_NODE: '', [ENGINE_DB_ENV]: this.opts.dbPath ?? '' },
    });
    this.child = child;
    this.setState({ state: 'starting', pid: child.pid ?? null, startSeconds: null });
    for (const stream of [child.stdout!, child.stderr!]) stream.setEncoding('utf8').on('data', (chunk: string) => this.record(chunk));
    child.on('message', (m: FromEngine) => this.receive(m));
    child.on('error', (e) => {
      // The binary could not be started at all (a wrong path): no exit event follows.
      this.record(`could not start ${this.opts.nodePath}: ${e.message}\n`);
      this.exited(child, null, null, serializeError(e));
    });
    child.on('close', (code, signal) => this.exited(child, code, signal));
    return this.whenSettled();
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.stopping = true;
    const gone = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), this.opts.graceMs ?? 5000);
    await gone;
    clearTimeout(timer);
    await this.logClosed;
  }

  /** Stops the engine if it runs, starts a new one and reloads the model it had ("Restart engine"). */
  async restart(): Promise<EngineState> {
    await this.stop();
    this.current.crash = null;
    return this.recover();
  }

  private async recover(): Promise<EngineState> {
    this.current.restarts++;
    await this.start();
    this.setState({ restarting: false });
    await this.replayModel();
    return this.state();
  }

  /** Relays one request; waits while the engine starts, and never throws. */
  async dispatch(name: string, payload: unknown): Promise<Envelope<unknown>> {
    if (this.current.state === 'starting') await this.whenSettled();
    const child = this.child;
    if (this.current.state !== 'ready' || !child?.connected) {
      return failure('engine_failed', 'the engine process is not running: press "Restart engine" (its log says why it stopped)');
    }
    const id = this.nextId++;
    const reply = new Promise<Envelope<unknown>>((resolve) => this.pending.set(id, resolve));
    const message: ToEngine = { type: 'call', id, name, payload };
    child.send(message);
    const envelope = await reply;
    if (envelope.ok) this.noteReply(name, payload, envelope.result);
    return envelope;
  }

  private whenSettled(): Promise<EngineState> {
    if (this.current.state !== 'starting') return Promise.resolve(this.state());
    return new Promise((resolve) => this.readyWaiters.push(() => resolve(this.state())));
  }

  private receive(m: FromEngine): void {
    if (m.type === 'ready') {
      this.setState({ state: 'ready', pid: m.pid, startSeconds: (performance.now() - this.startedAt) / 1000 });
      this.wakeWaiters();
    } else if (m.type === 'fatal') {
      this.fatal = m.error;
    } else if (m.type === 'reply') {
      const resolve = this.pending.get(m.id);
      this.pending.delete(m.id);
      resolve?.(m.envelope);
    } else if (m.type === 'event') {
      this.noteEvent(m.name, m.payload);
      this.emit(m.name, m.payload);
    }
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, error?: SerializedError): void {
    if (this.child !== child) return;
    this.child = undefined;
    const requested = this.stopping;
    const why = error ?? this.fatal;
    this.fatal = undefined;
    this.record(`--- engine ${requested ? 'stopped' : 'died'}: ${signal ? `signal ${signal}` : `exit code ${code}`} ---\n`);
    for (const resolve of this.pending.values()) resolve(failure('engine_failed', `the engine process ${requested ? 'was stopped' : 'died'} (${signal ?? `exit code ${code}`}) before it answered`));
    this.pending.clear();
    // Its runs stay 'running' in the database with a dead owner, so every reader sees them as interrupted.
    for (const [runId, requestId] of this.running) {
      this.emit('sweep.finished', { runId, ...(requestId !== undefined && { requestId }), status: 'interrupted' satisfies RunStatus });
    }
    if (this.running.size > 0) this.emit('runs.changed', {});
    this.running.clear();
    this.finishedEarly.clear();
    // A database that cannot open fails the same way every time: restarting would only loop.
    const canRecover = !requested && why === undefined && this.autoRestarts < 1;
    const crash = requested ? this.current.crash : { code, signal, ...(why && { error: why }), logTail: [...this.logTail], at: new Date().toISOString() };
    this.setState({ state: 'stopped', pid: null, crash, restarting: canRecover });
    this.wakeWaiters();
    this.closeLog();
    if (canRecover) {
      this.autoRestarts++;
      void this.recover();
    }
  }

  private noteReply(name: string, payload: unknown, result: unknown): void {
    if (name === 'model.load') this.lastLoad = payload as Payload<'model.load'>;
    if (name === 'sweep.start' || name === 'sweep.resume') {
      const runId = (result as { runId: string }).runId;
      // A sweep can finish before its start reply arrives: only a run not yet seen finishing is tracked.
      if (!this.finishedEarly.delete(runId)) this.running.set(runId, (payload as { requestId?: string }).requestId);
    }
  }

  private noteEvent(name: EventName, payload: unknown): void {
    const p = payload as { runId?: string; requestId?: string };
    if (name === 'sweep.progress' && p.runId) this.running.set(p.runId, p.requestId);
    if (name === 'sweep.finished' && p.runId && !this.running.delete(p.runId)) this.finishedEarly.add(p.runId);
  }

  private async replayModel(): Promise<void> {
    if (!this.lastLoad || this.current.state !== 'ready') return;
    const reply = await this.dispatch('model.load', this.lastLoad);
    if (!reply.ok) {
      this.record(`the model loaded before the restart did not load again: [${reply.error.code}] ${reply.error.message}\n`);
      this.lastLoad = undefined;
    }
  }

  private setState(change: Partial<EngineState>): void {
    Object.assign(this.current, change);
    this.emit('engine.state', this.state());
  }

  private emit(name: EventName, payload: unknown): void {
    for (const l of this.listeners) l(name, payload);
  }

  private wakeWaiters(): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const wake of waiters) wake();
  }

  private record(chunk: string): void {
    this.log?.write(chunk);
    const lines = chunk.split('\n').filter((l) => l.trim() !== '');
    this.logTail = [...this.logTail, ...lines].slice(-LOG_TAIL_LINES);
  }

  private openLog(): void {
    try {
      fs.mkdirSync(path.dirname(this.opts.logFile), { recursive: true });
      this.log = fs.createWriteStream(this.opts.logFile, { flags: 'a' });
      // A log that cannot be written must not take the engine with it; the tail still reaches the banner.
      this.log.on('error', () => (this.log = undefined));
      this.log.write(`--- engine starting ${new Date().toISOString()} (${this.opts.nodePath}) ---\n`);
    } catch {
      this.log = undefined;
    }
  }

  private closeLog(): void {
    const log = this.log;
    this.log = undefined;
    if (log) this.logClosed = new Promise((resolve) => log.end(resolve));
  }
}
