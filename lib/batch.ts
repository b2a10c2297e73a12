export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

/**
 * Calls that arrive while a batch is being handled wait and are handled together in the next
 * one (at most `maxBatch`); a lone call is handled on the next turn of the event loop. `handle` answers every item of its
 * batch, each on its own (one item's error rejects that item only); if `handle` itself throws,
 * every item of the batch is rejected with that error.
 *
 * `waitMs` > 0: a batch that is not full waits that long for company before it starts (calls
 * that arrive meanwhile join it). For work that is cheaper per item in bigger batches and can
 * afford the wait — a worker's deliveries, whose every transaction also keeps another process
 * off SQLite's write lock.
 *
 * `lanes` > 1: up to that many batches are handled at once (each lane takes the next batch when
 * it is free). For a handler that waits on a database that runs transactions in parallel
 * (PostgreSQL), so one batch's round trips overlap another's; SQLite has one writer: one lane.
 */
export class Batcher<I, O> {
  private pending: Array<{ item: I; resolve: (v: O) => void; reject: (e: unknown) => void }> = [];
  private running = 0;

  constructor(
    private readonly handle: (items: I[]) => Promise<Array<Settled<O>>>,
    private readonly maxBatch = 64,
    private readonly waitMs = 0,
    private readonly lanes = 1,
  ) {}

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.running < this.lanes) {
        this.running++;
        // Calls answered by the same read (several jobs handed over in one reply) join the first batch.
        void this.pause().then(() => this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, this.maxBatch);
        let settled: Array<Settled<O>>;
        try {
          settled = await this.handle(batch.map((b) => b.item));
        } catch (error) {
          settled = batch.map(() => ({ ok: false, error }));
        }
        batch.forEach((b, i) => {
          const s = settled[i] ?? { ok: false, error: new Error('batch handler gave no answer for this item') };
          if (s.ok) b.resolve(s.value);
          else b.reject(s.error);
        });
        // Let calls that arrived meanwhile join the next batch.
        if (this.pending.length) await this.pause();
      }
    } finally {
      this.running--;
    }
  }

  private pause(): Promise<void> {
    return new Promise((r) => (this.waitMs > 0 && this.pending.length < this.maxBatch ? setTimeout(r, this.waitMs) : setImmediate(r)));
  }
}
