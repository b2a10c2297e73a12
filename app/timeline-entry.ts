import type { Db } from '../db/client.js';
import type { User } from '../db/schema.js';
import type { Message } from './action-result';

/**
 * An entry on a customer's timeline and the source that produces entries: the types the
 * features that contribute entries share with app/timeline.server.ts, which lists the sources.
 * Sources must not put personal data in `title`/`detail` unless they mask it for `canSeePii`.
 *
 * Words are data here: a source gives a catalogue key and its values (`{ code, values }`), the
 * page words it in the reader's language. A plain string is shown as it is: data (an e-mail, an
 * id) or words from outside (an SMTP server's answer). A moment is `{ time: iso }`, shown in the
 * reader's time zone.
 */
export type TimelineKind = 'webhook' | 'job' | 'state' | 'operator' | 'message' | (string & {});
export type Tone = 'ok' | 'error' | 'warn' | 'info';

export type TimelineMessage = Message;
export type TimelineText = Message | string;
export type TimelineValue = TimelineText | { time: string };

export interface TimelineEntry {
  /** Unique across sources: `<kind>:<source id>`. */
  key: string;
  at: string;
  kind: TimelineKind;
  title: TimelineText;
  detail?: TimelineText | null;
  tone?: Tone;
  /** Small facts shown as label: value pairs; with a third element, the value links there. */
  facts?: TimelineFact[];
}

export type TimelineFact = [label: TimelineText, value: TimelineValue, href?: string];

export interface TimelineContext {
  db: Db;
  user: User;
  canSeePii: boolean;
}

export type TimelineSource = (ctx: TimelineContext) => Promise<TimelineEntry[]>;
