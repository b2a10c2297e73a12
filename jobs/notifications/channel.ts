import type { NotificationChannelName, User } from '../../db/schema.js';
import type { Env } from '../../lib/config.js';
import { checkEmail, describeEmailProblem } from '../../domain/email.js';
import type { Rendered } from './templates.js';

/**
 * Delivery channels. Callers (the send job, the programme, the console) only know this
 * interface: a channel says which address of a customer it uses, checks it, and delivers a
 * rendered message. Adding SMS means one more implementation registered in `createChannels`
 * (transports.ts, where the mail transport lives: only the send job loads it).
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

/** The address an e-mail channel uses. */
export function emailAddressOf(user: Pick<User, 'email'>): string | null {
  return user.email?.trim() || null;
}

/**
 * The customer's address on a channel, as that channel's `addressOf` gives it, without building
 * the channel (recording a message does not need the mail transport): the e-mail address while
 * e-mail is configured (smtpTarget), none on a channel that cannot deliver.
 */
export function addressOn(
  env: Pick<Env, 'SMTP_URL' | 'usingSandbox' | 'SANDBOX_SMTP_PORT'>,
  channel: NotificationChannelName,
  user: Pick<User, 'email'>,
): string | null {
  return channel === 'email' && 'url' in smtpTarget(env) ? emailAddressOf(user) : null;
}
