import { onLinkIssued, onStateChanged } from '../hooks.js';
import { onLinkIssuedNotify, onStateChangedNotify } from './programme.js';

/**
 * Attaches notifications to the job hooks. Imported by jobs/registry.ts so every process that
 * runs jobs has them. A hook never fails the job that called it: the KYC change is already
 * committed, and the notification sweep repairs anything a failed hook left undone.
 */
let registered = false;

export function registerNotificationHooks(): void {
  if (registered) return;
  registered = true;
  onLinkIssued(async (ctx, e) => {
    const data = (ctx.job?.data ?? {}) as { requestId?: unknown; requestedBy?: unknown };
    const requestId = typeof data.requestId === 'string' ? data.requestId : null;
    const requestedBy = typeof data.requestedBy === 'string' ? data.requestedBy : null;
    try {
      await onLinkIssuedNotify(ctx, { ...e, requestId, requestedBy, cause: requestedBy ? `operator:${requestedBy}` : `job:${String(ctx.job?.id ?? '')}` });
    } catch (err) {
      ctx.logger.error({ userId: e.userId, err: (err as Error).message }, 'notifications: link-issued hook failed (the sweep will repair waiting messages)');
    }
  });
  onStateChanged(async (ctx, e) => {
    try {
      await onStateChangedNotify(ctx, e);
    } catch (err) {
      ctx.logger.error({ userId: e.userId, err: (err as Error).message }, 'notifications: state-changed hook failed (the sweep will repair)');
    }
  });
}

registerNotificationHooks();
