import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitImport, findImport, importProgress } from '../../db/repositories/imports.js';
import { feedImport } from '../../jobs/imports/orchestration.js';
import { stageImport } from '../../jobs/imports/stage.js';
import { createTestRuntime, waitFor, type TestRuntime } from '../support/runtime.js';

describe('a 10k-row import to completion', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ env: { CAPA_RATE_LIMIT_PER_SEC: '2000', WORKER_CONCURRENCY: '32' } });
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('every row done, 10k Capa users, one link per asked row, no duplicate', { timeout: 600_000 }, async () => {
    const n = 10_000;
    const lines = ['externalUserId,email,type,country,sendLink'];
    for (let i = 1; i <= n; i++) lines.push(`tenk-${i},tenk.${i}@example.mx,INDIVIDUAL,MX,${i % 10 === 0 ? 'yes' : 'no'}`);
    async function* src() {
      yield Buffer.from(lines.join('\n'));
    }
    const staged = await stageImport(rt.db, {
      source: src(),
      fileName: '10k.csv',
      createdBy: null,
      limits: { maxBytes: 2e7, maxRows: 1e5 },
    });
    expect(staged).toMatchObject({ totalRows: n, validRows: n });
    expect(await commitImport(rt.db, staged.importId, null)).toBe(true);
    await feedImport({ db: rt.db, env: rt.env, enqueue: rt.queues }, staged.importId);
    await waitFor(async () => (await findImport(rt.db, staged.importId))?.status === 'completed', {
      timeoutMs: 580_000,
      intervalMs: 1000,
      what: '10k import completed',
    });
    expect(await importProgress(rt.db, staged.importId)).toMatchObject({ done: n, failed: 0, remaining: 0 });
    const s = rt.sandbox.stats();
    expect(s.usersCreated).toBe(n);
    expect(s.createUserCalls).toMatchObject({ total: n, duplicates: 0 });
    expect(s.linksGenerated).toBe(n / 10);
  });
});
