import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderMetrics } from '../../app/metrics.server.js';
import { commitImport, createImport, pauseImport } from '../../db/repositories/imports.js';
import { ALERT_RULE_IDS } from '../../domain/alerts.js';
import { evaluateAlerts } from '../../jobs/alerts/engine.js';
import { logger } from '../../lib/logger.js';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';

/**
 * deploy/prometheus/alerts.yml: promtool checks it and runs its unit tests (alerts.test.yml); every
 * KYC Desk rule has its Prometheus twin; every metric the rules read is on /metrics. promtool comes
 * with Debian's `prometheus` package (.ci/run installs it): required in CI, skipped locally with a
 * notice when absent, like PostgreSQL.
 */
const run = promisify(execFile);
const DIR = path.resolve('deploy/prometheus');
const RULES = path.join(DIR, 'alerts.yml');

function findPromtool(): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'promtool');
    if (dir && existsSync(p)) return p;
  }
  return null;
}

const promtool = findPromtool();
if (!promtool && process.env.CI) {
  throw new Error('promtool is required in CI but is not on PATH: install Debian package `prometheus` (apt-get install -y prometheus)');
}
if (!promtool) console.warn('[notice] promtool not found (apt-get install prometheus): Prometheus rule tests skipped locally');

describe.runIf(promtool)('Prometheus alert rules (promtool)', () => {
  const promtoolRun = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(promtool!, args, { cwd: DIR });
      return { code: 0, out: stdout + stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  };

  it('are valid rules', async () => {
    const r = await promtoolRun('check', 'rules', 'alerts.yml');
    expect(r.out).toContain('SUCCESS: 9 rules found');
    expect(r.code, r.out).toBe(0);
  });

  it('pass their unit tests: each fires on its series, after its for-duration, and resolves after its delay', async () => {
    const r = await promtoolRun('test', 'rules', 'alerts.test.yml');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it('state every rule KYC Desk evaluates', () => {
    const text = readFileSync(RULES, 'utf8');
    const labelled = [...text.matchAll(/^\s+rule: ([a-z_.]+)$/gm)].map((m) => m[1]);
    expect(labelled.sort()).toEqual([...ALERT_RULE_IDS].sort());
  });
});

describe('/metrics exports what the Prometheus rules read', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: true });
    const id = await createImport(rt.db, { fileName: 'm.csv', fileSha256: randomUUID(), fileBytes: 1, delimiter: ',', createdBy: null });
    await commitImport(rt.db, id, null);
    await pauseImport(rt.db, id, 'outage', 'Capa is not answering');
    await evaluateAlerts({ db: rt.db, queues: rt.queues, env: rt.env, logger }, { rules: ['imports.paused'] });
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('every metric named in alerts.yml, with the values the rules compare', async () => {
    const { body } = await renderMetrics();
    const used = [...new Set([...readFileSync(RULES, 'utf8').matchAll(/\bkyc_[a-z_]+/g)].map((m) => m[0]))];
    expect(used.length).toBeGreaterThan(8);
    for (const name of used) expect(body, `${name} on /metrics`).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    expect(body).toMatch(/^kyc_imports_paused\{kind="outage"\} 1$/m);
    expect(body).toMatch(/^kyc_imports_paused\{kind="operator"\} 0$/m);
    expect(body).toMatch(/^kyc_alerts_open\{rule="imports.paused",severity="warning",state="firing"\} 1$/m);
    expect(body).toMatch(/^kyc_queue_workers\{queue="webhooks"\} [1-9]/m);
    expect(body).toMatch(/^kyc_queue_oldest_waiting_seconds\{queue="capa"\} \d+$/m);
    expect(body).toMatch(/^kyc_webhook_last_valid_timestamp_seconds 0$/m);
  });
});
