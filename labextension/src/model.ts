/**
 * The pool as the page sees it: `GET llm/api/models` and `GET llm/api/status`, kept fresh by
 * one Lumino `Poll` (every 2 s, backing off while the server fails, on standby while the
 * page is hidden). The status bar and the panel read it; nothing else polls these routes.
 */

import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from './request';

export type JobStatus =
  | 'queued'
  | 'running'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'expired';

export const UNFINISHED: ReadonlySet<JobStatus> = new Set(['queued', 'running']);

/** One entry of `GET llm/api/models`. */
export interface IModelEntry {
  name: string;
  backend: string;
  state: 'loading' | 'ready' | 'error';
  error: string | null;
  device: string | null;
  total_units: number;
  /** While it loads (servers that report it): the phase, seconds so far, its progress. */
  loading?: ILoading | null;
}

export interface ILoading {
  phase: string;
  seconds: number;
  detail?: string | null;
  done?: number | null;
  total?: number | null;
  unit?: string | null;
}

/** `GET llm/api/status`: the totals over every model. */
export interface IPoolStats {
  workers: number;
  running: number;
  queued: number;
  used_units: number;
  total_units: number;
  completed: number;
  failed: number;
  cancelled: number;
  expired: number;
  rejected: number;
}

/** A mailbox record (`GET llm/api/jobs/{id}`). */
export interface IJobRecord {
  id: string;
  model: string;
  status: JobStatus;
  text: string;
  finish_reason: string | null;
  usage: { prompt_tokens: number; completion_tokens: number };
  timings: {
    created_at: number;
    started_at: number | null;
    first_token_at: number | null;
    finished_at: number | null;
    run_secs: number | null;
  };
  error: string | null;
}

/**
 * A finished answer's line, as the notebook chat widget writes it: queue wait, time to first
 * token, tokens, tok/s, and the finish reason (or the status of a job that did not complete;
 * the header shows its error beside the line).
 */
export function answerMeta(record: IJobRecord): string {
  const parts: string[] = [];
  const { created_at, started_at, first_token_at, finished_at } = record.timings;
  if (started_at !== null) {
    parts.push(`queue ${(started_at - created_at).toFixed(2)} s`);
  }
  if (first_token_at !== null) {
    parts.push(`first token ${(first_token_at - created_at).toFixed(2)} s`);
  }
  const tokens = record.usage.completion_tokens;
  parts.push(`${tokens} tokens`);
  if (tokens > 1 && first_token_at !== null && finished_at !== null) {
    const span = finished_at - first_token_at;
    if (span > 0) {
      parts.push(`${Math.round((tokens - 1) / span)} tok/s`);
    }
  }
  parts.push(
    record.status === 'completed' ? (record.finish_reason ?? 'completed') : record.status
  );
  return parts.join(' · ');
}

const INTERVAL_MS = 2000;
const MAX_INTERVAL_MS = 30000;

export class PoolModel implements IDisposable {
  constructor() {
    this._poll = new Poll({
      factory: () => this._fetch(),
      frequency: { interval: INTERVAL_MS, backoff: true, max: MAX_INTERVAL_MS },
      standby: 'when-hidden',
      name: 'jupyter-llm:pool'
    });
  }

  /** Emitted after every poll, successful or not. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get models(): readonly IModelEntry[] {
    return this._models;
  }

  get stats(): IPoolStats | null {
    return this._stats;
  }

  /** Why the last poll failed; null after a success. */
  get error(): string | null {
    return this._error;
  }

  /** Whether the first poll has answered (either way). */
  get loaded(): boolean {
    return this._loaded;
  }

  /** `preferred` when it is configured, else the first model that has not failed. */
  defaultModel(preferred = ''): IModelEntry | null {
    const named = this._models.find(m => m.name === preferred);
    return named ?? this._models.find(m => m.state !== 'error') ?? this._models[0] ?? null;
  }

  /** Poll now (after the page changed something, such as submitting or cancelling a job). */
  refresh(): Promise<void> {
    return this._poll.refresh();
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _fetch(): Promise<void> {
    try {
      const [models, stats] = await Promise.all([
        requestAPI<{ models: IModelEntry[] }>('models'),
        requestAPI<IPoolStats>('status')
      ]);
      this._models = models.models;
      this._stats = stats;
      this._error = null;
    } catch (error) {
      this._error = (error as Error).message || String(error);
      throw error; // the Poll backs off
    } finally {
      this._loaded = true;
      this._changed.emit();
    }
  }

  private _poll: Poll;
  private _changed = new Signal<this, void>(this);
  private _models: IModelEntry[] = [];
  private _stats: IPoolStats | null = null;
  private _error: string | null = null;
  private _loaded = false;
}
