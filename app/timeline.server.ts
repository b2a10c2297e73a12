import { auditForTarget } from '../db/repositories/audit.js';
import { deliveriesForUser } from '../db/repositories/inbox.js';
import { jobRunsForUser } from '../db/repositories/job-runs.js';
import { listOperators } from '../db/repositories/operators.js';
import { stateHistory } from '../db/repositories/users.js';
import { messagesTimelineSource } from './notifications.server';
import { driftTimelineSource } from './refresh.server';
import { casesTimelineSource } from './review/cases.server';
import { jobFailureMessage } from './job-failures.server';
import type { TimelineContext, TimelineEntry, TimelineFact, TimelineMessage, TimelineSource, TimelineText } from './timeline-entry';

/**
 * One timeline per customer: typed entries from several sources merged by time. A source is a
 * function (user → entries); to add one, write it beside its feature and list it in SOURCES.
 * Entries carry catalogue keys and values (`users:timeline.*`), never words.
 */
const msg = (key: string, values?: Record<string, string | number>): TimelineMessage =>
  values ? { code: `users:timeline.${key}`, values } : { code: `users:timeline.${key}` };
const fact = (key: string) => msg(`facts.${key}`);

/** Codes the catalogue has words for (`users:timeline.<group>.<code>`); others are shown as they are. */
const SIGNATURE_VERDICTS = new Set(['valid', 'missing', 'malformed', 'mismatch']);
const WEBHOOK_STATUSES = new Set(['received', 'processed', 'ignored', 'rejected', 'failed']);
const WEBHOOK_EFFECTS = new Set(['apply', 'noop', 'stale', 'conflict_check', 'not_kyc', 'unknown_user', 'ignored', 'duplicate']);
const coded = (group: string, known: ReadonlySet<string>, v: string): TimelineText => (known.has(v) ? msg(`${group}.${v}`) : v);

const webhookSource: TimelineSource = async ({ db, user }) => {
  const rows = await deliveriesForUser(db, user.id, user.externalUserId);
  return rows.map((d) => {
    const change = d.stateFrom && d.stateTo && d.stateFrom !== d.stateTo;
    const event = d.eventName ?? d.eventType;
    const facts: TimelineFact[] = [
      [fact('signature'), coded('verdicts', SIGNATURE_VERDICTS, d.signatureVerdict)],
      [fact('status'), coded('webhook_statuses', WEBHOOK_STATUSES, d.status)],
    ];
    if (d.effect) facts.push([fact('effect'), coded('effects', WEBHOOK_EFFECTS, d.effect)]);
    if (d.duplicateOf) facts.push([fact('duplicate_of'), `#${d.duplicateOf}`]);
    if (d.attempts > 1) facts.push([fact('attempts'), String(d.attempts)]);
    const title = event
      ? change
        ? msg('webhook_change', { event, id: d.id, from: d.stateFrom!, to: d.stateTo! })
        : msg('webhook', { event, id: d.id })
      : change
        ? msg('webhook_unknown_change', { id: d.id, from: d.stateFrom!, to: d.stateTo! })
        : msg('webhook_unknown', { id: d.id });
    return {
      key: `webhook:${d.id}`,
      at: d.receivedAt,
      kind: 'webhook',
      title,
      detail: d.error ? jobFailureMessage(d.error) : null,
      tone: d.signatureVerdict !== 'valid' || d.status === 'rejected' || d.status === 'failed' ? 'error' : change ? 'ok' : 'info',
      facts,
    } satisfies TimelineEntry;
  });
};

/** The jobs the catalogue names (`users:timeline.jobs.<name>`). */
const JOBS = new Set(['create-capa-user', 'generate-link', 'fetch-details', 'process-webhook']);
const JOB_STATUSES = new Set(['running', 'completed', 'failed', 'retrying']);

const jobSource: TimelineSource = async ({ db, user }) => {
  const rows = await jobRunsForUser(db, user.id);
  return rows.map((j) => {
    const status = JOB_STATUSES.has(j.status) ? j.status : 'other';
    const named = JOBS.has(j.jobName);
    const attempt = j.attempt > 1 ? '_attempt' : '';
    return {
      key: `job:${j.id}`,
      at: j.startedAt,
      kind: 'job',
      title: msg(`${named ? 'job' : 'job_unnamed'}${attempt}`, { job: j.jobName, status, attempt: j.attempt }),
      detail: j.error ? jobFailureMessage(j.error) : null,
      tone: j.status === 'failed' ? 'error' : j.status === 'retrying' ? 'warn' : j.status === 'completed' ? 'ok' : 'info',
      facts: [[fact('job'), j.jobId], ...(j.finishedAt ? ([[fact('finished'), { time: j.finishedAt }]] as TimelineFact[]) : [])],
    } satisfies TimelineEntry;
  });
};

/**
 * Who or what caused a state change, as an analyst reads it: the operator's name (there is no
 * page per operator to link to), the webhook delivery as a link to its inbox page.
 */
function causeFact(causeType: string, causeId: string | null, operatorNames: ReadonlyMap<string, string>): TimelineFact {
  if (causeType === 'operator' && causeId) {
    const name = operatorNames.get(causeId);
    return [fact('by'), name ?? msg('cause.operator_unknown', { id: `${causeId.slice(0, 8)}…` })];
  }
  if (causeType === 'webhook' && causeId && /^\d+$/.test(causeId))
    return [fact('by'), msg('cause.webhook', { id: causeId }), `/webhooks/${causeId}`];
  return [fact('by'), causeId ? `${causeType}:${causeId}` : causeType];
}

