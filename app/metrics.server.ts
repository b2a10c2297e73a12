/**
 * In-process counters for /metrics (Prometheus text). Kept tiny here; the operations issue
 * extends it with queue and Capa figures.
 */
const webhooks = new Map<string, number>();

export const metrics = {
  webhook(verdict: string): void {
    webhooks.set(verdict, (webhooks.get(verdict) ?? 0) + 1);
  },
  snapshot() {
    return { webhooks: Object.fromEntries(webhooks) };
  },
};
