import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { action as caseAction, loader as caseLoader } from '../../app/routes/review.$userId';
import { action as queueAction, loader as queueLoader } from '../../app/routes/review._index';
import { buildTimeline } from '../../app/timeline.server';
import { caseEventsForUser } from '../../app/review/cases.server.js';
import { getFixedT } from '../../app/i18n.js';
import { findUserById, insertUser } from '../../db/repositories/users.js';
import { createTestDb, createTestRuntime, postgresAvailable, type TestDb, type TestRuntime } from '../support/runtime.js';
import { call, get, post, signInAs, type Browser } from './console-helpers.js';

/** A message (code and values) as an English or Spanish reader sees it. */
const en = getFixedT('en');
const es = getFixedT('es');
type Msg = { code: string; values?: Record<string, string | number> };
const words = (m: Msg | string | null | undefined, t = en) => (m == null ? '' : typeof m === 'string' ? m : t(m.code, m.values ?? {}));

/** Case work through the real route modules with real Requests (session cookie + CSRF). */
let rt: TestRuntime;
let compliance: Browser & { operatorId: string; email: string };
let other: Browser & { operatorId: string; email: string };
let viewer: Browser & { operatorId: string; email: string };

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  [compliance, other, viewer] = await Promise.all([
    signInAs(rt.db, 'compliance'),
    signInAs(rt.db, 'compliance'),
    signInAs(rt.db, 'viewer'),
  ]);
});
afterAll(async () => {
  await rt?.close();
});

async function reviewCustomer(email: string, state: 'REVIEW_NEEDED' | 'REJECTED' = 'REVIEW_NEEDED') {
  const u = await insertUser(rt.db, { email, type: 'INDIVIDUAL', country: 'MX' });
  await rt.db
    .updateTable('users')
    .set({ kycState: state, kycStateChangedAt: new Date(Date.now() - 3_600_000).toISOString() })
    .where('id', '=', u.id)
    .execute();
  return u.id;
}

const auditFor = (userId: string, action: string) =>
  rt.db.selectFrom('auditLog').selectAll().where('targetId', '=', userId).where('action', '=', action).orderBy('id', 'asc').execute();

describe('role rules', () => {
  it('a viewer can read the queue and a case but cannot claim, assign, note, add tasks or resolve (403, audited, nothing written)', async () => {
    const id = await reviewCustomer('viewer-case@example.mx');
    const q = await call(queueLoader, get('/review', viewer));
    expect(q.status).toBe(200);
    expect(q.data.canWork).toBe(false);
    const row = q.data.rows.find((r: { userId: string }) => r.userId === id);
    expect(row.email).not.toBe('viewer-case@example.mx'); // masked for viewers
    const page = await call(caseLoader, get(`/review/${id}`, viewer), { userId: id });
    expect(page.status).toBe(200);

    const tries = [
      () => call(queueAction, post('/review', viewer, {})),
      () => call(caseAction, post(`/review/${id}`, viewer, { intent: 'assign', assignee: 'me' }), { userId: id }),
      () => call(caseAction, post(`/review/${id}`, viewer, { intent: 'note', body: 'I should not be able to write this' }), { userId: id }),
      () => call(caseAction, post(`/review/${id}`, viewer, { intent: 'task', title: 'x', dueOn: '2026-12-01' }), { userId: id }),
      () => call(caseAction, post(`/review/${id}`, viewer, { intent: 'status', status: 'resolved', reason: 'duplicate' }), { userId: id }),
    ];
    for (const t of tries) {
      const r = await t();
      expect(r.status).toBe(403);
      expect(String(r.data)).toMatch(/viewer/);
    }
    const u = await findUserById(rt.db, id);
    expect(u?.assigneeId).toBeNull();
    expect(await rt.db.selectFrom('caseNotes').selectAll().where('userId', '=', id).execute()).toEqual([]);
    expect(await rt.db.selectFrom('caseTasks').selectAll().where('userId', '=', id).execute()).toEqual([]);
    expect(await rt.db.selectFrom('reviewCases').selectAll().where('userId', '=', id).execute()).toEqual([]);
    const denied = await rt.db
      .selectFrom('auditLog')
      .selectAll()
      .where('operatorId', '=', viewer.operatorId)
      .where('outcome', '=', 'denied')
      .execute();
    expect(denied.length).toBeGreaterThanOrEqual(tries.length);
  });

  it('a forged form (no CSRF token) from a compliance operator is refused too', async () => {
    const id = await reviewCustomer('csrf-case@example.mx');
    const r = await call(caseAction, post(`/review/${id}`, compliance, { intent: 'note', body: 'forged' }, { csrf: null }), { userId: id });
    expect(r.status).toBe(403);
    expect(await rt.db.selectFrom('caseNotes').selectAll().where('userId', '=', id).execute()).toEqual([]);
  });
});

