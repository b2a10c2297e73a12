import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import Database from 'better-sqlite3';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

/**
 * The bare reference receiver for the ingest benchmark: node:http, the same HMAC check, the same
 * SQLite insert (same table, same pragmas) and the same BullMQ add — nothing else.
 */
const port = Number(process.env.PORT);
const secret = process.env.CAPA_WEBHOOK_SECRET!;
const file = process.env.DATABASE_URL!.replace(/^file:/, '');
const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
const insert =
  db.prepare(`insert into webhook_inbox (received_at, raw_body, headers, signature_verdict, secret_index, event_type, event_name, external_user_id, dedupe_key, status)
  values (?, ?, ?, 'valid', 0, ?, ?, ?, ?, 'received') returning id`);
const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
const queue = new Queue('webhooks', { connection, prefix: process.env.QUEUE_PREFIX });

http
  .createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      const sig = String(req.headers['capa-signature'] ?? '');
      const expected = createHmac('sha256', secret).update(raw).digest();
      if (!/^[0-9a-f]{64}$/i.test(sig) || !timingSafeEqual(expected, Buffer.from(sig, 'hex'))) {
        res.writeHead(401).end();
        return;
      }
      const body = JSON.parse(raw.toString('utf8'));
      const { id } = insert.get(new Date().toISOString(), raw.toString('utf8'), '{}', body.type, body.event, body.externalUserId, null) as {
        id: number;
      };
      await queue.add('process-webhook', { inboxId: id }, { jobId: `wh-${id}` });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, id }));
    });
  })
  .listen(port, '127.0.0.1');
