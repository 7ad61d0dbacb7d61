import pg from 'pg';
import { reconnectDelayMs, type BackoffOptions } from '../backoff.js';
import type { StoreDeps } from '../deps.js';
import { describeCause } from '../errors.js';
import type { StoreHealth } from '../health.js';
import { NOTIFY_CHANNEL } from './change-feed.js';
import { isConnectionError } from './connection-errors.js';

/**
 * The replica's one long-lived connection to PostgreSQL, apart from the pool: it holds the
 * advisory locks (which live as long as their session) and LISTENs for the change feed.
 *
 * It is "up" from a successful connect until any of: the socket errors or closes, the server
 * ends the session (pg_terminate_backend, shutdown), or a query on it (the health query every
 * `pollIntervalMs`) takes longer than `queryTimeoutMs`. Then it is dropped, the listeners'
 * `down` is called at once, and reconnects follow with capped, jittered backoff.
 */

export interface SessionOptions {
  clientConfig: pg.ClientConfig;
  pollIntervalMs: number;
  queryTimeoutMs: number;
  backoff: BackoffOptions;
}

export interface SessionListener {
  /** The session (re)connected and LISTENs. */
  up?(): void | Promise<void>;
  /** The session was lost; locks it held are gone. */
  down?(): void;
  /** Each poll, after the health query answered. */
  tick?(): void | Promise<void>;
  notification?(payload: string): void;
}

export class StoreSession {
  private client: pg.Client | undefined;
  private attempt = 0;
  private closed = false;
  private cancelTimer: (() => void) | undefined;
  private readonly listeners = new Set<SessionListener>();
  private firstAttempt: Promise<void> | undefined;

  constructor(
    private readonly options: SessionOptions,
    private readonly deps: Pick<StoreDeps, 'logger' | 'random' | 'timer'> & { health: StoreHealth },
  ) {}

  listen(listener: SessionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get isUp(): boolean {
    return this.client !== undefined;
  }

  /** Connects; resolves after the first attempt, whether it succeeded or not (retries go on). */
  start(): Promise<void> {
    this.firstAttempt ??= this.connect();
    return this.firstAttempt;
  }

  /**
   * A query on the session. A lost connection or a timeout drops the session (it reconnects),
   * since a session that does not answer may still hold locks others are waiting for.
   */
  async query<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
    const client = this.client;
    if (!client) throw new Error('the store session is not connected');
    let cancel: (() => void) | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      cancel = this.deps.timer(this.options.queryTimeoutMs, () => {
        timedOut = true;
        reject(new Error(`the store session query timed out after ${this.options.queryTimeoutMs} ms`));
      });
    });
    try {
      return (await Promise.race([client.query<R>(text, params), timeout])).rows;
    } catch (err) {
      if (timedOut || isConnectionError(err)) this.lost(client, err);
      throw err;
    } finally {
      cancel?.();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cancelTimer?.();
    const client = this.client;
    this.client = undefined;
    if (client) {
      this.deps.health.set(false);
      for (const l of this.listeners) l.down?.();
      await client.end().catch(() => undefined);
    }
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    if (this.attempt > 0) this.deps.health.reconnectAttempts.inc();
    const client = new pg.Client(this.options.clientConfig);
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('the store session ended')));
    client.on('notification', (n) => {
      if (client !== this.client || n.channel !== NOTIFY_CHANNEL) return;
      for (const l of this.listeners) l.notification?.(n.payload ?? '');
    });
    try {
      await client.connect();
      // A leader whose host vanishes holds its lock until the server notices the dead socket:
      // TCP keepalives bound that to about idle + interval × count = 5 + 2 × 3 = 11 s.
      await client.query('SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3');
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (err) {
      void client.end().catch(() => undefined);
      this.deps.health.set(false);
      if (this.attempt === 0 || this.attempt % 10 === 0) {
        this.deps.logger.warn({ err: describeCause(err), attempt: this.attempt }, 'cannot connect to the store; retrying');
      }
      this.scheduleReconnect();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    if (this.attempt > 0) this.deps.logger.info({ attempts: this.attempt }, 'reconnected to the store');
    this.client = client;
    this.attempt = 0;
    this.deps.health.set(true);
    await this.notify((l) => l.up?.());
    if (this.client === client) this.scheduleTick(client);
  }

  private lost(client: pg.Client, err: unknown): void {
    if (client !== this.client) return;
    this.client = undefined;
    this.cancelTimer?.();
    void client.end().catch(() => undefined);
    this.deps.health.set(false);
    this.deps.logger.warn({ err: describeCause(err) }, 'lost the store session; reconnecting');
    for (const l of this.listeners) l.down?.();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const delay = reconnectDelayMs(this.attempt++, this.options.backoff, this.deps.random);
    this.cancelTimer = this.deps.timer(delay, () => { void this.connect(); });
  }

  private scheduleTick(client: pg.Client): void {
    this.cancelTimer = this.deps.timer(this.options.pollIntervalMs, () => { void this.tick(client); });
  }

  private async tick(client: pg.Client): Promise<void> {
    if (client !== this.client) return;
    try {
      await this.query('SELECT 1');
    } catch {
      return; // query() dropped the session; reconnects are scheduled
    }
    await this.notify((l) => l.tick?.());
    if (client === this.client && !this.closed) this.scheduleTick(client);
  }

  private async notify(call: (l: SessionListener) => void | Promise<void>): Promise<void> {
    for (const l of this.listeners) {
      try {
        await call(l);
      } catch (err) {
        this.deps.logger.warn({ err: describeCause(err) }, 'a store session listener failed');
      }
    }
  }
}
