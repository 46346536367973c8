/**
 * What a Lab's request handlers share, and the type that ties each domain's handlers to the
 * contract: a domain's map must answer every request named after it (`runs` answers `runs.*`), so a
 * request added to contract.ts without its handler is a type error, not a runtime surprise.
 */
import type { ResultStore } from '../store/result-store.ts';
import type { Parsed, Reply, RequestName } from './contract.ts';
import type { EngineHost } from './engine-host.ts';
import type { Emit, RunRegistry } from './run-registry.ts';
import type { TokenizerCache } from './tokenizer-cache.ts';

/** A handler gets its payload as the schema made it (defaults filled in) and answers the contract's reply. */
export type Handler<K extends RequestName> = (payload: Parsed<K>) => Promise<Reply<K>>;

/** The requests of one domain: `D` itself and every `D.something`. */
export type RequestsOf<D extends string> = Extract<RequestName, D | `${D}.${string}`>;

/** One handler for each of these requests, no more and no fewer. */
export type Handlers<K extends RequestName> = { [N in K]: Handler<N> };

/** The Lab's parts the handlers use. */
export interface LabContext {
  store: ResultStore;
  cacheRoot: string;
  engine: EngineHost;
  runs: RunRegistry;
  tokenizers: TokenizerCache;
  emit: Emit;
}
