import net from 'node:net';
import nodemailer, { type Transporter } from 'nodemailer';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { NotificationChannelName, User } from '../../db/schema.js';
import { needsSmtpUtf8 } from '../../domain/email.js';
import type { Env } from '../../lib/config.js';
import {
  ChannelError,
  checkEmailAddress,
  classifySmtpError,
  emailAddressOf,
  smtpTarget,
  UnavailableChannel,
  type Channel,
  type DeliveryReceipt,
  type OutboundMessage,
} from './channel.js';

/**
 * The channels that deliver (e-mail over SMTP with nodemailer). Only the send job builds them;
 * whoever records a message needs channel.ts alone.
 */

export interface EmailChannelOptions {
  /** smtp://, smtps:// URL (nodemailer syntax; credentials allowed). */
  url: string;
  from: string;
  /** Pooled connections (the worker); off for one-off sends. */
  pool?: boolean;
  timeoutMs?: number;
}

/**
 * nodemailer's getSocket hook: the TCP connection to the SMTP server, opened by us with Nagle's
 * algorithm off. With it on, the line that ends a message's data (".") waits for the server to
 * acknowledge the body, and servers delay that acknowledgement: about 40 ms lost per message on
 * each connection (measured: 46 → 4 ms per message to a local server). nodemailer has no option
 * for it. The socket is handed over while it connects: nodemailer then meets a refused or failed
 * connection as it meets its own (an error from this hook would leave its pool one connection
 * short for good), and does the rest as before (TLS for smtps://, STARTTLS, the SMTP dialogue,
 * its connection and greeting timeouts).
 */
function connectWithoutDelay(
  o: { host?: string; port?: number | string; secure?: boolean },
  callback: (err: Error | null, socketOptions?: { connection: net.Socket }) => void,
): void {
  const port = Number(o.port) || (o.secure ? 465 : 587);
  callback(null, { connection: net.connect({ host: o.host ?? 'localhost', port, noDelay: true }) });
}

export class EmailChannel implements Channel {
  readonly name = 'email' as const;
  private readonly transport: Transporter;
  private readonly domain: string;

  constructor(private readonly opts: EmailChannelOptions) {
    const timeout = opts.timeoutMs ?? 15_000;
    // The transports themselves take the URL with the other options. Given to createTransport,
    // a `url` replaces every other option: the pool, its size and the timeouts were dropped, and
    // each message opened (and closed) an SMTP connection of its own.
    const options = {
      url: opts.url,
      maxConnections: 4,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout * 2,
      getSocket: connectWithoutDelay,
    };
    this.transport = nodemailer.createTransport(
      (opts.pool ?? true)
        ? new SMTPPool(options as unknown as SMTPPool.Options)
        : new SMTPTransport(options as unknown as SMTPTransport.Options),
    );
    const m = /@([^>\s]+)>?\s*$/.exec(opts.from);
    this.domain = m?.[1] ?? 'kyc-desk.local';
  }

  addressOf(user: Pick<User, 'email'>): string | null {
    return emailAddressOf(user);
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
      return {
        providerMessageId: info.messageId ?? messageId,
        response: typeof info.response === 'string' ? info.response.slice(0, 300) : null,
      };
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

export type Channels = ReadonlyMap<NotificationChannelName, Channel>;

export function createChannels(
  env: Pick<Env, 'SMTP_URL' | 'usingSandbox' | 'SANDBOX_SMTP_PORT' | 'MAIL_FROM'>,
  opts: { pool?: boolean } = {},
): Channels {
  const target = smtpTarget(env);
  const email: Channel =
    'url' in target
      ? new EmailChannel({ url: target.url, from: env.MAIL_FROM, pool: opts.pool ?? true })
      : new UnavailableChannel('email', target.unavailable);
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
