import { CAPA_CREATE_IN_DOUBT } from '../jobs/capa-create.js';
import { readMessages } from '../lib/stored-message.js';
import type { Message } from './action-result';
import { storedErrorMessage } from './plain-errors.server';

/**
 * A customer job's failure as the console words it. The jobs (create in Capa, generate a link,
 * fetch details) record failures as English text — Capa's refusal in describeCapaError's words,
 * or their own — in the job's failed reason, the customer's Capa error and an import row's
 * reason; this reads them back as messages. Text nobody recognises is shown as it was recorded.
 */
export function jobFailureMessage(text: string | null | undefined): Message {
  const stored = readMessages(text);
  if (stored) return stored[0]!;
  const t = (text ?? '').trim();
  if (t === CAPA_CREATE_IN_DOUBT) return { code: 'users:failures.capa_in_doubt' };
  // jobs/handlers/generate-link.handler.ts (issueLink): the customer's creation in Capa failed, or has not happened yet.
  if (t.startsWith('the customer is not in Capa:')) return { code: 'users:failures.not_in_capa' };
  if (t.startsWith('the customer is not created in Capa yet')) return { code: 'users:failures.not_created_yet' };
  if (/^user \S+ not found$/.test(t)) return { code: 'users:failures.customer_gone' };
  return storedErrorMessage(t, { final: true });
}
