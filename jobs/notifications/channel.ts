import nodemailer, { type Transporter } from 'nodemailer';
import type { NotificationChannelName, User } from '../../db/schema.js';
import type { Env } from '../../lib/config.js';
import { checkEmail, describeEmailProblem, needsSmtpUtf8 } from '../../domain/email.js';
import type { Rendered } from './templates.js';

/**
 * Delivery channels. Callers (the send job, the programme, the console) only know this
 * interface: a channel says which address of a customer it uses, checks it, and delivers a
 * rendered message. Adding SMS means one more implementation registered in `createChannels`.
 */
export interface OutboundMessage {
  /** Ledger row id: becomes the Message-ID so a message is recognisable wherever it lands. */
  id: string;
  to: string;
  rendered: Rendered;
  locale: string;
  /** Extra headers (e-mail) or metadata (other channels). */
  tags: Record<string, string>;
}

export interface DeliveryReceipt {
  providerMessageId: string | null;
  response: string | null;
}

export interface Channel {
  readonly name: NotificationChannelName;
  /** The customer's address on this channel, or null if we have none. */
  addressOf(user: Pick<User, 'email'>): string | null;
  /** Null when the address is usable; otherwise why not (recorded as a permanent failure). */
  checkAddress(address: string): string | null;
  send(msg: OutboundMessage): Promise<DeliveryReceipt>;
  close(): Promise<void>;
}

/**
 * A failed delivery. `permanent`: trying again cannot help (bad address, recipient refused);
 * otherwise the job retries with backoff and records the failure once attempts run out.
 */
export class ChannelError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ChannelError';
  }
}

/** The one address rule (domain/email.ts), worded for the ledger; null when the address is usable. */
export function checkEmailAddress(address: string): string | null {
  if (!address) return 'no e-mail address';
  const r = checkEmail(address);
  return r.ok ? null : `not a valid e-mail address: ${address} (${describeEmailProblem(r)})`;
}

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  command?: string;
  response?: string;
}

/** SMTP failures → ChannelError. 5xx on RCPT is a bad address (permanent); 4xx and network errors are retried. */
export function classifySmtpError(err: unknown): ChannelError {
  const e = err as SmtpError;
  const code = typeof e?.responseCode === 'number' ? e.responseCode : null;
  const what = (e?.response ?? e?.message ?? String(err)).replace(/\s+/g, ' ').trim().slice(0, 300);
  if (code !== null) {
    const stage = e.command ? ` at ${e.command}` : '';
    if (code >= 500) {
      // The recipient itself refused (mailbox unknown, bad syntax): retrying cannot help.
      const permanent = e.command === 'RCPT TO' || code === 550 || code === 551 || code === 553 || code === 501;
      return new ChannelError(`SMTP ${code}${stage}: ${what}`, permanent, `smtp-${code}`);
    }
    return new ChannelError(`SMTP ${code}${stage} (temporary): ${what}`, false, `smtp-${code}`);
  }
  if (e?.code === 'EENVELOPE') return new ChannelError(`refused address: ${what}`, true, 'EENVELOPE');
  if (e?.code === 'EAUTH') return new ChannelError(`SMTP authentication failed: ${what}`, false, 'EAUTH');
  return new ChannelError(`SMTP unreachable or failed: ${what}`, false, e?.code ?? null);
}

export interface EmailChannelOptions {
  /** smtp://, smtps:// URL (nodemailer syntax; credentials allowed). */
  url: string;
  from: string;
  /** Pooled connections (the worker); off for one-off sends. */
  pool?: boolean;
  timeoutMs?: number;
}

export class EmailChannel implements Channel {
  readonly name = 'email' as const;
  private readonly transport: Transporter;
  private readonly domain: string;

  constructor(private readonly opts: EmailChannelOptions) {
    const timeout = opts.timeoutMs ?? 15_000;
    this.transport = nodemailer.createTransport({
      url: opts.url,
      pool: opts.pool ?? true,
      maxConnections: 4,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout * 2,
    } as nodemailer.TransportOptions);
    const m = /@([^>\s]+)>?\s*$/.exec(opts.from);
    this.domain = m?.[1] ?? 'kyc-desk.local';
  }

