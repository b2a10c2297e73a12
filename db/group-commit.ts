import { sql, type Transaction } from 'kysely';
import { kindOf, type Db } from './client.js';
import type { Database } from './schema.js';

type Work<T> = (trx: Transaction<Database>) => Promise<T>;
interface Pending {
  fn: Work<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for worker transactions. On SQLite most of a short job's cost is its
 * COMMIT: every dirty page (the customer's row, its eight state indexes, the history and inbox
 * pages) is written to the WAL once per transaction. Callers that arrive while a commit is under
 * way share the next transaction; each runs inside its own SAVEPOINT, so one caller's error rolls
 * back only that caller's writes, and every caller is answered only after the shared COMMIT
 * (so "acknowledged" still means "on disk" where the connection syncs commits). A batch starts on
 * the turn of the event loop after its first caller. On PostgreSQL every caller keeps its own
 * transaction (the pool runs them in parallel, and row locks are taken per customer).
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private flushing = false;
  private readonly batched: boolean;
  private readonly maxBatch: number;
  private readonly durable: boolean;
  private level: number | undefined;

  /**
   * `durable`: each shared COMMIT reaches the disk even on a connection opened with
   * synchronous=NORMAL (a worker's): for writes that stand for something outside the database —
   * the claim of an e-mail about to leave, the record that it left — which a power cut must not
   * undo (the message would be sent again, or shown as not sent). One fsync per batch.
   */
  constructor(
    private readonly db: Db,
    opts: { maxBatch?: number; durable?: boolean } = {},
  ) {
    this.batched = kindOf(db) === 'sqlite';
    this.maxBatch = opts.maxBatch ?? 64;
    this.durable = opts.durable === true;
  }

  run<T>(fn: Work<T>): Promise<T> {
    if (!this.batched) return this.db.transaction().execute(fn);
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushing) {
        this.flushing = true;
        // SQLite commits are synchronous: nobody can arrive while one is written, so callers
        // that would share it are those answered in the same turn of the event loop (after a
        // commit, everything that completed meanwhile is handled in one turn). The batch starts
        // on the next turn so they all join it; a durable one (an fsync) waits a millisecond
        // more for company.
        if (this.durable) setTimeout(() => void this.flush(), 1);
        else setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length) {
        await this.runBatch(this.pending.splice(0, this.maxBatch));
        // Let callers that arrived during the commit join the next batch.
        if (this.pending.length) await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.flushing = false;
    }
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    // SQLite refuses to change the synchronous level inside a transaction: raised just for this
    // batch's COMMIT, then put back (writes of others in between are only synced more).
    const raise = this.durable && (this.level ??= await sqliteSynchronous(this.db)) < 2;
    try {
      if (raise) await sql`pragma synchronous = FULL`.execute(this.db);
      await this.runTransaction(batch);
    } finally {
      if (raise) await sql`pragma synchronous = NORMAL`.execute(this.db);
    }
  }

  private async runTransaction(batch: Pending[]): Promise<void> {
    const settled: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    let trx;
    try {
      trx = await this.db.startTransaction().execute();
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    try {
      for (let i = 0; i < batch.length; i++) {
        const name = `gc${i}`;
        const sp = await trx.savepoint(name).execute();
        try {
          const value = await batch[i].fn(sp);
          await sp.releaseSavepoint(name).execute();
          settled.push({ ok: true, value });
        } catch (error) {
          // Undo only this caller's writes; if even that fails the transaction is unusable and
          // the outer catch rolls everything back.
          await sp.rollbackToSavepoint(name).execute();
          await sp.releaseSavepoint(name).execute();
          settled.push({ ok: false, error });
        }
      }
      await trx.commit().execute();
    } catch (err) {
      await trx
        .rollback()
        .execute()
        .catch(() => {});
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const s = settled[i];
      if (s.ok) p.resolve(s.value);
      else p.reject(s.error);
    });
  }
}

/** A SQLite connection's synchronous level (0 off, 1 normal, 2 full, 3 extra). */
async function sqliteSynchronous(db: Db): Promise<number> {
  const r = await sql<{ synchronous: number }>`pragma synchronous`.execute(db);
  return Number(r.rows[0]?.synchronous ?? 2);
}

const committers = { job: new WeakMap<Db, GroupCommit>(), durable: new WeakMap<Db, GroupCommit>() };

/**
 * The process's group committer for a database handle: job transactions, batched on SQLite
 * (`durable`: batches whose COMMIT is synced to disk whatever the connection's level).
 */
export function groupCommit(db: Db, kind: keyof typeof committers = 'job'): GroupCommit {
  let g = committers[kind].get(db);
  if (!g) committers[kind].set(db, (g = new GroupCommit(db, { durable: kind === 'durable' })));
  return g;
}
