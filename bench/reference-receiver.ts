import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import Database from 'better-sqlite3';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';

/**
 * The reference receiver of the ingest benchmark: plain node:http doing the same durable work as
 * our intake, written as one would by hand — the HMAC check, the duplicate lookup, the insert,
 * committed durably (SQLite synchronous=FULL, PostgreSQL synchronous_commit on) once per turn of
 * the event loop for every delivery that arrived in it, each answered after that commit, and one
 * BullMQ addBulk per commit (not awaited). bench/reference-consumer.ts drains the queue beside it.
 * DATABASE_URL: `file:…` or `postgres://…` (BENCH_PG_SCHEMA names the schema).
 */
const port = Number(process.env.PORT);
const secret = process.env.CAPA_WEBHOOK_SECRET!;
const url = process.env.DATABASE_URL!;
const WINDOW_MS = 35 * 60_000;
const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
const queue = new Queue('webhooks', { connection, prefix: process.env.QUEUE_PREFIX });

interface Delivery {
  raw: string;
  type: string;
  event: string;
  externalUserId: string | null;
  dedupeKey: string;
  res: http.ServerResponse;
}

type Store = (batch: Delivery[]) => Promise<number[]> | number[];
let store: Store;

if (url.startsWith('postgres')) {
  const pool = new pg.Pool({ connectionString: url, max: 4, options: `-c search_path=${process.env.BENCH_PG_SCHEMA ?? 'public'}` });
  store = async (batch) => {
    const c = await pool.connect();
    try {
      const now = new Date();
      await c.query('begin');
      const dupes = await c.query<{ dedupe_key: string; id: number }>(
        `select dedupe_key, max(id) as id from webhook_inbox where dedupe_key = any($1) and received_at >= $2 and duplicate_of is null
         group by dedupe_key`,
        [batch.map((d) => d.dedupeKey), new Date(now.getTime() - WINDOW_MS).toISOString()],
      );
      const original = new Map(dupes.rows.map((r) => [r.dedupe_key, r.id]));
      const at = now.toISOString();
      const r = await c.query<{ id: number }>(
        `insert into webhook_inbox (received_at, raw_body, headers, signature_verdict, secret_index, event_type, event_name,
           external_user_id, dedupe_key, duplicate_of, status)
         select $1, b, '{}', 'valid', 0, t, e, u, k, d, case when d is null then 'received' else 'ignored' end
         from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[]) as v(b, t, e, u, k, d) returning id`,
        [
          at,
          batch.map((d) => d.raw),
          batch.map((d) => d.type),
          batch.map((d) => d.event),
          batch.map((d) => d.externalUserId),
          batch.map((d) => d.dedupeKey),
          batch.map((d) => original.get(d.dedupeKey) ?? null),
        ],
      );
      await c.query('commit');
      return r.rows.map((x) => x.id);
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
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  // The consumer process checkpoints, as our worker does.
  db.pragma('wal_autocheckpoint = 20000');
  const findOriginal = db.prepare(
    `select id from webhook_inbox where dedupe_key = ? and received_at >= ? and duplicate_of is null order by id desc limit 1`,
  );
  const insert = db.prepare(`insert into webhook_inbox (received_at, raw_body, headers, signature_verdict, secret_index, event_type,
      event_name, external_user_id, dedupe_key, duplicate_of, status) values (?, ?, '{}', 'valid', 0, ?, ?, ?, ?, ?, ?) returning id`);
  const begin = db.prepare('begin immediate');
  const commit = db.prepare('commit');
  store = (batch) => {
    const now = new Date();
    const at = now.toISOString();
    const since = new Date(now.getTime() - WINDOW_MS).toISOString();
    begin.run();
    try {
      const ids = batch.map((d) => {
        const original = (findOriginal.get(d.dedupeKey, since) as { id: number } | undefined)?.id ?? null;
        const row = insert.get(at, d.raw, d.type, d.event, d.externalUserId, d.dedupeKey, original, original ? 'ignored' : 'received');
        return (row as { id: number }).id;
      });
      commit.run();
      return ids;
    } catch (err) {
      db.exec('rollback');
      throw err;
    }
  };
}

let pending: Delivery[] = [];
let flushing = false;

async function flush(): Promise<void> {
  flushing = true;
  while (pending.length) {
    const batch = pending;
    pending = [];
    try {
      const ids = await store(batch);
      batch.forEach((d, i) => d.res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, id: ids[i] })));
      queue
        .addBulk(ids.map((id) => ({ name: 'process-webhook', data: { inboxId: id }, opts: { jobId: `wh-${id}`, removeOnComplete: true } })))
        .catch(() => {});
    } catch {
      for (const d of batch) d.res.writeHead(503).end();
    }
  }
  flushing = false;
}

http
  .createServer((req, res) => {
    if (req.method === 'GET') return void res.writeHead(200).end('ok');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const sig = String(req.headers['capa-signature'] ?? '');
      const expected = createHmac('sha256', secret).update(raw).digest();
      if (!/^[0-9a-f]{64}$/i.test(sig) || !timingSafeEqual(expected, Buffer.from(sig, 'hex'))) return void res.writeHead(401).end();
      const text = raw.toString('utf8');
      const body = JSON.parse(text) as { type: string; event: string; externalUserId?: string; transactionId?: string };
      const externalUserId = body.externalUserId ?? null;
      const dedupeKey = createHash('sha256')
        .update(JSON.stringify([body.type, body.event, externalUserId, body.transactionId ?? null]))
        .digest('hex');
      pending.push({ raw: text, type: body.type, event: body.event, externalUserId, dedupeKey, res });
      // Everything that arrived in this turn of the event loop shares the next commit.
      if (!flushing) {
        flushing = true;
        setImmediate(() => void flush());
      }
    });
  })
  .listen(port, '127.0.0.1');
