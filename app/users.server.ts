import { redirect } from '@remix-run/node';
import type { KycDetails } from '../capa/types.js';
import { claim, forget, peekClaim, settle } from '../db/repositories/idempotency.js';
import { activeLink, linksForUser } from '../db/repositories/links.js';
import { latestDetails } from '../db/repositories/details.js';
import { notificationsForUser } from '../db/repositories/notifications.js';
import { listOperators } from '../db/repositories/operators.js';
import {
  countsByState,
  funnelFromCounts,
  listUsers,
  oldestInState,
  SORTABLE,
  type SortColumn,
  type UsersListQuery,
} from '../db/repositories/users-list.js';
import { findUserByEmail, findUserByExternalId, findUserById, insertUser } from '../db/repositories/users.js';
import type { Db } from '../db/client.js';
import { FINAL_STATES, KYC_STATES, type KycState, type NotificationLocale, type User } from '../db/schema.js';
import { createCapaUser } from '../jobs/definitions/create-capa-user.js';
import { fetchDetails } from '../jobs/definitions/fetch-details.js';
import { generateLink } from '../jobs/definitions/generate-link.js';
import { defaultLocale } from '../jobs/notifications/templates.js';
import type { WaitResult } from '../jobs/queues.js';
import { auditAction, canSeePii, type SignedIn } from './auth.server';
import { dayEnd, dayStart, parsePaging, parseSorting } from './list-params.server';
import { maskDeep, maskEmail, maskUrl } from './pii';
import { CreateUserSchema, fieldErrors, formToObject, UserActionSchema } from './schemas';
import { services } from './services.server';
import { buildTimeline } from './timeline.server';

/** How long an action waits for its job before saying "queued" (tests shorten it). */
export const actionWait = { ms: 4_000 };

// ------------------------------------------------------------------ users list

export interface ListParams extends UsersListQuery {
  sort: SortColumn;
  dir: 'asc' | 'desc';
  page: number;
  pageSize: number;
}

/** URL → query. Unknown or malformed values are dropped, never an error: a shared link always opens. */
export function parseListParams(sp: URLSearchParams): ListParams {
  const states = sp
    .getAll('state')
    .flatMap((s) => s.split(','))
    .filter((s): s is KycState => (KYC_STATES as readonly string[]).includes(s));
  const type = sp.get('type');
  const country = sp.get('country');
  return {
    states,
    type: type === 'INDIVIDUAL' || type === 'BUSINESS' ? type : null,
    country: country === 'MX' || country === 'DO' ? country : null,
    createdFrom: dayStart(sp.get('from')),
    createdTo: dayEnd(sp.get('to')),
    assignee: sp.get('assignee')?.slice(0, 100) || null,
    q: sp.get('q')?.slice(0, 200) || null,
    ...parseSorting(sp, SORTABLE, 'createdAt'),
    ...parsePaging(sp, { sizes: [10, 25, 50, 100], defaultSize: 25 }),
  };
}

export async function usersListData(who: SignedIn, sp: URLSearchParams) {
  const { db } = await services();
  const params = parseListParams(sp);
  const [result, operators] = await Promise.all([listUsers(db, params), listOperators(db)]);
  const pii = canSeePii(who.operator.role);
  return {
    ...result,
    rows: result.rows.map((r) => (pii ? r : { ...r, email: maskEmail(r.email) })),
    operators: operators.map((o) => ({ id: o.id, name: o.name })),
    params: { ...params, from: sp.get('from') ?? '', to: sp.get('to') ?? '' },
  };
}

// ------------------------------------------------------------------ home

const WAITING: KycState[] = ['NOT_STARTED', 'LINK_ISSUED', 'IN_PROGRESS', 'REVIEW_NEEDED'];

export async function homeData(who: SignedIn) {
  const { db } = await services();
  const counts = await countsByState(db);
  const pii = canSeePii(who.operator.role);
  const oldest = await Promise.all(
    WAITING.map(async (state) => ({
      state,
      users: (await oldestInState(db, state, 5)).map((u) => ({ ...u, email: pii ? u.email : maskEmail(u.email) })),
    })),
  );
  return { counts, funnel: funnelFromCounts(counts), oldest };
}

