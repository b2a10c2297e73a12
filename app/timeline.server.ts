import { auditForTarget } from '../db/repositories/audit.js';
import { deliveriesForUser } from '../db/repositories/inbox.js';
import { jobRunsForUser } from '../db/repositories/job-runs.js';
import { listOperators } from '../db/repositories/operators.js';
import { stateHistory } from '../db/repositories/users.js';
import { messagesTimelineSource } from './notifications.server';
import { driftTimelineSource } from './refresh.server';
import { casesTimelineSource } from './review/cases.server';
import type { TimelineContext, TimelineEntry, TimelineFact, TimelineSource } from './timeline-entry';

/**
 * One timeline per customer: typed entries from several sources merged by time. A source is a
 * function (user → entries); to add one, write it beside its feature and list it in SOURCES.
 */
const webhookSource: TimelineSource = async ({ db, user }) => {
  const rows = await deliveriesForUser(db, user.id, user.externalUserId);
  return rows.map((d) => {
    const change = d.stateFrom && d.stateTo && d.stateFrom !== d.stateTo ? `${d.stateFrom} → ${d.stateTo}` : null;
    const facts: Array<[string, string]> = [
      ['signature', d.signatureVerdict],
      ['status', d.status],
    ];
    if (d.effect) facts.push(['effect', d.effect]);
    if (d.duplicateOf) facts.push(['duplicate of', `#${d.duplicateOf}`]);
    if (d.attempts > 1) facts.push(['attempts', String(d.attempts)]);
    return {
      key: `webhook:${d.id}`,
      at: d.receivedAt,
      kind: 'webhook',
      title: `Webhook ${d.eventName ?? d.eventType ?? '(unknown event)'} #${d.id}${change ? ` — ${change}` : ''}`,
      detail: d.error,
      tone: d.signatureVerdict !== 'valid' || d.status === 'rejected' || d.status === 'failed' ? 'error' : change ? 'ok' : 'info',
      facts,
    } satisfies TimelineEntry;
  });
};

const JOB_LABEL: Record<string, string> = {
  'create-capa-user': 'Create in Capa',
  'generate-link': 'Generate KYC link',
  'fetch-details': 'Fetch KYC details',
  'process-webhook': 'Process webhook',
};

const jobSource: TimelineSource = async ({ db, user }) => {
  const rows = await jobRunsForUser(db, user.id);
  return rows.map((j) => ({
    key: `job:${j.id}`,
    at: j.startedAt,
    kind: 'job',
    title: `${JOB_LABEL[j.jobName] ?? j.jobName} — ${j.status}${j.attempt > 1 ? ` (attempt ${j.attempt})` : ''}`,
    detail: j.error,
    tone: j.status === 'failed' ? 'error' : j.status === 'retrying' ? 'warn' : j.status === 'completed' ? 'ok' : 'info',
    facts: [['job', j.jobId], ...(j.finishedAt ? ([['finished', j.finishedAt]] as Array<[string, string]>) : [])],
  }));
};

/**
 * Who or what caused a state change, as an analyst reads it: the operator's name (there is no
 * page per operator to link to), the webhook delivery as a link to its inbox page.
 */
function causeFact(causeType: string, causeId: string | null, operatorNames: ReadonlyMap<string, string>): TimelineFact {
  if (causeType === 'operator' && causeId) return ['by', operatorNames.get(causeId) ?? `operator ${causeId.slice(0, 8)}…`];
  if (causeType === 'webhook' && causeId && /^\d+$/.test(causeId)) return ['by', `webhook delivery #${causeId}`, `/webhooks/${causeId}`];
  return ['by', causeId ? `${causeType}:${causeId}` : causeType];
}

const stateSource: TimelineSource = async ({ db, user }) => {
  const rows = await stateHistory(db, user.id);
  const names = new Map<string, string>();
  // Operators are few (staff, not customers): one read covers every name on the timeline.
  if (rows.some((s) => s.causeType === 'operator')) for (const o of await listOperators(db)) names.set(o.id, o.name);
  return rows.map((s) => ({
    key: `state:${s.id}`,
    at: s.at,
    kind: 'state',
    title: `State ${s.fromState} → ${s.toState}`,
    detail: s.reason,
    tone: s.toState === 'VERIFIED' ? 'ok' : s.toState === 'REJECTED' ? 'error' : s.toState === 'REVIEW_NEEDED' ? 'warn' : 'info',
    facts: [causeFact(s.causeType, s.causeId, names), ...(s.drift ? ([['drift', 'Capa differed from our state']] as TimelineFact[]) : [])],
  }));
};

const operatorSource: TimelineSource = async ({ db, user }) => {
  const rows = await auditForTarget(db, 'user', user.id);
  return rows.map((a) => {
    let detail: string | null = null;
    if (a.detail) {
      try {
        const d = JSON.parse(a.detail) as Record<string, unknown>;
        detail = Object.entries(d)
          .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' · ');
      } catch {
        detail = a.detail;
      }
    }
    return {
      key: `operator:${a.id}`,
      at: a.at,
      kind: 'operator',
      title: `${a.actor}: ${a.action} — ${a.outcome}`,
      detail,
      tone: a.outcome === 'ok' ? 'ok' : a.outcome === 'queued' ? 'info' : a.outcome === 'denied' ? 'warn' : 'error',
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
            title: `Could not load ${s.name} for this timeline`,
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
