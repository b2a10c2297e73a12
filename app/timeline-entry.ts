import type { Db } from '../db/client.js';
import type { User } from '../db/schema.js';

/**
 * An entry on a customer's timeline and the source that produces entries: the types the
 * features that contribute entries share with app/timeline.server.ts, which lists the sources.
 * Sources must not put personal data in `title`/`detail` unless they mask it for `canSeePii`.
 */
export type TimelineKind = 'webhook' | 'job' | 'state' | 'operator' | 'message' | (string & {});
export type Tone = 'ok' | 'error' | 'warn' | 'info';

export interface TimelineEntry {
  /** Unique across sources: `<kind>:<source id>`. */
  key: string;
  at: string;
  kind: TimelineKind;
  title: string;
  detail?: string | null;
  tone?: Tone;
  /** Small facts shown as label: value pairs; with a third element, the value links there. */
  facts?: TimelineFact[];
}

export type TimelineFact = [label: string, value: string, href?: string];

export interface TimelineContext {
  db: Db;
  user: User;
  canSeePii: boolean;
}

export type TimelineSource = (ctx: TimelineContext) => Promise<TimelineEntry[]>;
