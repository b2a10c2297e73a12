import type { Queue } from 'bullmq';
import { appendAudit } from '../db/repositories/audit.js';
import { auditAction, requireOperator, sameOrigin, type SignedIn } from './auth.server';
import { services, setServices, type Services } from './services.server';
import { metrics, startProcessMetrics } from './metrics.server';
import { MAX_WEBHOOK_BYTES, receiveWebhook, type IntakeDeps, type IntakeResult } from './webhook-intake.server.js';
import { intakeDeps } from './webhooks.server';

/**
 * What the web host (server/web.ts) takes from the Remix build it serves, reached as
 * `build.entry.module.host` (app/entry.server.tsx re-exports it). The host imports no app/ code
 * of its own, so the web process holds one copy of the services, the metrics registry, the
 * intake's group commit and the session checks: the build's.
 */
export interface WebHost {
  services(): Promise<Services>;
  /** Tests and the bench install their own services into the build they serve. */
  setServices(s: Services | undefined): void;
  /** Starts the process figures /metrics reports (called once, when the host starts). */
  startMetrics(): void;
  /** POST /webhooks/capa on express, ahead of the Remix handler (server/webhook-http.ts). */
  webhookIntake: WebhookIntake;
  /** bull-board under /admin/queues (server/bull-board.ts), behind the console's own guard. */
  queueBoard: QueueBoard;
  /** Audits a state-changing request refused because its Origin names another site. */
  auditCrossSiteRefusal(path: string, origin: string, ip: string | null): Promise<void>;
}

export interface WebhookIntake {
  maxBytes: number;
  receive(body: Buffer, headers: Headers): Promise<IntakeResult>;
  /** A body refused as larger than maxBytes before it was read (never stored): counted in /metrics. */
  tooLarge(): void;
}

export interface QueueBoard {
  /** The signed-in admin, or throws the Response to send (redirect to /login, audited 403). */
  requireAdmin(request: Request): Promise<SignedIn>;
  sameOrigin(request: Request): Promise<boolean>;
  audit: typeof auditAction;
  queues(): Promise<Queue[]>;
}

/** The fast path's intake over `deps` (the test runtime serves one over its own services). */
export function webhookIntake(deps: () => Promise<IntakeDeps>): WebhookIntake {
  return {
    maxBytes: MAX_WEBHOOK_BYTES,
    receive: async (body, headers) => receiveWebhook(body, headers, await deps()),
    tooLarge: () => metrics.webhook('too_large'),
  };
}

export const host: WebHost = {
  services,
  setServices,
  startMetrics: startProcessMetrics,
  webhookIntake: webhookIntake(intakeDeps),
  queueBoard: {
    requireAdmin: (request) => requireOperator(request, 'admin'),
    sameOrigin,
    audit: auditAction,
    queues: async () => (await services()).queues.allQueues(),
  },
  async auditCrossSiteRefusal(path, origin, ip) {
    const { db } = await services();
    await appendAudit(db, {
      actor: 'anonymous',
      action: 'csrf.refused',
      targetType: 'route',
      targetId: path.slice(0, 200),
      outcome: 'denied',
      detail: { origin: origin.slice(0, 200) },
      ip,
    });
  },
};
