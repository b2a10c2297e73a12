import { z } from 'zod';

/**
 * Words an operator reads, as facades hand them to routes: a catalogue key (`<namespace>:<key>`)
 * and the values it interpolates. Only the UI turns a message into words, in the reader's
 * language; a value that is itself a code (a state, a status) is translated by the catalogue entry
 * (i18next nesting), so facades never pick words.
 */
export type MessageValues = Record<string, string | number>;
export interface Message {
  code: string;
  values?: MessageValues;
}

/**
 * What an operations action (webhook inbox, queues, Capa's delivery log, settings) answers: a tone
 * for the toast and its message. Shared by those facades and the ActionToast that shows it.
 */
export type Tone = 'ok' | 'error' | 'info';
export interface ActionResult extends Message {
  tone: Tone;
}

/** The id a form carries so that submitting it twice acts once. */
export const RequestIdSchema = z
  .string()
  .trim()
  .min(8)
  .max(100)
  .regex(/^[A-Za-z0-9_-]+$/);
