import type { NotificationLocale } from '../db/schema.js';
import type { JobContext } from './types.js';

/**
 * Extension points where later features attach (notifications send the link by e-mail).
 * Kept as plain functions so a job never imports a feature it does not need.
 */
type LinkIssuedHook = (ctx: JobContext, e: { userId: string; linkId: string; notify: boolean; locale?: NotificationLocale | null }) => Promise<void>;
type StateChangedHook = (ctx: JobContext, e: { userId: string; from: string; to: string; cause: string }) => Promise<void>;

const linkIssued: LinkIssuedHook[] = [];
const stateChanged: StateChangedHook[] = [];

export function onLinkIssued(h: LinkIssuedHook): void {
  linkIssued.push(h);
}
export function onStateChanged(h: StateChangedHook): void {
  stateChanged.push(h);
}
export async function afterLinkIssued(ctx: JobContext, e: Parameters<LinkIssuedHook>[1]): Promise<void> {
  for (const h of linkIssued) await h(ctx, e);
}
export async function afterStateChanged(ctx: JobContext, e: Parameters<StateChangedHook>[1]): Promise<void> {
  for (const h of stateChanged) await h(ctx, e);
}
