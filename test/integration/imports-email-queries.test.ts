import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createImport,
  emailCounts,
  failedEmailsByImport,
  insertImportRows,
  listImportRows,
  rowEmails,
} from '../../db/repositories/imports.js';
import { cancelMessage, insertMessage, markFailed, markSent, recordTransientError } from '../../db/repositories/notifications.js';
import { insertUser } from '../../db/repositories/users.js';
import type { NewImportRow } from '../../db/schema.js';
import { nowIso } from '../../lib/time.js';
import { createTestDb, postgresAvailable, type TestDb } from '../support/runtime.js';

/**
 * The queries behind an import's link-e-mail outcomes, on both engines: a row's e-mail is the
 * ledger row `link:<linkId>` its link step queued — not a later resend of the same link.
 */
const kinds: Array<'sqlite' | 'postgres'> = ['sqlite'];
if (await postgresAvailable()) kinds.push('postgres');

for (const kind of kinds) {
  describe(`import e-mail outcome queries on ${kind}`, () => {
    let t: TestDb;
    let a = '';
    let b = '';

    beforeAll(async () => {
      t = await createTestDb(kind);
      const user = await insertUser(t.db, { email: 'sofía@example.mx', type: 'INDIVIDUAL', country: 'MX' });
      const newImport = () => createImport(t.db, { fileName: 'x.csv', fileSha256: 'x', fileBytes: 1, delimiter: ',', createdBy: null });
      a = await newImport();
      b = await newImport();
      const now = nowIso();
      const row = (importId: string, rowNo: number, o: Partial<NewImportRow>): NewImportRow => ({
        importId,
        rowNo,
        line: rowNo + 1,
        externalUserId: `x-${rowNo}`,
        email: `r${rowNo}@example.mx`,
        type: 'INDIVIDUAL',
        alias: null,
        country: 'MX',
        sendLink: 1,
        status: 'done',
        reasonCode: null,
        reason: null,
        userId: user.id,
        capaUserId: 'c',
        linkId: `${importId}-l${rowNo}`,
        enqueuedAt: null,
        finishedAt: now,
        updatedAt: now,
        ...o,
      });
      await insertImportRows(t.db, [
        row(a, 1, {}),
        row(a, 2, {}),
        row(a, 3, {}),
        row(a, 4, {}),
        row(a, 5, { linkId: null }), // a link but its e-mail never queued
        row(a, 6, { sendLink: 0, linkId: null }),
        row(a, 7, { status: 'invalid', linkId: null, userId: null, reasonCode: 'bad_email', reason: 'bad' }),
        row(a, 8, {}),
        row(a, 9, { status: 'linking', linkId: null }),
        row(b, 1, {}),
      ]);
      const msg = async (dedupeKey: string, linkId: string) =>
        (
          await insertMessage(t.db, {
            userId: user.id,
            kind: 'kyc_link',
            channel: 'email',
            locale: 'es',
            address: user.email,
            dedupeKey,
            linkId,
            linkUrl: 'https://verify.example/s/x',
          })
        ).row.id;
      await markSent(t.db, await msg(`link:${a}-l1`, `${a}-l1`), { subject: 's', providerMessageId: 'p' });
      await markFailed(t.db, await msg(`link:${a}-l2`, `${a}-l2`), 'SMTP 550 at RCPT TO: No such user here');
      await recordTransientError(t.db, await msg(`link:${a}-l3`, `${a}-l3`), 'attempt 1: SMTP unreachable');
      await cancelMessage(t.db, await msg(`link:${a}-l4`, `${a}-l4`), 'customer is already VERIFIED');
      // Row 8: its own e-mail went out; a later resend of the same link failed — not the import's e-mail.
      await markSent(t.db, await msg(`link:${a}-l8`, `${a}-l8`), { subject: 's', providerMessageId: 'p' });
      await markFailed(t.db, await msg('resend:r8', `${a}-l8`), 'SMTP 451 (temporary): later');
      await markFailed(t.db, await msg(`link:${b}-l1`, `${b}-l1`), 'no');
    });
    afterAll(async () => {
      await t?.close();
    });

    it('counts each row’s own link e-mail by outcome, and the rows that should have one but do not', async () => {
      expect(await emailCounts(t.db, a)).toEqual({ expected: 6, sent: 2, failed: 1, pending: 1, cancelled: 1, missing: 1 });
      expect(await emailCounts(t.db, b)).toEqual({ expected: 1, sent: 0, failed: 1, pending: 0, cancelled: 0, missing: 0 });
    });

    it('gives each row its e-mail with the reason (failure, cancellation or last transient error)', async () => {
      const m = await rowEmails(t.db, a, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect([...m.keys()].sort()).toEqual([1, 2, 3, 4, 8]);
      expect(m.get(1)).toMatchObject({ status: 'sent', reason: null });
      expect(m.get(2)).toMatchObject({ status: 'failed', reason: 'SMTP 550 at RCPT TO: No such user here' });
      expect(m.get(3)).toMatchObject({ status: 'queued', reason: 'attempt 1: SMTP unreachable' });
      expect(m.get(4)).toMatchObject({ status: 'cancelled', reason: 'customer is already VERIFIED' });
      expect(m.get(8)).toMatchObject({ status: 'sent' });
    });

    it('filters rows by e-mail outcome, and counts failed e-mails per import for the list', async () => {
      const failed = await listImportRows(t.db, a, { filter: 'email_failed', page: 1, pageSize: 50 });
      expect([failed.total, failed.rows.map((r) => r.rowNo)]).toEqual([1, [2]]);
      const pending = await listImportRows(t.db, a, { filter: 'email_pending', page: 1, pageSize: 50 });
      expect(pending.rows.map((r) => r.rowNo)).toEqual([3]);
      expect(await failedEmailsByImport(t.db, [a, b])).toEqual(
        new Map([
          [a, 1],
          [b, 1],
        ]),
      );
      expect(await failedEmailsByImport(t.db, [])).toEqual(new Map());
    });
  });
}
