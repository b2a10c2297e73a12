import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertMessage } from '../../db/repositories/notifications.js';
import { randomUUID } from 'node:crypto';
import { createOperator } from '../../app/operator-accounts.server.js';
import { applySignal, insertUser, markCapaCreated } from '../../db/repositories/users.js';
import { loader as userPage } from '../../app/routes/users.$id';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { call, get, signInAs } from './console-helpers.js';
import { createConsoleI18n } from '../../app/i18n';

const english = createConsoleI18n('en');

/** The user page's one timeline includes the messages ledger. */
describe('user timeline sources', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await createTestRuntime({ worker: false });
  });
  afterAll(async () => {
    await rt?.close();
  });

  it('shows messages sent to the customer, masked for viewers', async () => {
    const u = await insertUser(rt.db, { email: 'timeline.msg@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    await insertMessage(rt.db, {
      userId: u.id,
      kind: 'kyc_link',
      channel: 'email',
      locale: 'es',
      address: u.email,
      dedupeKey: `tl-${u.id}`,
      linkUrl: 'https://kyc.example/s/abc',
    });
    const compliance = await signInAs(rt.db, 'compliance');
    const res = await call(userPage, get(`/users/${u.id}`, compliance), { id: u.id });
    type Said = string | { code: string; values?: Record<string, unknown> };
    const say = (m: Said) => (typeof m === 'string' ? m : english.t(m.code, m.values ?? {}));
    type Entry = { kind: string; title: Said; facts?: Array<[Said, Said]> };
    const messages = (res.data.timeline as Entry[]).filter((e) => e.kind === 'message');
    expect(messages).toHaveLength(1);
    expect(say(messages[0]!.title)).toBe('E-mail “Verification link” — queued');
    expect(messages[0]!.facts?.map(([k, v]) => [say(k), say(v)])).toContainEqual(['to', 'timeline.msg@example.mx']);
    const viewer = await signInAs(rt.db, 'viewer');
    const masked = await call(userPage, get(`/users/${u.id}`, viewer), { id: u.id });
    const m = (masked.data.timeline as Entry[]).find((e) => e.kind === 'message');
    expect(m?.facts?.map(([k, v]) => [say(k), say(v)]).find(([k]) => k === 'to')?.[1]).not.toBe('timeline.msg@example.mx');
  });

  it('names the operator behind a state change and links the webhook delivery that caused one', async () => {
    const u = await insertUser(rt.db, { email: 'timeline.by@example.mx', type: 'INDIVIDUAL', country: 'MX' });
    await markCapaCreated(rt.db, u.id, randomUUID());
    const op = await createOperator(rt.db, {
      email: 'ana.by@desk.test',
      name: 'Ana Analyst',
      role: 'compliance',
      password: 'ana-password-1',
    });
    await rt.db.transaction().execute(async (trx) => {
      await applySignal(trx, u.id, { kind: 'LINK_ISSUED' }, { type: 'operator', id: op.id, reason: 'link generated' });
      await applySignal(trx, u.id, { kind: 'WEBHOOK', event: 'CREATED_KYC' }, { type: 'webhook', id: '7', reason: 'CREATED_KYC' });
    });
    const viewer = await signInAs(rt.db, 'viewer');
    const res = await call(userPage, get(`/users/${u.id}`, viewer), { id: u.id });
    type Said = string | { code: string; values?: Record<string, unknown> };
    const say = (m: Said) => (typeof m === 'string' ? m : english.t(m.code, m.values ?? {}));
    const by = (res.data.timeline as Array<{ kind: string; title: Said; facts?: Array<[Said, Said, string?]> }>)
      .filter((e) => e.kind === 'state')
      .map((e) => [say(e.title), e.facts?.map(([k, v, href]) => [say(k), say(v), href]).find(([k]) => k === 'by')]);
    expect(by).toEqual([
      ['State Link issued → In progress', ['by', 'webhook delivery #7', '/webhooks/7']],
      ['State Not started → Link issued', ['by', 'Ana Analyst', undefined]],
    ]);
    // A Spanish reader gets the same entries in Spanish.
    const spanish = createConsoleI18n('es');
    const first = (res.data.timeline as Array<{ kind: string; title: { code: string; values?: Record<string, unknown> } }>).find(
      (e) => e.kind === 'state',
    )!;
    expect(spanish.t(first.title.code, first.title.values ?? {})).toBe('Estado Enlace enviado → En proceso');
  });
});
