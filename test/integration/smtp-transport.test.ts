import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmailChannel } from '../../jobs/notifications/transports.js';
import { startTestSmtp, type TestSmtp } from '../support/smtp.js';

const message = (i: number) => ({
  id: `m-${i}`,
  to: `customer${i}@example.mx`,
  rendered: { subject: `Hola ${i}`, text: 'Tu enlace', html: '<p>Tu enlace</p>', short: 'Tu enlace' },
  locale: 'es' as const,
  tags: { 'X-KYC-Desk-Notification': `m-${i}` },
});

/**
 * The e-mail channel's SMTP transport keeps the options it is given: a pool of connections reused
 * for many messages, and its own timeouts (nodemailer used to drop both when given a URL, and
 * opened a connection per message).
 */
describe('e-mail channel transport', () => {
  let smtp: TestSmtp;
  let connections = 0;
  let counter: net.Server;
  let counterPort = 0;
  beforeAll(async () => {
    smtp = await startTestSmtp();
    // A TCP relay in front of the SMTP server that counts the connections made to it.
    counter = net.createServer((c) => {
      connections++;
      const upstream = net.connect(smtp.port, '127.0.0.1');
      c.pipe(upstream).pipe(c);
      c.on('error', () => upstream.destroy());
      upstream.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => counter.listen(0, '127.0.0.1', r));
    counterPort = (counter.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    counter?.close();
    await smtp?.close();
  });

  it('sends many messages over a few pooled connections', async () => {
    const channel = new EmailChannel({ url: `smtp://127.0.0.1:${counterPort}`, from: 'KYC Desk <kyc@desk.example>', pool: true });
    try {
      await Promise.all(Array.from({ length: 24 }, (_, i) => channel.send(message(i))));
    } finally {
      await channel.close();
    }
    expect(new Set(smtp.received.map((m) => m.headers['x-kyc-desk-notification'])).size).toBe(24);
    expect(connections).toBeGreaterThan(0);
    expect(connections).toBeLessThanOrEqual(4);
  });

  it('refused connections do not use up the pool: once the server is back, messages leave', async () => {
    const channel = new EmailChannel({ url: smtp.url, from: 'KYC Desk <kyc@desk.example>', pool: true, timeoutMs: 2000 });
    try {
      await smtp.stop();
      const refused = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => channel.send(message(100 + i))));
      expect(refused.every((r) => r.status === 'rejected')).toBe(true);
      await smtp.start();
      await expect(channel.send(message(200))).resolves.toMatchObject({ providerMessageId: expect.any(String) });
    } finally {
      await channel.close();
    }
  });

  // nodemailer's own greeting timeout is 30 s, past this test's limit: the send fails in time only
  // if the channel's timeout reached the transport.
  it('a server that never greets fails the send with the channel timeout', { timeout: 10_000 }, async () => {
    const mute = net.createServer(() => {
      /* accepts and says nothing */
    });
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const port = (mute.address() as net.AddressInfo).port;
    const channel = new EmailChannel({ url: `smtp://127.0.0.1:${port}`, from: 'KYC Desk <kyc@desk.example>', pool: true, timeoutMs: 300 });
    try {
      await expect(channel.send(message(300))).rejects.toThrow(/greeting|timeout/i);
    } finally {
      await channel.close();
      mute.close();
    }
  });
});