/**
 * A state change's reason as stored (applySignal's cause.reason): Capa's event names and codes
 * are shown as they are; the reasons our own jobs write are worded (`users:timeline.state_reasons.*`).
 */
export function stateReasonText(reason: string | null): TimelineText | null {
  if (!reason) return null;
  const key = STATE_REASONS[reason];
  return key ? msg(`state_reasons.${key}`) : reason;
}
const STATE_REASONS: Record<string, string> = {
  created: 'created',
  'link generated': 'link_generated',
  'details fetched': 'details_fetched',
};

const stateSource: TimelineSource = async ({ db, user }) => {
  const rows = await stateHistory(db, user.id);
  const names = new Map<string, string>();
  // Operators are few (staff, not customers): one read covers every name on the timeline.
  if (rows.some((s) => s.causeType === 'operator')) for (const o of await listOperators(db)) names.set(o.id, o.name);
  return rows.map((s) => ({
    key: `state:${s.id}`,
    at: s.at,
    kind: 'state',
    title: msg('state', { from: s.fromState, to: s.toState }),
    detail: stateReasonText(s.reason),
    tone: s.toState === 'VERIFIED' ? 'ok' : s.toState === 'REJECTED' ? 'error' : s.toState === 'REVIEW_NEEDED' ? 'warn' : 'info',
    facts: [causeFact(s.causeType, s.causeId, names), ...(s.drift ? ([[fact('drift'), msg('drift_value')]] as TimelineFact[]) : [])],
  }));
};

/** Audit actions on a customer the catalogue words (`users:timeline.actions.<action with _>`). */
const ACTIONS = new Set(['user.create', 'user.capa_create', 'link.generate', 'link.resend', 'details.fetch']);
const OUTCOMES = new Set(['ok', 'error', 'queued', 'denied']);

/**
 * What an audit entry recorded, as facts: the fields the catalogue names
 * (`users:timeline.detail_keys.<field>`) with their values worded where they are codes (yes/no,
 * a language, a job's failure, a refusal's key); other fields as recorded.
 */
const DETAIL_KEYS = new Set([
  'type',
  'country',
  'sendLink',
  'emailLink',
  'locale',
  'job',
  'error',
  'linkId',
  'supersedes',
  'result',
  'reason',
]);
const CODE = /^[a-z][a-z0-9-]*:[a-z0-9_.]+$/;

function detailValue(key: string, v: unknown): TimelineText {
  if (typeof v === 'boolean') return { code: v ? 'common:words.yes' : 'common:words.no' };
  if (v === null || v === undefined) return '—';
  if (typeof v !== 'string') return JSON.stringify(v);
  if (key === 'locale' && (v === 'es' || v === 'en')) return { code: `common:languages.${v}` };
  if (key === 'error') return jobFailureMessage(v);
  if (key === 'reason' && CODE.test(v)) return { code: v };
  return v;
}

function detailFacts(detail: string | null): TimelineFact[] {
  if (!detail) return [];
  let d: unknown;
  try {
    d = JSON.parse(detail);
  } catch {
    return [[fact('detail'), detail]];
  }
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return [[fact('detail'), detail]];
  return Object.entries(d as Record<string, unknown>).map(([k, v]): TimelineFact => [
    DETAIL_KEYS.has(k) ? msg(`detail_keys.${k}`) : k,
    detailValue(k, v),
  ]);
}

const operatorSource: TimelineSource = async ({ db, user }) => {
  const rows = await auditForTarget(db, 'user', user.id);
  return rows.map((a) => {
    const outcome = OUTCOMES.has(a.outcome) ? a.outcome : 'other';
    return {
      key: `operator:${a.id}`,
      at: a.at,
      kind: 'operator',
      title: ACTIONS.has(a.action)
        ? msg('operator', { actor: a.actor, action: a.action.replace('.', '_'), outcome, raw: a.outcome })
        : msg('operator_unlisted', { actor: a.actor, action: a.action, outcome, raw: a.outcome }),
      tone: a.outcome === 'ok' ? 'ok' : a.outcome === 'queued' ? 'info' : a.outcome === 'denied' ? 'warn' : 'error',
      facts: detailFacts(a.detail),
    } satisfies TimelineEntry;
  });
};

/** Every source of the timeline, the features' own included. */
const SOURCES: ReadonlyArray<{ name: string; load: TimelineSource }> = [
  { name: 'webhooks', load: webhookSource },
  { name: 'jobs', load: jobSource },
  { name: 'state', load: stateSource },
  { name: 'operator', load: operatorSource },
  { name: 'messages', load: messagesTimelineSource },
  { name: 'cases', load: casesTimelineSource },
  { name: 'drift', load: driftTimelineSource },
];

/** Newest first; a failing source shows as one entry instead of breaking the page. */
export async function buildTimeline(ctx: TimelineContext, limit = 300): Promise<TimelineEntry[]> {
  const parts = await Promise.all(
    SOURCES.map(async (s) => {
      try {
        return await s.load(ctx);
      } catch (err) {
        return [
          {
            key: `error:${s.name}`,
            at: new Date().toISOString(),
            kind: 'error',
            title: msg('source_failed', { source: s.name }),
            detail: (err as Error).message,
            tone: 'error',
          } satisfies TimelineEntry,
        ];
      }
    }),
  );
  return parts
    .flat()
    .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : a.key < b.key ? 1 : -1))
    .slice(0, limit);
}