// ------------------------------------------------------------------ create user

/** The language a link e-mail gets by default for each country the form offers. */
export function linkLocaleDefaults(): Record<'MX' | 'DO', NotificationLocale> {
  return { MX: defaultLocale('MX'), DO: defaultLocale('DO') };
}

export type CreateUserOutcome =
  { ok: false; errors: Record<string, string>; values: Record<string, string> } | { ok: true; response: Response };

const isUniqueViolation = (err: unknown) => /unique|duplicate key/i.test(String((err as Error)?.message ?? err));

export async function createUserFromForm(request: Request, who: SignedIn, form: FormData): Promise<CreateUserOutcome> {
  const { db, queues } = await services();
  const values = formToObject(form);
  const parsed = CreateUserSchema.safeParse(values);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error), values };
  const input = parsed.data;
  const claimKey = `console-create:${input.requestId}`;

  // A double click or a resubmitted form carries the same request id: show the first result.
  const prior = await peekClaim(db, claimKey);
  if (prior?.status === 'done' && prior.result) {
    const { userId } = prior.result as { userId: string };
    return { ok: true, response: redirect(`/users/${userId}`) };
  }

  const dupe = async (): Promise<Record<string, string> | null> => {
    if (await findUserByEmail(db, input.email)) return { email: 'A customer with this e-mail already exists (Capa needs unique e-mails).' };
    if (input.externalUserId && (await findUserByExternalId(db, input.externalUserId)))
      return { externalUserId: 'This external user id is already taken.' };
    return null;
  };
  const found = await dupe();
  if (found) {
    await auditAction(request, who, {
      action: 'user.create',
      targetType: 'user',
      targetId: null,
      outcome: 'error',
      detail: { reason: Object.values(found)[0] },
    });
    return { ok: false, errors: found, values };
  }

  let user: User;
  try {
    user = await db.transaction().execute(async (trx) => {
      const c = await claim(trx, claimKey, 'console-create');
      if (!c.fresh) throw new Error('duplicate-submit');
      const u = await insertUser(trx, {
        email: input.email,
        type: input.type,
        externalUserId: input.externalUserId ?? null,
        alias: input.alias ?? null,
        country: input.country,
        createdBy: who.operator.id,
      });
      await settle(trx, claimKey, 'done', { userId: u.id });
      return u;
    });
  } catch (err) {
    if ((err as Error).message === 'duplicate-submit') {
      const again = await peekClaim(db, claimKey);
      const userId = again?.result ? (again.result as { userId: string }).userId : null;
      if (userId) return { ok: true, response: redirect(`/users/${userId}`) };
      return { ok: false, errors: { form: 'This form was already submitted; check the Users list.' }, values };
    }
    await forget(db, claimKey).catch(() => {});
    if (isUniqueViolation(err)) {
      // Lost a race with another operator (or an import) between the check and the insert.
      const errors = (await dupe()) ?? { email: 'A customer with this e-mail or external user id already exists.' };
      await auditAction(request, who, {
        action: 'user.create',
        targetType: 'user',
        targetId: null,
        outcome: 'error',
        detail: { reason: Object.values(errors)[0] },
      });
      return { ok: false, errors, values };
    }
    throw err;
  }

  // The link is e-mailed the way an import's is (generate-link with notify → the ledger), unless
  // the operator hands it over another way.
  const emailLink = input.sendLink && !input.noEmail;
  const locale = input.locale ?? defaultLocale(input.country);
  const r = await queues.addAndWait(
    createCapaUser,
    {
      userId: user.id,
      requestedBy: who.operator.id,
      sendLink: input.sendLink
        ? { country: input.country, redirectUri: null, requestId: input.requestId, notify: emailLink, locale }
        : null,
    },
    actionWait.ms,
  );
  await auditAction(request, who, {
    action: 'user.create',
    targetType: 'user',
    targetId: user.id,
    outcome: outcomeOf(r),
    detail: {
      type: input.type,
      country: input.country,
      sendLink: input.sendLink,
      ...(input.sendLink ? { emailLink, locale } : {}),
      job: 'jobId' in r ? r.jobId : null,
      ...(r.state === 'failed' || r.state === 'unavailable' ? { error: r.error } : {}),
    },
  });
  const flash = r.state === 'completed' ? 'created' : r.state === 'failed' ? 'created-failed' : 'created-queued';
  return { ok: true, response: redirect(`/users/${user.id}?flash=${flash}`) };
}

