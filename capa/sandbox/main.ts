/**
 * `npm run sandbox` — the local Capa on SANDBOX_PORT.
 *
 * Env (validated through the one schema in lib/config.ts):
 *   SANDBOX_PORT          listening port (0 = any free port)
 *   CAPA_API_KEY          the partner key the sandbox accepts (a second, foreign partner
 *                         "sandbox-other-partner-key" always exists for the 401-ownership quirk)
 *   CAPA_WEBHOOK_SECRET   first entry signs webhooks (later entries are the receiver's rotation list)
 *   PUBLIC_URL            the dashboard's URL; webhooks go to `${PUBLIC_URL}/webhooks/capa`
 * Sandbox-only extras (read here because they are not part of the app's schema):
 *   SANDBOX_WEBHOOK_URL   overrides the webhook URL; "none" starts without one (events NOT_SENT)
 *   SANDBOX_TIME_SCALE    multiplies Capa's webhook retry schedule (e.g. 0.01)
 *   SANDBOX_PUBLIC_URL    base of kycLink/media URLs when the sandbox is reached via another host
 *   SANDBOX_SMTP_PORT     mail sink port; default: the port of SMTP_URL when it points at
 *                         localhost, else 2525; "off" disables it
 *   SANDBOX_HOST          bind address (default 127.0.0.1)
 */
import { env } from '../../lib/config';
import { createSandbox } from './server';

function fail(message: string): never {
  console.error(`Invalid configuration:\n  - ${message}`);
  process.exit(78); // EX_CONFIG, like lib/config.ts
}

function optionalNumber(name: string, check: (n: number) => boolean, what: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || !check(n)) fail(`${name}: must be ${what}`);
  return n;
}

const e = env();

const timeScale = optionalNumber('SANDBOX_TIME_SCALE', (n) => n > 0, 'a number > 0');
/** Default mail-sink port: the port of a local SMTP_URL (so the app's mail lands here), else 2525. */
function defaultSmtpPort(): number {
  try {
    const u = new URL(e.SMTP_URL ?? '');
    if (/^smtps?:$/.test(u.protocol) && ['localhost', '127.0.0.1'].includes(u.hostname) && u.port) return Number(u.port);
  } catch {
    // not a URL: fall through
  }
  return 2525;
}
const rawSmtp = process.env.SANDBOX_SMTP_PORT;
const smtpPort =
  rawSmtp === 'off'
    ? null
    : (optionalNumber('SANDBOX_SMTP_PORT', (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'an integer port or "off"') ??
      defaultSmtpPort());

let webhookUrl: string | null = `${e.publicUrl}/webhooks/capa`;
const rawWebhook = process.env.SANDBOX_WEBHOOK_URL;
if (rawWebhook === 'none') webhookUrl = null;
else if (rawWebhook) {
  try {
    new URL(rawWebhook);
  } catch {
    fail('SANDBOX_WEBHOOK_URL: must be a URL or "none"');
  }
  webhookUrl = rawWebhook;
}

const rawPublic = process.env.SANDBOX_PUBLIC_URL;
if (rawPublic) {
  try {
    new URL(rawPublic);
  } catch {
    fail('SANDBOX_PUBLIC_URL: must be a URL');
  }
}

const sandbox = await createSandbox({
  port: e.SANDBOX_PORT,
  host: process.env.SANDBOX_HOST || '127.0.0.1',
  publicUrl: rawPublic || undefined,
  timeScale,
  smtpPort,
  partners: [
    { apiKey: e.CAPA_API_KEY, webhookSecret: e.CAPA_WEBHOOK_SECRET[0]!, webhookUrl },
    ...(e.CAPA_API_KEY === 'sandbox-other-partner-key'
      ? []
      : [{ apiKey: 'sandbox-other-partner-key', webhookSecret: 'sandbox-other-webhook-secret' }]),
  ],
}).catch((err: unknown) => {
  console.error(`Capa sandbox could not start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

console.log(`Capa sandbox listening on ${sandbox.url}`);
console.log(`  partner-api-key: ${e.CAPA_API_KEY}`);
console.log(`  webhooks → ${webhookUrl ?? '(none: events are recorded NOT_SENT)'}${timeScale ? ` (retry schedule × ${timeScale})` : ''}`);
console.log(
  `  mailbox: ${sandbox.url}/__sandbox/mailbox${sandbox.smtpPort !== null ? ` (SMTP on port ${sandbox.smtpPort})` : ' (mail sink off)'}`,
);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) {
    console.error(`${signal} again: exiting now`);
    process.exit(1);
  }
  stopping = true;
  console.log(`${signal}: closing Capa sandbox`);
  const hard = setTimeout(() => process.exit(1), 5_000);
  hard.unref();
  await sandbox.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
