import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';
import { parseMessage, type MailMessage } from '../../capa/sandbox/mail.js';

/**
 * A real SMTP server for tests (smtp-server): records every message it accepts, can refuse
 * recipients (permanent 550 or temporary 451), and can be stopped and started again on the
 * same port to play "SMTP down, then up".
 */
export interface ReceivedMail extends Pick<MailMessage, 'from' | 'to' | 'subject' | 'text' | 'html' | 'headers'> {
  envelopeTo: string[];
  /** The client asked for SMTPUTF8 (RFC 6531) in MAIL FROM. */
  smtpUtf8: boolean;
  raw: string;
}

export interface TestSmtp {
  port: number;
  url: string;
  received: ReceivedMail[];
  /** Recipient → SMTP reply for RCPT TO (e.g. [550, 'no such user'] or [451, 'try later']). */
  refuse: Map<string, [number, string]>;
  /** Recipients refused with 451 this many more times before being accepted. */
  tempFailures: Map<string, number>;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
  to(address: string): ReceivedMail[];
}

/**
 * `smtpUtf8: false` plays a server without RFC 6531: it does not offer SMTPUTF8 and refuses a
 * UTF-8 mailbox with 553 5.6.7, as RFC 6531 §3.7.4.2 tells such servers to.
 */
export async function startTestSmtp(port = 0, opts: { smtpUtf8?: boolean } = {}): Promise<TestSmtp> {
  const received: ReceivedMail[] = [];
  const refuse = new Map<string, [number, string]>();
  const tempFailures = new Map<string, number>();
  let server: SMTPServer | null = null;
  let boundPort = port;

  const make = () =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      hideSTARTTLS: true,
      hideSMTPUTF8: opts.smtpUtf8 === false,
      logger: false,
      onRcptTo(address: SMTPServerAddress, session, cb) {
        const a = address.address.toLowerCase();
        // smtp-server shows an A-label domain in Unicode; only a UTF-8 local part needs SMTPUTF8.
        if (opts.smtpUtf8 === false && /[^\x00-\x7F]/.test(a.slice(0, a.lastIndexOf('@'))) && !session.envelope.smtpUtf8) {
          return cb(Object.assign(new Error('5.6.7 Non-ASCII addresses are not permitted for that recipient'), { responseCode: 553 }));
        }
        const r = refuse.get(a);
        if (r) return cb(Object.assign(new Error(r[1]), { responseCode: r[0] }));
        const left = tempFailures.get(a) ?? 0;
        if (left > 0) {
          tempFailures.set(a, left - 1);
          return cb(Object.assign(new Error('mailbox busy, try again later'), { responseCode: 451 }));
        }
        cb();
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks);
          received.push({
            ...parseMessage(raw),
            envelopeTo: session.envelope.rcptTo.map((r) => r.address),
            smtpUtf8: Boolean(session.envelope.smtpUtf8),
            raw: raw.toString('utf8'),
          });
          cb();
        });
      },
    });

  const t: TestSmtp = {
    get port() {
      return boundPort;
    },
    get url() {
      return `smtp://127.0.0.1:${boundPort}`;
    },
    received,
    refuse,
    tempFailures,
    async start() {
      if (server) return;
      const s = make();
      s.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        s.server.once('error', reject);
        s.listen(boundPort, '127.0.0.1', () => resolve());
      });
      boundPort = (s.server.address() as AddressInfo).port;
      server = s;
    },
    async stop() {
      const s = server;
      server = null;
      if (!s) return;
      // Drop live (pooled) connections too, like a crashed mail server.
      const conns = (s as unknown as { connections?: Set<{ close?: () => void; _socket?: { destroy(): void } }> }).connections;
      for (const c of conns ?? []) c._socket?.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async close() {
      await t.stop();
    },
    to(address) {
      return received.filter((m) => m.envelopeTo.includes(address));
    },
  } as TestSmtp;
  await t.start();
  return t;
}
