import { z } from 'zod';
import { capaSucceeded, findImport, finishRow, getRow, releaseRow } from '../../db/repositories/imports.js';
import { failRowOnLastAttempt, handleRowCapaFailure } from '../imports/capa-failure.js';
import { defineJob } from '../types.js';
import { generateLink } from './generate-link.js';

/**
 * The link step of an import row: one Capa call through the shared generate-link logic, keyed by
 * a request id derived from the row (import + row number), so a re-run, a retried row or a
 * restarted worker asks Capa once and records — and sends, with `notify` — one link.
 */
export const importLink = defineJob({
  name: 'import-link',
  queue: 'capa',
  schema: z.object({ importId: z.string().min(1).max(64), rowNo: z.number().int().positive(), gen: z.number().int().nonnegative() }),
  jobId: (p) => `implink-${p.importId}-${p.rowNo}-${p.gen}`,
  options: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, priority: 10, removeOnComplete: true, removeOnFail: { age: 7 * 86400 } },
  trackRuns: false,
  handler: async (p, ctx) => {
    const row = await getRow(ctx.db, p.importId, p.rowNo);
    if (!row || row.gen !== p.gen || row.status !== 'linking' || !row.userId) return { skipped: 'stale job' };
    ctx.setUser(row.userId);
    const imp = await findImport(ctx.db, p.importId);
    if (!imp) return { skipped: 'import gone' };
    if (imp.status === 'cancelled') {
      await finishRow(ctx.db, p, ['linking'], { status: 'cancelled', reasonCode: 'cancelled', reason: 'created in Capa; link not sent (import cancelled)' });
      return { outcome: 'cancelled' };
    }
    if (imp.status !== 'running') {
      await releaseRow(ctx.db, p, ['linking']);
      return { outcome: 'released', importStatus: imp.status };
    }
    try {
      let result: { linkId?: string } | null;
      try {
        result = (await generateLink.handler(
          { userId: row.userId, country: row.country === 'DO' ? 'DO' : 'MX', redirectUri: null, requestId: linkRequestId(p.importId, p.rowNo), requestedBy: imp.committedBy, notify: true },
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

/** One link request per import row, whatever the generation: the link is asked for once. */
export function linkRequestId(importId: string, rowNo: number): string {
  return `import-${importId}-${rowNo}`;
}