  addressOf(user: Pick<User, 'email'>): string | null {
    return user.email?.trim() || null;
  }

  checkAddress(address: string): string | null {
    return checkEmailAddress(address);
  }

  async send(msg: OutboundMessage): Promise<DeliveryReceipt> {
    const problem = this.checkAddress(msg.to);
    if (problem) throw new ChannelError(problem, true, 'bad-address');
    const messageId = `<${msg.id}@${this.domain}>`;
    try {
      const info = await this.transport.sendMail({
        from: this.opts.from,
        to: msg.to,
        subject: msg.rendered.subject,
        text: msg.rendered.text,
        html: msg.rendered.html,
        messageId,
        headers: {
          'Content-Language': msg.locale,
          // Machine-sent: auto-responders must not answer (RFC 3834).
          'Auto-Submitted': 'auto-generated',
          ...msg.tags,
        },
      });
      if (Array.isArray(info.rejected) && info.rejected.length > 0) {
        throw new ChannelError(`recipient refused: ${info.rejected.map(String).join(', ')}`, true, 'rejected');
      }
      return { providerMessageId: info.messageId ?? messageId, response: typeof info.response === 'string' ? info.response.slice(0, 300) : null };
    } catch (err) {
      if (err instanceof ChannelError) throw err;
      const ce = classifySmtpError(err);
      // nodemailer asks for SMTPUTF8 whenever the server offers it. A syntax-class refusal (501,
      // 553, 555) of a UTF-8 address means the server, or the next hop, does not speak it — the
      // SMTP text rarely says so, and the operator must know the address itself is fine.
      if (ce.permanent && needsSmtpUtf8(msg.to) && /^smtp-(501|553|555)$/.test(ce.code ?? '')) {
        throw new ChannelError(`${ce.message} (an internationalised address: this mail server does not accept SMTPUTF8)`, true, ce.code);
      }
      throw ce;
    }
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}

/** A channel that is configured off: every send fails permanently with the reason. */
export class UnavailableChannel implements Channel {
  constructor(
    readonly name: NotificationChannelName,
    private readonly reason: string,
  ) {}
  addressOf(): string | null {
    return null;
  }
  checkAddress(): string | null {
    return this.reason;
  }
  async send(): Promise<DeliveryReceipt> {
    throw new ChannelError(this.reason, true, 'unavailable');
  }
  async close(): Promise<void> {}
}

/** Where e-mail goes: SMTP_URL, else (with the Capa sandbox) the sandbox's mail sink. */
export function smtpTarget(env: Pick<Env, 'SMTP_URL' | 'usingSandbox' | 'SANDBOX_SMTP_PORT'>): { url: string } | { unavailable: string } {
  if (env.SMTP_URL) return { url: env.SMTP_URL };
  if (env.usingSandbox && env.SANDBOX_SMTP_PORT !== 'off') return { url: `smtp://127.0.0.1:${env.SANDBOX_SMTP_PORT}` };
  return { unavailable: 'e-mail is not configured: set SMTP_URL' };
}

export type Channels = ReadonlyMap<NotificationChannelName, Channel>;

export function createChannels(env: Pick<Env, 'SMTP_URL' | 'usingSandbox' | 'SANDBOX_SMTP_PORT' | 'MAIL_FROM'>, opts: { pool?: boolean } = {}): Channels {
  const target = smtpTarget(env);
  const email: Channel = 'url' in target ? new EmailChannel({ url: target.url, from: env.MAIL_FROM, pool: opts.pool ?? true }) : new UnavailableChannel('email', target.unavailable);
  return new Map<NotificationChannelName, Channel>([
    ['email', email],
    ['sms', new UnavailableChannel('sms', 'SMS is not available yet')],
  ]);
}

// One set of channels per environment object (per process; tests create several).
const cache = new WeakMap<object, Channels>();

export function channelsFor(env: Env): Channels {
  let c = cache.get(env);
  if (!c) {
    c = createChannels(env);
    cache.set(env, c);
  }
  return c;
}

export async function closeChannelsFor(env: Env): Promise<void> {
  const c = cache.get(env);
  cache.delete(env);
  if (c) await Promise.all([...c.values()].map((ch) => ch.close()));
}
