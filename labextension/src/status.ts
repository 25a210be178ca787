/**
 * The status the status bar and the panel show, refreshed on an interval.
 *
 * While the server answers it refreshes every `intervalMs`. After a failure it
 * backs off (doubling, up to `maxMs`), so an unreachable server is not hammered.
 * While the page is hidden it does not fetch at all.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { nextDelay } from './logic';
import { IStatus } from './model';

export type StatusFetcher = () => Promise<IStatus>;

export interface IStatusModelOptions {
  fetch: StatusFetcher;
  intervalMs?: number;
  maxMs?: number;
  /** Whether the page is visible (defaults to `document.visibilityState`). */
  isVisible?: () => boolean;
}

export class StatusModel {
  constructor(options: IStatusModelOptions) {
    this._fetch = options.fetch;
    this.intervalMs = options.intervalMs ?? 30000;
    this.maxMs = options.maxMs ?? 5 * 60000;
    this._isVisible =
      options.isVisible ??
      (() =>
        typeof document === 'undefined' || document.visibilityState !== 'hidden');
  }

  intervalMs: number;
  maxMs: number;

  get status(): IStatus | null {
    return this._status;
  }

  /** Why the last refresh failed (server unreachable), or null. */
  get error(): string | null {
    return this._error;
  }

  /** Consecutive failed refreshes. */
  get failures(): number {
    return this._failures;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Start refreshing (the first refresh runs now). */
  start(): void {
    if (!this._started) {
      this._started = true;
      void this.refresh();
    }
  }

  /** Refresh now, then continue on the usual schedule. */
  async refresh(): Promise<void> {
    if (this._disposed) {
      return;
    }
    this._clearTimer();
    if (!this._isVisible()) {
      this._schedule(this.intervalMs);
      return;
    }
    const seq = ++this._seq;
    try {
      const status = await this._fetch();
      if (seq !== this._seq || this._disposed) {
        return; // a newer refresh started meanwhile
      }
      this._status = status;
      this._error = null;
      this._failures = 0;
    } catch (err) {
      if (seq !== this._seq || this._disposed) {
        return;
      }
      this._failures += 1;
      this._error = describe(err);
    }
    this._changed.emit();
    this._schedule(nextDelay(this.intervalMs, this._failures, this.maxMs));
  }

  /** Tell listeners to re-render (after a settings change). */
  notify(): void {
    this._changed.emit();
  }

  /** The delay of the scheduled refresh (ms), or null (for tests and the panel). */
  get scheduledDelay(): number | null {
    return this._timer === null ? null : this._delay;
  }

  dispose(): void {
    this._disposed = true;
    this._clearTimer();
    Signal.clearData(this);
  }

  private _schedule(ms: number): void {
    this._clearTimer();
    if (this._disposed) {
      return;
    }
    this._delay = ms;
    this._timer = setTimeout(() => {
      this._timer = null;
      void this.refresh();
    }, ms);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _fetch: StatusFetcher;
  private _isVisible: () => boolean;
  private _status: IStatus | null = null;
  private _error: string | null = null;
  private _failures = 0;
  private _seq = 0;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _delay = 0;
  private _started = false;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}

function describe(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { status?: number; message?: string; name?: string };
    if (typeof e.status === 'number') {
      return `HTTP ${e.status}`;
    }
    if (e.name === 'NetworkError') {
      return 'network error';
    }
    if (e.message) {
      return e.message.split('\n')[0].slice(0, 120);
    }
  }
  return 'unknown error';
}
