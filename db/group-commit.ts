import type { Transaction } from 'kysely';
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
 * (so "acknowledged" still means "on disk" where the connection syncs commits). A lone caller is
 * written at once. On PostgreSQL every caller keeps its own transaction (the pool runs them in
 * parallel, and row locks are taken per customer).
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private flushing = false;
  private readonly batched: boolean;
  private readonly maxBatch: number;

  constructor(
    private readonly db: Db,
    opts: { maxBatch?: number } = {},
  ) {
    this.batched = kindOf(db) === 'sqlite';
    this.maxBatch = opts.maxBatch ?? 64;
  }

  run<T>(fn: Work<T>): Promise<T> {
    if (!this.batched) return this.db.transaction().execute(fn);
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
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

const committers = new WeakMap<Db, GroupCommit>();

/** The process's group committer for a database handle (job transactions, batched on SQLite). */
export function groupCommit(db: Db): GroupCommit {
  let g = committers.get(db);
  if (!g) committers.set(db, (g = new GroupCommit(db)));
  return g;
}
