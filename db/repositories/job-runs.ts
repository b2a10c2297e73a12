import type { JobRun } from '../schema.js';
import { nowIso } from '../../lib/time.js';
import type { Executor } from '../client.js';

export async function recordJobStart(
  db: Executor,
  input: { userId: string | null; jobName: string; jobId: string; attempt: number },
): Promise<number> {
  const r = await db
    .insertInto('jobRuns')
    .values({ ...input, status: 'running', error: null, result: null, startedAt: nowIso(), finishedAt: null })
    .returning('id')
    .executeTakeFirstOrThrow();
  return r.id;
}

export async function recordJobEnd(
  db: Executor,
  id: number,
  status: 'completed' | 'failed' | 'retrying',
  outcome: { error?: string | null; result?: unknown; userId?: string | null },
): Promise<void> {
  await db
    .updateTable('jobRuns')
    .set({
      status,
      error: outcome.error ?? null,
      result: outcome.result === undefined ? null : JSON.stringify(outcome.result),
      finishedAt: nowIso(),
      ...(outcome.userId ? { userId: outcome.userId } : {}),
    })
    .where('id', '=', id)
    .execute();
}

export async function jobRunsForUser(db: Executor, userId: string, limit = 200): Promise<JobRun[]> {
  return db.selectFrom('jobRuns').selectAll().where('userId', '=', userId).orderBy('id', 'desc').limit(limit).execute();
}
