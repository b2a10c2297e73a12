import { randomUUID } from 'node:crypto';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';
import type { KycState, RetentionRun } from '../schema.js';

/** The retention job's runs and the erasures each made (the report /audit/retention shows). */

export type StateCounts = Partial<Record<KycState, number>>;

export async function startRetentionRun(db: Executor, input: { jobId: string | null; policy: Record<KycState, number> }): Promise<string> {
  const id = randomUUID();
  await db
    .insertInto('retentionRuns')
    .values({ id, jobId: input.jobId, startedAt: nowIso(), policy: JSON.stringify(input.policy) })
    .execute();
  return id;
}

export async function finishRetentionRun(
  db: Executor,
  id: string,
  counts: { erased: StateCounts; held: StateCounts; failed: number },
): Promise<void> {
  await db
    .updateTable('retentionRuns')
    .set({ finishedAt: nowIso(), erased: JSON.stringify(counts.erased), held: JSON.stringify(counts.held), failed: counts.failed })
    .where('id', '=', id)
    .execute();
}

/** The latest runs, newest first. */
export async function listRetentionRuns(db: Executor, limit: number): Promise<RetentionRun[]> {
  return db.selectFrom('retentionRuns').selectAll().orderBy('startedAt', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

/** The customers each of `runIds` erased (ids only: the rows are tombstones), at most `limit` per run. */
export async function erasuresOfRuns(
  db: Executor,
  runIds: string[],
  limit: number,
): Promise<Map<string, Array<{ userId: string; at: string; reason: string }>>> {
  const out = new Map<string, Array<{ userId: string; at: string; reason: string }>>();
  for (const runId of runIds) {
    const rows = await db
      .selectFrom('erasures')
      .select(['userId', 'at', 'reason'])
      .where('runId', '=', runId)
      .orderBy('at', 'asc')
      .limit(limit)
      .execute();
    out.set(runId, rows);
  }
  return out;
}
