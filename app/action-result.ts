import { z } from 'zod';

/**
 * What an operations action (webhook inbox, queues, Capa's delivery log, settings) answers: a tone
 * for the toast and its message. Shared by those facades and the ActionToast that shows it.
 */
export type Tone = 'ok' | 'error' | 'info';
export interface ActionResult {
  tone: Tone;
  message: string;
}

/** The id a form carries so that submitting it twice acts once. */
export const RequestIdSchema = z
  .string()
  .trim()
  .min(8)
  .max(100)
  .regex(/^[A-Za-z0-9_-]+$/);
