import { CapaClient } from '../capa/client.js';
import { webCapaStats } from './metrics.server';
import { services } from './services.server';

let capaCache: { key: string; client: CapaClient } | undefined;

/**
 * The web process's Capa client: no automatic retries (an operator is waiting, and a retried POST
 * could spend Capa's manual-retry allowance twice); its calls are counted in /metrics.
 */
export async function opsCapa(): Promise<CapaClient> {
  const { env } = await services();
  const key = `${env.capaBaseUrl}|${env.CAPA_API_KEY}|${env.CAPA_TIMEOUT_MS}`;
  if (capaCache?.key !== key) {
    const stats = await webCapaStats();
    capaCache = {
      key,
      client: new CapaClient({
        baseUrl: env.capaBaseUrl,
        apiKey: env.CAPA_API_KEY,
        timeoutMs: Math.min(env.CAPA_TIMEOUT_MS, 8000),
        maxRetries: 0,
        onCall: stats.record,
      }),
    };
  }
  return capaCache.client;
}
