import Database from 'better-sqlite3';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';

/**
 * Drains the reference receiver's queue (bench/reference-receiver.ts), written as one would by
 * hand: a BullMQ worker (32 jobs in flight) that, per delivery, in one transaction, reads it with
 * its customer, moves the customer LINK_ISSUED → IN_PROGRESS, records the change and settles the
 * delivery. SQLite: synchronous=NORMAL and a PASSIVE checkpoint every second, as our worker does.
 */
const url = process.env.DATABASE_URL!;
const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });

type Process = (inboxId: number) => Promise<void> | void;
let processOne: Process;

if (url.startsWith('postgres')) {
  const pool = new pg.Pool({ connectionString: url, max: 10, options: `-c search_path=${process.env.BENCH_PG_SCHEMA ?? 'public'}` });
  processOne = async (inboxId) => {
    const c = await pool.connect();
    try {
      await c.query('begin');
      const r = await c.query<{ user_id: string | null; kyc_state: string | null; status: string }>(
        `select u.id as user_id, u.kyc_state, w.status from webhook_inbox w left join users u on u.external_user_id = w.external_user_id
         where w.id = $1 for update of w`,
        [inboxId],
      );
      const row = r.rows[0];
      if (row && row.status === 'received') {
        const now = new Date().toISOString();
        if (row.user_id && row.kyc_state === 'LINK_ISSUED') {
          await c.query(`update users set kyc_state = 'IN_PROGRESS', kyc_state_changed_at = $2, updated_at = $2 where id = $1`, [
            row.user_id,
            now,
          ]);
          await c.query(
            `insert into state_changes (user_id, at, from_state, to_state, cause_type, cause_id, reason, drift)
             values ($1, $2, 'LINK_ISSUED', 'IN_PROGRESS', 'webhook', $3, 'CREATED_KYC', 0)`,
            [row.user_id, now, String(inboxId)],
          );
        }
        await c.query(`update webhook_inbox set status = 'processed', processed_at = $2, user_id = $3 where id = $1`, [
          inboxId,
          now,
          row.user_id,
        ]);
      }
      await c.query('commit');
    } catch (err) {
      await c.query('rollback').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  };
} else {
  const db = new Database(url.replace(/^file:/, ''));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  setInterval(() => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      /* busy: next second */
    }
  }, 1000).unref();
  const read = db.prepare(`select u.id as user_id, u.kyc_state, w.status from webhook_inbox w
    left join users u on u.external_user_id = w.external_user_id where w.id = ?`);
  const move = db.prepare(`update users set kyc_state = 'IN_PROGRESS', kyc_state_changed_at = ?, updated_at = ? where id = ?`);
  const record = db.prepare(`insert into state_changes (user_id, at, from_state, to_state, cause_type, cause_id, reason, drift)
    values (?, ?, 'LINK_ISSUED', 'IN_PROGRESS', 'webhook', ?, 'CREATED_KYC', 0)`);
  const settle = db.prepare(`update webhook_inbox set status = 'processed', processed_at = ?, user_id = ? where id = ?`);
  processOne = db
    .transaction((inboxId: number) => {
      const row = read.get(inboxId) as { user_id: string | null; kyc_state: string | null; status: string } | undefined;
      if (!row || row.status !== 'received') return;
      const now = new Date().toISOString();
      if (row.user_id && row.kyc_state === 'LINK_ISSUED') {
        move.run(now, now, row.user_id);
        record.run(row.user_id, now, String(inboxId));
      }
      settle.run(now, row.user_id, inboxId);
    })
    .immediate.bind(null) as Process;
}

const worker = new Worker('webhooks', async (job) => processOne((job.data as { inboxId: number }).inboxId), {
  connection,
  prefix: process.env.QUEUE_PREFIX,
  concurrency: 32,
});
worker.on('error', () => {});
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
