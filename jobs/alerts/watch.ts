import { queuedAlertMessages } from '../../db/repositories/alerts.js';
import { isAlertKind } from '../../db/schema.js';
import { deliverAlertMessage } from './deliver.js';
import { evaluateAlerts, type EngineDeps, type RuleOutcome } from './engine.js';

/**
 * The web process's part of alerting. A rule about missing workers cannot be left to the
 * scheduled job — that job runs on a worker — so the web process evaluates it (`web` rules,
 * domain/alerts.ts) every ALERTS_EVERY_SECONDS. For the same reason it sends alert messages
 * itself while no worker serves the notifications queue: "no worker is running" must reach
 * someone although the send job cannot run. Sends are claimed like every send, so a worker that
 * comes back meanwhile does not send them a second time.
 */

export interface AlertWatch {
  /** One round: evaluate the web's rules, then deliver what no worker can. */
  tick(now?: number): Promise<{ outcomes: RuleOutcome[]; delivered: number }>;
  stop(): void;
}

/** Alert messages sent by this process while no worker is connected to the notifications queue. */
export async function deliverWithoutWorkers(deps: EngineDeps): Promise<number> {
  const workers = await deps.queues.queue('notifications').getWorkers();
  if (workers.length > 0) return 0;
  let delivered = 0;
  for (const row of await queuedAlertMessages(deps.db)) {
    if (!isAlertKind(row.kind)) continue;
    const number = row.attempts + 1;
    try {
      const out = await deliverAlertMessage(deps, { ...row, kind: row.kind }, { number, final: number >= deps.env.NOTIFY_SEND_ATTEMPTS });
      if ('sent' in out) delivered++;
    } catch (err) {
      // A temporary failure is recorded on the row; the next round tries again.
      deps.logger.warn({ notificationId: row.id, err: (err as Error).message }, 'alert message not delivered yet');
    }
  }
  return delivered;
}

export function startAlertWatch(getDeps: () => Promise<EngineDeps>, everyMs: number): AlertWatch {
  let running: Promise<{ outcomes: RuleOutcome[]; delivered: number }> | undefined;
  const tick = (now?: number) => {
    running ??= (async () => {
      try {
        const deps = await getDeps();
        const outcomes = await evaluateAlerts(deps, { evaluator: 'web', ...(now !== undefined ? { now } : {}) });
        const delivered = await deliverWithoutWorkers(deps).catch((err) => {
          deps.logger.warn({ err: (err as Error).message }, 'could not check for alert messages to deliver');
          return 0;
        });
        return { outcomes, delivered };
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  const timer = setInterval(() => {
    tick().catch(() => {
      /* reported by the rule outcomes or the next round */
    });
  }, everyMs);
  timer.unref();
  return { tick, stop: () => clearInterval(timer) };
}