describe('case work', () => {
  it('claim → note → task → resolve: each step recorded, audited and on the customer timeline', async () => {
    const id = await reviewCustomer('flow-case@example.mx', 'REJECTED');
    // Claim next gives the oldest unassigned case (this one is the only unassigned one left after earlier tests claim nothing).
    await rt.db.updateTable('users').set({ kycStateChangedAt: '2020-01-01T00:00:00.000Z' }).where('id', '=', id).execute();
    const claimed = await call(queueAction, post('/review', compliance, {}));
    expect(claimed.status).toBe(302);
    expect(claimed.location).toBe(`/review/${id}?flash=claimed`);
    expect((await findUserById(rt.db, id))?.assigneeId).toBe(compliance.operatorId);
    expect(await auditFor(id, 'case.claim')).toHaveLength(1);

    const note = await call(
      caseAction,
      post(`/review/${id}`, compliance, { intent: 'note', body: '  Called the customer; will resend the link.  ' }),
      { userId: id },
    );
    expect(note).toMatchObject({ status: 200, data: { tone: 'ok' } });
    const empty = await call(caseAction, post(`/review/${id}`, compliance, { intent: 'note', body: '   ' }), { userId: id });
    expect(empty.status).toBe(400);
    expect(empty.data).toMatchObject({ tone: 'error', code: 'review:errors.note_empty' });
    expect(words(empty.data)).toMatch(/Write the note/);
    const badDate = await call(caseAction, post(`/review/${id}`, compliance, { intent: 'task', title: 'Chase', dueOn: '2026-02-30' }), {
      userId: id,
    });
    expect(badDate.status).toBe(400);
    expect(badDate.data.code).toBe('review:errors.task_due_invalid');
    expect(words(badDate.data)).toMatch(/real date/);
    const task = await call(
      caseAction,
      post(`/review/${id}`, compliance, { intent: 'task', title: 'Chase the customer', dueOn: '2026-12-01' }),
      { userId: id },
    );
    expect(task.status).toBe(200);
    const noReason = await call(caseAction, post(`/review/${id}`, compliance, { intent: 'status', status: 'resolved' }), { userId: id });
    expect(noReason.status).toBe(400);
    expect(noReason.data.code).toBe('review:errors.reason_missing');
    expect(words(noReason.data)).toMatch(/resolution reason/);
    const other_ = await call(caseAction, post(`/review/${id}`, compliance, { intent: 'status', status: 'resolved', reason: 'other' }), {
      userId: id,
    });
    expect(other_.data.code).toBe('review:errors.reason_other_unexplained');
    expect(words(other_.data)).toMatch(/Explain/);
    const done = await call(
      caseAction,
      post(`/review/${id}`, compliance, { intent: 'status', status: 'resolved', reason: 'customer_retried', comment: 'New link sent' }),
      { userId: id },
    );
    expect(done).toMatchObject({ status: 200, data: { tone: 'ok', code: 'review:messages.resolved' } });
    expect(words(done.data)).toBe('Case resolved.');
    expect(words(done.data, es)).toBe('Caso resuelto.');

    const page = await call(caseLoader, get(`/review/${id}`, compliance), { userId: id });
    expect(page.data.caseStatus).toBe('resolved');
    expect(page.data.case.resolutionReason).toBe('customer_retried');
    expect(page.data.notes.map((n: { body: string; author: string }) => [n.body, n.author])).toEqual([
      ['Called the customer; will resend the link.', compliance.email],
    ]);
    expect(page.data.tasks).toHaveLength(1);
    // Viewers see that a note exists, not its text.
    const vpage = await call(caseLoader, get(`/review/${id}`, viewer), { userId: id });
    expect(vpage.data.notes[0].body).toBeNull();
    expect(JSON.stringify(vpage.data)).not.toContain('Called the customer');

    const events = await caseEventsForUser(rt.db, id);
    expect(events.map((e) => e.kind).sort()).toEqual(['assignment', 'note', 'status', 'status', 'task']);
    expect(words(events.find((e) => e.kind === 'assignment')!.title)).toBe(`Case claimed by ${compliance.email}`);
    const resolved = events.find((e) => e.resolved)!;
    expect(words(resolved.title)).toBe('Case resolved');
    expect(words(resolved.detail)).toBe('Customer verified again — New link sent');
    expect(words(resolved.title, es)).toBe('Caso resuelto');
    expect(words(resolved.detail, es)).toBe('El cliente se verificó de nuevo — New link sent');
    expect(events.every((e) => e.actor === compliance.email)).toBe(true);

    // The user page's timeline includes the case entries (registered timeline source).
    const user = (await findUserById(rt.db, id))!;
    const timeline = await buildTimeline({ db: rt.db, user, canSeePii: true });
    expect(
      timeline
        .filter((e) => e.kind.startsWith('case.'))
        .map((e) => e.kind)
        .sort(),
    ).toEqual(['case.assignment', 'case.note', 'case.status', 'case.status', 'case.task']);

    // Refused attempts are audited as errors; successes as ok.
    expect((await auditFor(id, 'case.resolve')).map((a) => a.outcome)).toEqual(['error', 'error', 'ok']);
    expect((await auditFor(id, 'case.note')).map((a) => a.outcome)).toEqual(['ok', 'error']);
    // Resolved: no longer in the queue.
    const q = await call(queueLoader, get('/review', compliance));
    expect(q.data.rows.map((r: { userId: string }) => r.userId)).not.toContain(id);
  });

  it('assign to someone, the mine / unassigned filters, and refusing a viewer as assignee', async () => {
    const id = await reviewCustomer('assign-case@example.mx');
    const r = await call(caseAction, post(`/review/${id}`, compliance, { intent: 'assign', assignee: other.operatorId }), { userId: id });
    expect(r.status).toBe(200);
    const mine = await call(queueLoader, get('/review?mine=1', other));
    expect(mine.data.rows.map((x: { userId: string }) => x.userId)).toContain(id);
    const un = await call(queueLoader, get('/review?unassigned=1', other));
    expect(un.data.rows.map((x: { userId: string }) => x.userId)).not.toContain(id);
    const toViewer = await call(caseAction, post(`/review/${id}`, compliance, { intent: 'assign', assignee: viewer.operatorId }), {
      userId: id,
    });
    expect(toViewer.status).toBe(400);
    expect(toViewer.data).toMatchObject({ code: 'review:errors.assignee_viewer', values: { email: viewer.email } });
    expect(words(toViewer.data)).toMatch(/viewer and cannot work cases/);
    expect((await findUserById(rt.db, id))?.assigneeId).toBe(other.operatorId);
    const unknown = await call(caseAction, post('/review/nope', compliance, { intent: 'note', body: 'x' }), { userId: 'nope' });
    expect(unknown.status).toBe(404);
    const bogus = await call(caseAction, post(`/review/${id}`, compliance, { intent: 'explode' }), { userId: id });
    expect(bogus.status).toBe(400);
    expect(bogus.data.code).toBe('review:errors.unknown_action');
    expect(words(bogus.data)).toBe('Unknown case action.');
  });
});

