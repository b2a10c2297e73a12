import { capaSucceeded, findImport, finishRow, getRow, releaseRow } from '../../db/repositories/imports.js';
import { importLink, linkRequestId } from '../definitions/import-link.js';
import { failRowOnLastAttempt, handleRowCapaFailure } from '../imports/orchestration.js';
import { rowReason } from '../imports/reasons.js';
import { defineHandler } from '../types.js';
import { issueLink } from './generate-link.handler.js';

export default defineHandler(importLink, {
  handler: async (p, ctx) => {
    const row = await getRow(ctx.db, p.importId, p.rowNo);
    if (!row || row.gen !== p.gen || row.status !== 'linking' || !row.userId) return { skipped: 'stale job' };
    ctx.setUser(row.userId);
    const imp = await findImport(ctx.db, p.importId);
    if (!imp) return { skipped: 'import gone' };
    if (imp.status === 'cancelled') {
      await finishRow(ctx.db, p, ['linking'], {
        status: 'cancelled',
        reasonCode: 'cancelled',
        reason: rowReason('cancelled_link_not_sent'),
      });
      return { outcome: 'cancelled' };
    }
    if (imp.status !== 'running') {
      await releaseRow(ctx.db, p, ['linking']);
      return { outcome: 'released', importStatus: imp.status };
    }
    try {
      let result: { linkId?: string } | null;
      try {
        result = (await issueLink(
          {
            userId: row.userId,
            country: row.country === 'DO' ? 'DO' : 'MX',
            redirectUri: null,
            requestId: linkRequestId(p.importId, p.rowNo),
            requestedBy: imp.committedBy,
            notify: true,
          },
          ctx,
        )) as { linkId?: string } | null;
      } catch (err) {
        return await handleRowCapaFailure(err, ctx, p, ['linking'], row.attempts);
      }
      await capaSucceeded(ctx.db, p.importId);
      await finishRow(ctx.db, p, ['linking'], { status: 'done', reasonCode: null, reason: null, linkId: result?.linkId ?? null });
      return { outcome: 'done' };
    } catch (err) {
      return failRowOnLastAttempt(err, ctx, p, ['linking']);
    }
  },
});
