import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

/**
 * A mail sink for local runs: accepts any message over plain SMTP (no TLS, no auth) and keeps it
 * in memory for the mailbox page. mailparser is not installed, so this carries a minimal MIME
 * reader: headers (with RFC 2047 encoded words), multipart/*, quoted-printable and base64 —
 * enough for what nodemailer produces.
 */

export interface MailMessage {
  id: string;
  from: string;
  to: string[];
  subject: string;
  text: string | null;
  html: string | null;
  headers: Record<string, string>;
  receivedAt: string;
  /** Envelope as given over SMTP (MAIL FROM / RCPT TO). */
  envelope: { from: string | null; to: string[] };
  size: number;
}

export interface MailSink {
  port: number;
  messages(): MailMessage[];
  clear(): void;
  close(): Promise<void>;
}

const MAX_MESSAGES = 500;
const MAX_SIZE = 5 * 1024 * 1024;

export async function startMailSink(opts: { port: number; host: string }): Promise<MailSink> {
  const store: MailMessage[] = [];
  let seq = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    hideSTARTTLS: true,
    logger: false,
    size: MAX_SIZE,
    banner: 'Capa sandbox mail sink',
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          callback(Object.assign(new Error('Message too large'), { responseCode: 552 }));
          return;
        }
        const raw = Buffer.concat(chunks);
        const parsed = parseMessage(raw);
        seq++;
        store.unshift({
          id: `m${seq}`,
          ...parsed,
          receivedAt: new Date().toISOString(),
          envelope: {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
            to: session.envelope.rcptTo.map((r) => r.address),
          },
          size: raw.length,
        });
        if (store.length > MAX_MESSAGES) store.length = MAX_MESSAGES;
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Keep serving after a client misbehaves; smtp-server emits per-connection errors here.
  server.on('error', () => undefined);
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    messages: () => [...store],
    clear: () => {
      store.length = 0;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------------------------
// Minimal MIME parsing

type Headers = Record<string, string>;

function splitHeadBody(raw: string): { head: string; body: string } {
  const m = /\r?\n\r?\n/.exec(raw);
  if (!m) return { head: raw, body: '' };
  return { head: raw.slice(0, m.index), body: raw.slice(m.index + m[0].length) };
}

function parseHeaders(head: string): Headers {
  const out: Headers = {};
  // Unfold continuation lines (RFC 5322 §2.2.3).
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  for (const line of unfolded.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const key = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    out[key] = out[key] ? `${out[key]}, ${value}` : value;
  }
  return out;
}

function param(headerValue: string | undefined, name: string): string | undefined {
  if (!headerValue) return undefined;
  const re = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i');
  const m = re.exec(headerValue);
  return m ? (m[1] ?? m[2]) : undefined;
}

function decodeBytes(bytes: Buffer, charset: string | undefined): string {
  const cs = (charset ?? 'utf-8').toLowerCase();
  try {
    return new TextDecoder(cs === 'us-ascii' ? 'utf-8' : cs).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

function qpToBytes(s: string, underscoresAreSpaces = false): Buffer {
  const src = underscoresAreSpaces ? s.replace(/_/g, ' ') : s.replace(/=\r?\n/g, '');
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(src.slice(i + 1, i + 3))) {
      out.push(parseInt(src.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(out);
}

/** RFC 2047 encoded words: =?charset?Q|B?text?= (adjacent words join without the space). */
export function decodeWords(value: string): string {
  return value
    .replace(/(=\?[^?]+\?[QqBb]\?[^?]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_m, charset: string, enc: string, text: string) => {
      const bytes = enc.toUpperCase() === 'B' ? Buffer.from(text, 'base64') : qpToBytes(text, true);
      return decodeBytes(bytes, charset.split('*')[0]);
    });
}

function decodeBody(body: string, headers: Headers): string {
  const cte = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  const charset = param(headers['content-type'], 'charset');
  if (cte === 'base64') return decodeBytes(Buffer.from(body.replace(/\s+/g, ''), 'base64'), charset);
  if (cte === 'quoted-printable') return decodeBytes(qpToBytes(body), charset);
  return decodeBytes(Buffer.from(body, 'latin1'), charset);
}

function collectParts(head: Headers, body: string, acc: { text: string | null; html: string | null }): void {
  const ctype = (head['content-type'] ?? 'text/plain').toLowerCase();
  if (ctype.startsWith('multipart/')) {
    const boundary = param(head['content-type'], 'boundary');
    if (!boundary) return;
    const parts = body.split(new RegExp(`\\r?\\n?--${boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*\\r?\\n?`));
    for (const part of parts.slice(1)) {
      if (!part.trim()) continue;
      const { head: ph, body: pb } = splitHeadBody(part);
      collectParts(parseHeaders(ph), pb, acc);
    }
    return;
  }
  if (/attachment/i.test(head['content-disposition'] ?? '')) return;
  if (ctype.startsWith('text/html') && acc.html === null) acc.html = decodeBody(body, head);
  else if (ctype.startsWith('text/plain') && acc.text === null) acc.text = decodeBody(body, head).replace(/\r\n/g, '\n');
}

export function parseMessage(raw: Buffer): Pick<MailMessage, 'from' | 'to' | 'subject' | 'text' | 'html' | 'headers'> {
  // latin1 keeps bytes 1:1 so 8bit bodies can be re-decoded with their declared charset.
  const { head, body } = splitHeadBody(raw.toString('latin1'));
  const headers = parseHeaders(head);
  for (const k of Object.keys(headers)) headers[k] = decodeWords(decodeBytes(Buffer.from(headers[k]!, 'latin1'), 'utf-8'));
  const acc = { text: null as string | null, html: null as string | null };
  collectParts(parseHeaders(head), body, acc);
  return {
    from: headers.from ?? '',
    to: (headers.to ?? '')
      .split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)
      .map((s) => s.trim())
      .filter(Boolean),
    subject: headers.subject ?? '',
    text: acc.text,
    html: acc.html,
    headers,
  };
}