const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');
for (const kind of kinds) {
  describe(`case history is append-only on ${kind}`, () => {
    let t: TestDb;
    beforeAll(async () => {
      t = await createTestDb(kind);
    });
    afterAll(async () => {
      await t?.close();
    });
    it('notes and case events refuse UPDATE and DELETE', async () => {
      const u = await insertUser(t.db, { email: 'ao@example.mx', type: 'INDIVIDUAL' });
      await t.db
        .insertInto('caseNotes')
        .values({ userId: u.id, at: new Date().toISOString(), authorId: null, author: 'a@x', body: 'original' })
        .execute();
      await t.db
        .insertInto('caseEvents')
        .values({ userId: u.id, at: new Date().toISOString(), actorId: null, actor: 'a@x', kind: 'claimed', detail: null })
        .execute();
      await expect(sql`update case_notes set body = 'rewritten'`.execute(t.db)).rejects.toThrow(/append-only/);
      await expect(sql`delete from case_notes`.execute(t.db)).rejects.toThrow(/append-only/);
      await expect(sql`update case_events set actor = 'someone else'`.execute(t.db)).rejects.toThrow(/append-only/);
      await expect(sql`delete from case_events`.execute(t.db)).rejects.toThrow(/append-only/);
      const n = await t.db.selectFrom('caseNotes').select('body').where('userId', '=', u.id).execute();
      expect(n).toEqual([{ body: 'original' }]);
    });
  });
}
