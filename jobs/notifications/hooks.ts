import type { JobContext, LinkIssuedEvent, StateChangedEvent } from '../types.js';
import { onLinkIssuedNotify, onStateChangedNotify } from './programme.js';

/**
 * Notifications' job hooks (listed in jobs/hooks.ts). A hook never fails the job that called it:
 * the KYC change is already committed, and the notification sweep repairs anything a failed hook
 * left undone.
 */

export async function notifyOnLinkIssued(ctx: JobContext, e: LinkIssuedEvent): Promise<void> {
  const data = (ctx.job?.data ?? {}) as { requestId?: unknown; requestedBy?: unknown };
  const requestId = typeof data.requestId === 'string' ? data.requestId : null;
  const requestedBy = typeof data.requestedBy === 'string' ? data.requestedBy : null;
  try {
    await onLinkIssuedNotify(ctx, {
      ...e,
      requestId,
      requestedBy,
      cause: requestedBy ? `operator:${requestedBy}` : `job:${String(ctx.job?.id ?? '')}`,
    });
  } catch (err) {
    ctx.logger.error(
      { userId: e.userId, err: (err as Error).message },
      'notifications: link-issued hook failed (the sweep will repair waiting messages)',
    );
  }
}

export async function notifyOnStateChanged(ctx: JobContext, e: StateChangedEvent): Promise<void> {
  try {
    await onStateChangedNotify(ctx, e);
  } catch (err) {
    ctx.logger.error({ userId: e.userId, err: (err as Error).message }, 'notifications: state-changed hook failed (the sweep will repair)');
  }
}
