import nodemailer from 'nodemailer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/capa';
import { decodeWords, parseMessage, type MailMessage } from './mail';
import { createSandbox, type Sandbox } from './server';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await createSandbox({ smtpPort: 0 });
});
afterAll(async () => {
  await sandbox?.close();
});
beforeEach(() => {
  sandbox.reset();
});

function transport() {
  return nodemailer.createTransport({ host: '127.0.0.1', port: sandbox.smtpPort!, secure: false, ignoreTLS: true });
}

async function mailJson(): Promise<MailMessage[]> {
  const res = await fetch(`${sandbox.url}/__sandbox/mail`);
  return ((await res.json()) as { messages: MailMessage[] }).messages;
}

describe('mail sink', () => {
  it('receives nodemailer mail over SMTP and exposes it as JSON and on the mailbox page', async () => {
    expect(sandbox.smtpPort).toBeGreaterThan(0);
    await transport().sendMail({
      from: 'KYC Desk <kyc@localhost>',
      to: 'Ana López <ana@example.mx>, ops@example.mx',
      subject: 'Verificación KYC pendiente ✓',
      text: 'Hola Ana,\nabre https://kyc.example/link/abc para continuar.\n',
      html: '<p>Hola Ana, <a href="https://kyc.example/link/abc">continúa aquí</a>.</p>',
    });
    const [m] = await waitFor(async () => {
      const list = await mailJson();
      return list.length ? list : null;
    }, 'one message in the sandbox mailbox');
    expect(m!.subject).toBe('Verificación KYC pendiente ✓');
    expect(m!.from).toBe('KYC Desk <kyc@localhost>');
    expect(m!.to).toEqual(['Ana López <ana@example.mx>', 'ops@example.mx']);
    expect(m!.envelope).toEqual({ from: 'kyc@localhost', to: ['ana@example.mx', 'ops@example.mx'] });
    expect(m!.text).toContain('abre https://kyc.example/link/abc para continuar.');
    expect(m!.html).toContain('<a href="https://kyc.example/link/abc">continúa aquí</a>');
    expect(Date.parse(m!.receivedAt)).not.toBeNaN();
    expect(sandbox.stats().mailReceived).toBe(1);

    const page = await (await fetch(`${sandbox.url}/__sandbox/mailbox`)).text();
    expect(page).toContain('Verificación KYC pendiente ✓');
    // Plain-text URLs become links; the HTML body is rendered in a sandboxed frame.
    expect(page).toContain('<a href="https://kyc.example/link/abc" target="_blank" rel="noopener">');
    expect(page).toContain('<iframe sandbox=');

    const del = await fetch(`${sandbox.url}/__sandbox/mail`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await mailJson()).toEqual([]);
  });

  it('accepts internationalised addresses over SMTPUTF8: the accented mailbox arrives as written', async () => {
    const info = await transport().sendMail({ from: 'kyc@localhost', to: 'sofía.392@exämple.mx', subject: 'Hola', text: 'x' });
    // The sink offers SMTPUTF8 and nodemailer used it; the domain travels as its A-label.
    expect((info as { ehlo?: string[] }).ehlo).toContain('SMTPUTF8');
    expect(info.accepted).toEqual(['sofía.392@xn--exmple-cua.mx']);
    const [m] = await waitFor(async () => {
      const list = await mailJson();
      return list.length ? list : null;
    }, 'the internationalised message in the mailbox');
    expect(m!.envelope.to).toEqual(['sofía.392@exämple.mx']);
    expect(m!.to).toEqual(['sofía.392@xn--exmple-cua.mx']);
  });

  it('a sandbox without smtpPort has no sink and says so', async () => {
    const plain = await createSandbox();
    try {
      expect(plain.smtpPort).toBeNull();
      const res = await (await fetch(`${plain.url}/__sandbox/mail`)).json();
      expect(res).toEqual({ smtpPort: null, messages: [] });
      expect(await (await fetch(`${plain.url}/__sandbox/mailbox`)).text()).toContain('not running');
    } finally {
      await plain.close();
    }
  });
});

describe('minimal MIME parsing', () => {
  it('decodes RFC 2047 words (Q and B, adjacent words joined)', () => {
    expect(decodeWords('=?UTF-8?Q?Verificaci=C3=B3n_KYC?=')).toBe('Verificación KYC');
    expect(decodeWords('=?utf-8?B?w7FhbmTDug==?= =?utf-8?Q?_ok?=')).toBe('ñandú ok');
    expect(decodeWords('plain subject')).toBe('plain subject');
  });

  it('reads quoted-printable and base64 parts of a multipart message, skipping attachments', () => {
    const raw = [
      'From: a@example.mx',
      'To: b@example.mx',
      'Subject: =?UTF-8?Q?Hola_se=C3=B1or?=',
      'Content-Type: multipart/mixed; boundary="outer"',
      '',
      '--outer',
      'Content-Type: multipart/alternative; boundary=inner',
      '',
      '--inner',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Se=C3=B1or, a long line that was =',
      'soft-wrapped.',
      '--inner',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('<p>Señor</p>').toString('base64'),
      '--inner--',
      '--outer',
      'Content-Type: text/plain',
      'Content-Disposition: attachment; filename="x.txt"',
      '',
      'attachment text',
      '--outer--',
      '',
    ].join('\r\n');
    const m = parseMessage(Buffer.from(raw, 'utf8'));
    expect(m.subject).toBe('Hola señor');
    expect(m.to).toEqual(['b@example.mx']);
    expect(m.text).toBe('Señor, a long line that was soft-wrapped.');
    expect(m.html).toBe('<p>Señor</p>');
  });
});
