import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { CapaClient } from '../client';
import { verifySignature } from '../signature';
import { startReceiver, waitFor, type Receiver } from '../../test/support/capa';

// The CLI as `npm run sandbox` runs it (tsx capa/sandbox/main.ts), as a separate process.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tsx = path.join(root, 'node_modules/.bin/tsx');

let child: ChildProcess | undefined;
let receiver: Receiver | undefined;

afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  await receiver?.close();
  receiver = undefined;
});

function start(env: Record<string, string>) {
  const out = { stdout: '', stderr: '' };
  const proc = spawn(tsx, ['capa/sandbox/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (c: Buffer) => (out.stdout += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out.stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  child = proc;
  return { proc, out, exited };
}

describe('npm run sandbox (capa/sandbox/main.ts)', () => {
  it('serves the configured partner key, signs webhooks with the first secret, and exits 0 on SIGTERM', async () => {
    receiver = await startReceiver();
    const { proc, out, exited } = start({
      SANDBOX_PORT: '0',
      SANDBOX_SMTP_PORT: 'off',
      CAPA_API_KEY: 'cli-test-partner-key',
      CAPA_WEBHOOK_SECRET: 'first-secret-123,older-secret-456',
      SANDBOX_WEBHOOK_URL: receiver.url,
      SANDBOX_TIME_SCALE: '0.001',
    });
    const url = await waitFor(
      () => /listening on (http:\/\/\S+)/.exec(out.stdout)?.[1],
      `sandbox URL on stdout (stderr: ${out.stderr})`,
      20_000,
    );

    const capa = new CapaClient({ baseUrl: url, apiKey: 'cli-test-partner-key', maxRetries: 0 });
    const { userId } = await capa.createUser({ type: 'INDIVIDUAL', email: 'cli@example.mx', externalUserId: 'cli-1' });
    const res = await fetch(`${url}/__sandbox/users/${userId}/kyc-outcome`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"outcome":"VERIFIED"}',
    });
    expect(res.status).toBe(200);
    await waitFor(() => receiver!.received.length === 2, 'two webhooks from the CLI sandbox');
    for (const r of receiver.received) {
      expect(verifySignature(r.raw, r.headers['capa-signature'] as string, ['first-secret-123'])).toMatchObject({ ok: true });
    }
    // The default second partner exists for the ownership quirk.
    const other = new CapaClient({ baseUrl: url, apiKey: 'sandbox-other-partner-key', maxRetries: 0 });
    await expect(other.getKycDetails(userId)).rejects.toMatchObject({
      status: 401,
      capaMessage: 'User is not associated with the partner',
    });

    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out.stdout).toContain('SIGTERM: closing Capa sandbox');
  });

  it('refuses to start on a bad SANDBOX_TIME_SCALE and names the variable', async () => {
    const { out, exited } = start({ SANDBOX_PORT: '0', SANDBOX_SMTP_PORT: 'off', SANDBOX_TIME_SCALE: 'fast' });
    expect(await exited).toBe(78);
    expect(out.stderr).toContain('SANDBOX_TIME_SCALE');
  });
});
