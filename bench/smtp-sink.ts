import http from 'node:http';
import { SMTPServer } from 'smtp-server';

/**
 * An SMTP sink in a process of its own, as a mail server would be: it accepts every message on
 * SINK_SMTP_PORT (smtp-server, the SMTP dialogue in full) and keeps only each message's ledger id
 * (its X-KYC-Desk-Notification header), without parsing the MIME body the way the test helper
 * does. GET / on SINK_STATS_PORT answers how many messages it received and how many distinct ids.
 */
let received = 0;
const ids = new Set<string>();
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  hideSTARTTLS: true,
  disableReverseLookup: true,
  logger: false,
  onData(stream, _session, cb) {
    let head = '';
    stream.on('data', (c: Buffer) => {
      if (head.length < 8192) head += c.toString('latin1');
    });
    stream.on('end', () => {
      received++;
      const id = /^X-KYC-Desk-Notification:\s*(\S+)/im.exec(head)?.[1];
      if (id) ids.add(id);
      cb();
    });
  },
});
server.listen(Number(process.env.SINK_SMTP_PORT), '127.0.0.1');
http
  .createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received, distinct: ids.size })),
  )
  .listen(Number(process.env.SINK_STATS_PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
