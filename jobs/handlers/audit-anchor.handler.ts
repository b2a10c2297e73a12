import { recordAuditAnchor } from '../../db/repositories/audit.js';
import { auditAnchor } from '../definitions/audit-anchor.js';
import { defineHandler } from '../types.js';

export default defineHandler(auditAnchor, {
  handler: async (_p, ctx) => {
    const a = await recordAuditAnchor(ctx.db);
    ctx.logger.info({ head: a.headHash, count: a.rowCount, at: a.at }, 'audit chain anchor');
    return { anchorId: a.id, count: a.rowCount };
  },
});
