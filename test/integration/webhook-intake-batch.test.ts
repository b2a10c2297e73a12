import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../capa/signature.js';
import { createTestRuntime, postgresAvailable, WEBHOOK_SECRET, type TestRuntime } from '../support/runtime.js';

const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

/**
 * The intake stores the deliveries that arrive together in one transaction (one INSERT when none
 * can be a duplicate). Sent all at once, each delivery must still get its own row and id, and
 * copies — of each other in the same batch, or of a delivery stored earlier — must still be
 * recorded as duplicates of the right original.
 */
for (const kind of kinds) {
  describe(`deliveries arriving together at the intake (${kind})`, () => {
    let rt: TestRuntime;
    beforeAll(async () => {
      rt = await createTestRuntime({ dbKind: kind, worker: false });
    });
    afterAll(async () => {
      await rt?.close();
    });

    const post = async (body: string) => {
      const r = await fetch(rt.intakeUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'capa-signature': signBody(body, WEBHOOK_SECRET) },
        body,
      });
      expect(r.status).toBe(200);
      return (await r.json()) as { id: number; status: string; duplicateOf?: number };
    };
    const body = (user: string, event = 'CREATED_KYC') => JSON.stringify({ type: 'KYC', event, externalUserId: user });

    it('each delivery gets its own row; copies in the same batch and of earlier ones are duplicates of the right original', async () => {
      const earlier = await post(body(`${kind}-earlier`));
      // Among them, events the intake itself settles as ignored (their rows name more columns).
      const distinct = Array.from({ length: 40 }, (_, i) =>
        i % 5 === 4
          ? JSON.stringify({ type: 'TRANSACTION', event: 'COMPLETED', externalUserId: `${kind}-tx-${i}` })
          : body(`${kind}-new-${i}`, i % 2 ? 'CREATED_KYC' : 'REVIEW_NEEDED_KYC'),
      );
      const pairs = Array.from({ length: 5 }, (_, i) => body(`${kind}-pair-${i}`));
      const sent = [...distinct, ...pairs, ...pairs, body(`${kind}-earlier`)];
      // New deliveries only (stored by one INSERT per batch), then copies (one at a time).
      const answers = [...(await Promise.all(distinct.map(post))), ...(await Promise.all(sent.slice(distinct.length).map(post)))];

      // Every answer names the row holding exactly the body sent.
      const rows = await rt.db.selectFrom('webhookInbox').selectAll().execute();
      const byId = new Map(rows.map((r) => [r.id, r]));
      answers.forEach((a, i) => expect(byId.get(a.id)?.rawBody).toBe(sent[i]));
      expect(new Set(answers.map((a) => a.id)).size).toBe(sent.length);

      answers.slice(0, distinct.length).forEach((a, i) => expect(a).toMatchObject({ status: i % 5 === 4 ? 'ignored' : 'received' }));
      for (let i = 0; i < pairs.length; i++) {
        const [x, y] = [answers[distinct.length + i]!, answers[distinct.length + pairs.length + i]!];
        const [original, copy] = x.id < y.id ? [x, y] : [y, x];
        expect(original.status).toBe('received');
        expect(copy).toMatchObject({ status: 'ignored', duplicateOf: original.id });
        expect(byId.get(copy.id)).toMatchObject({ duplicateOf: original.id, effect: 'duplicate' });
      }
      expect(answers.at(-1)).toMatchObject({ status: 'ignored', duplicateOf: earlier.id });
    });
  });
}