function outcomeOf(r: WaitResult): 'ok' | 'error' | 'queued' {
  return r.state === 'completed' ? 'ok' : r.state === 'queued' ? 'queued' : 'error';
}

// ------------------------------------------------------------------ user page

export interface DetailSection {
  title: string;
  rows: Array<[string, string]>;
  tone?: 'ok' | 'error' | 'warn';
}

function str(v: unknown): string {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function checkTone(status: unknown, result: unknown): DetailSection['tone'] {
  const s = `${String(status ?? '')} ${String(result ?? '')}`.toUpperCase();
  if (/REJECT|FAIL|DECLIN|FRAUD/.test(s)) return 'error';
  if (/REVIEW|WARN/.test(s)) return 'warn';
  if (/APPROV|PASS|CLEAN|VERIF/.test(s)) return 'ok';
  return undefined;
}

/** KYC details in readable sections (masked first for roles without PII access). */
export function detailSections(raw: KycDetails, pii: boolean): DetailSection[] {
  const d = (pii ? raw : maskDeep(raw)) as KycDetails;
  const sections: DetailSection[] = [];
  sections.push({
    title: 'Summary',
    rows: [
      ['Verification result', str(d.aipriseSummary?.verificationResult)],
      ['Session', str(d.verificationSessionId)],
      ['Created', str(d.createdAt)],
    ],
  });
  const id = d.idInfo;
  if (id) {
    sections.push({
      title: 'ID document',
      tone: checkTone(id.status, id.result),
      rows: [
        ['Type', str(id.idType)],
        ['Number', str(id.idNumber)],
        ['Full name', str(id.fullName ?? [id.firstName, id.lastName].filter(Boolean).join(' '))],
        ['Birth date', str(id.birthDate)],
        ['Nationality', str(id.nationality)],
        ['Issuing country', str(id.issueCountry ?? id.issueCountryCode)],
        ['Issued', str(id.idIssueDate)],
        ['Expires', str(id.idExpiryDate)],
        ['Address', str(id.address?.fullAddress)],
        ['Status', str(id.status)],
        ['Result', str(id.result)],
        ...((id.statusReasons ?? []).map((r) => ['Reason', `${str(r.code)}: ${str(r.message)}`]) as Array<[string, string]>),
      ],
    });
  }
  const fm = d.faceMatchInfo;
  if (fm)
    sections.push({
      title: 'Face match',
      tone: checkTone(fm.status, fm.result),
      rows: [
        ['Score', str(fm.faceMatchScore)],
        ['Status', str(fm.status)],
        ['Result', str(fm.result)],
      ],
    });
  const lv = d.faceLivenessInfo;
  if (lv)
    sections.push({
      title: 'Liveness',
      tone: checkTone(lv.status, lv.result),
      rows: [
        ['Status', str(lv.status)],
        ['Result', str(lv.result)],
      ],
    });
  const fr = d.fraudInsights;
  if (fr)
    sections.push({
      title: 'Fraud',
      tone: checkTone(fr.status, fr.result),
      rows: [
        ['Status', str(fr.status)],
        ['Result', str(fr.result)],
      ],
    });
  const aml = d.amlInfo;
  if (aml) {
    const hits = (aml.entityHits ?? []).map(
      (h) =>
        [`Hit: ${str(h.name)}`, `${str(h.entityType)} · name match ${str(h.nameMatchScore)} · ${str(h.resolutionStatus)}`] as [
          string,
          string,
        ],
    );
    sections.push({
      title: 'AML hits',
      tone: (aml.numHits ?? hits.length) > 0 ? 'warn' : 'ok',
      rows: [['Hits', str(aml.numHits ?? hits.length)], ...hits],
    });
  }
  const pi = d.clientReferenceData?.personalInfo;
  if (pi)
    sections.push({
      title: 'Personal info',
      rows: [
        ['Tax id', str(pi.taxId)],
        ['Phone', str(pi.phoneNumber)],
        ['Profession', str(pi.profession)],
        ['Birth country', str(pi.birthCountry)],
      ],
    });
  const m = d.media;
  if (m)
    sections.push({
      title: 'Media',
      rows: [
        ['Front of ID', str(m.frontIdImageUrl)],
        ['Back of ID', str(m.backIdImageUrl)],
        ['Selfie', str(m.selfieImageUrl)],
        ['Selfie video', str(m.selfieVideoUrl)],
      ],
    });
  return sections;
}

export async function userPageData(who: SignedIn, id: string) {
  const { db, dataKeys } = await services();
  const user = await findUserById(db, id);
  if (!user) throw new Response('No customer with this id. It may have been typed wrong; search the Users list.', { status: 404 });
  const pii = canSeePii(who.operator.role);
  const [links, details, timeline, emailLocale] = await Promise.all([
    linksForUser(db, id),
    latestDetails<KycDetails>(db, id, dataKeys).catch((err: Error) => ({ error: err.message }) as const),
    buildTimeline({ db, user, canSeePii: pii }),
    customerLocale(db, user),
  ]);
  let detailsView: { fetchedAt: string; verificationResult: string | null; sections: DetailSection[] } | { error: string } | null = null;
  if (details && 'error' in details) detailsView = { error: `The stored KYC details cannot be read: ${details.error}` };
  else if (details)
    detailsView = {
      fetchedAt: details.fetchedAt,
      verificationResult: details.verificationResult,
      sections: detailSections(details.details, pii),
    };
  return {
    user: {
      id: user.id,
      email: pii ? user.email : maskEmail(user.email),
      externalUserId: user.externalUserId,
      capaUserId: user.capaUserId,
      type: user.type,
      alias: user.alias,
      country: user.country,
      kycState: user.kycState,
      kycStateChangedAt: user.kycStateChangedAt,
      kycStateReason: user.kycStateReason,
      kycStateCause: user.kycStateCause,
      capaConfirmedAt: user.capaConfirmedAt,
      capaSync: user.capaSync,
      capaSyncError: user.capaSyncError,
      unmappedResult: user.unmappedResult,
      linkExpired: user.linkExpired,
      createdAt: user.createdAt,
    },
    final: FINAL_STATES.includes(user.kycState) && user.capaSync !== 'pending',
    links: links.map((l) => ({
      id: l.id,
      url: pii ? l.url : maskUrl(l.url),
      status: l.status,
      country: l.country,
      createdAt: l.createdAt,
      endedAt: l.endedAt,
    })),
    details: detailsView,
    timeline,
    /** Preselected language of the link e-mail on "Resend link". */
    emailLocale,
    canAct: who.operator.role !== 'viewer',
    canSeePii: pii,
  };
}

// ------------------------------------------------------------------ user actions

/**
 * The language the customer was last written to in, else their country's. The customer has no
 * language of their own on record; the ledger remembers what they were sent.
 */
async function customerLocale(db: Db, user: User): Promise<NotificationLocale> {
  const [last] = await notificationsForUser(db, user.id, 1);
  return last?.locale ?? defaultLocale(user.country);
}

export type ActionResult = {
  tone: 'ok' | 'error' | 'info';
  text: string;
  requestId?: string;
  link?: string | null;
  errors?: Record<string, string>;
};

const QUEUED = 'Queued: Capa has not answered yet. This page will show the outcome when it lands.';

function waitMessage(r: WaitResult, done: string): Pick<ActionResult, 'tone' | 'text'> {
  switch (r.state) {
    case 'completed':
      return { tone: 'ok', text: done };
    case 'failed':
      return { tone: 'error', text: r.error };
    case 'queued':
      return { tone: 'info', text: QUEUED };
    case 'unavailable':
      return {
        tone: 'error',
        text: 'The job queue is unreachable, so nothing was sent. Try again in a minute; if it persists, tell the on-call engineer (Redis is down).',
      };
  }
}

export async function runUserAction(request: Request, who: SignedIn, userId: string, form: FormData): Promise<ActionResult> {
  const { db, queues } = await services();
  const user = await findUserById(db, userId);
  if (!user) throw new Response('No customer with this id.', { status: 404 });
  const values = formToObject(form);
  if (values.intent === 'create' && /^[A-Za-z0-9_-]{8,100}$/.test(values.requestId ?? '')) {
    // Retry sending the customer to Capa (after a failure or while the queue was down).
    if (user.capaSync === 'created') return { tone: 'info', text: 'This customer is already in Capa.' };
    const r = await queues.addAndWait(createCapaUser, { userId, requestedBy: who.operator.id, sendLink: null }, actionWait.ms, {
      jobId: `create-${userId}-${values.requestId}`,
    });
    await auditAction(request, who, {
      action: 'user.capa_create',
      targetType: 'user',
      targetId: userId,
      outcome: outcomeOf(r),
      detail: { job: 'jobId' in r ? r.jobId : null, ...(r.state === 'failed' || r.state === 'unavailable' ? { error: r.error } : {}) },
    });
    return { ...waitMessage(r, 'Customer created in Capa.'), requestId: values.requestId };
  }
  const parsed = UserActionSchema.safeParse(values);
  if (!parsed.success) return { tone: 'error', text: 'Check the form and try again.', errors: fieldErrors(parsed.error) };
  const a = parsed.data;
  if (a.intent === 'link') {
    const before = await activeLink(db, userId);
    // Resend means a new link, e-mailed like the first one unless the operator says not to.
    const emailLink = !a.noEmail;
    const locale = a.locale ?? (await customerLocale(db, user));
    const r = await queues.addAndWait(
      generateLink,
      { userId, country: a.country, redirectUri: null, requestId: a.requestId, requestedBy: who.operator.id, notify: emailLink, locale },
      actionWait.ms,
    );
    const res = r.state === 'completed' ? (r.result as { url?: string; linkId?: string } | null) : null;
    await auditAction(request, who, {
      action: before ? 'link.resend' : 'link.generate',
      targetType: 'user',
      targetId: userId,
      outcome: outcomeOf(r),
      detail: {
        country: a.country,
        emailLink,
        locale,
        job: 'jobId' in r ? r.jobId : null,
        ...(res?.linkId ? { linkId: res.linkId } : {}),
        ...(before ? { supersedes: before.id } : {}),
        ...(r.state === 'failed' || r.state === 'unavailable' ? { error: r.error } : {}),
      },
    });
    const done = `${before ? 'New link generated; the previous one is superseded.' : 'KYC link generated.'} ${emailLink ? 'It is being e-mailed to the customer.' : 'Not e-mailed.'}`;
    return { ...waitMessage(r, done), requestId: a.requestId, link: res?.url ?? null };
  }
  const r = await queues.addAndWait(fetchDetails, { userId, cause: `operator:${who.operator.id}`, requestId: a.requestId }, actionWait.ms);
  const res =
    r.state === 'completed'
      ? (r.result as {
          state?: string;
          changed?: boolean;
          found?: boolean;
          skipped?: string;
          unmapped?: string;
          verificationResult?: string | null;
        } | null)
      : null;
  await auditAction(request, who, {
    action: 'details.fetch',
    targetType: 'user',
    targetId: userId,
    outcome: outcomeOf(r),
    detail: {
      job: 'jobId' in r ? r.jobId : null,
      ...(res ? { result: res.state ?? res.skipped ?? null } : {}),
      ...(r.state === 'failed' || r.state === 'unavailable' ? { error: r.error } : {}),
    },
  });
  let done = 'KYC details fetched.';
  if (res?.skipped) done = `Nothing to fetch: ${res.skipped}.`;
  else if (res?.unmapped)
    done = `Capa returned a result we do not recognise (“${res.unmapped}”); the state was left as it is for a human to decide.`;
  else if (res && res.found === false) done = 'Capa has no KYC for this customer yet.';
  else if (res)
    done = `Capa says ${res.verificationResult ?? 'no result yet'}; state ${res.changed ? `changed to ${res.state}` : `stays ${res.state}`}.`;
  return { ...waitMessage(r, done), requestId: a.requestId };
}
