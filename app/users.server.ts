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
import { documentKinds } from './documents';
import { HIDDEN_FOR_ROLE, maskDeep, maskEmail, maskUrl } from './pii';
import type { Message } from './action-result';
import { jobFailureMessage } from './job-failures.server';
import { CreateUserSchema, formErrors, formToObject, UserActionSchema, type FormError } from './schemas';
import { services } from './services.server';
import { buildTimeline, stateReasonText } from './timeline.server';

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

/** Field errors are catalogue keys and values (`users:errors.*`), worded by the page. */
export type CreateUserOutcome =
  { ok: false; errors: Record<string, FormError>; values: Record<string, string> } | { ok: true; response: Response };

const isUniqueViolation = (err: unknown) => /unique|duplicate key/i.test(String((err as Error)?.message ?? err));

export async function createUserFromForm(request: Request, who: SignedIn, form: FormData): Promise<CreateUserOutcome> {
  const { db, queues } = await services();
  const values = formToObject(form);
  const parsed = CreateUserSchema.safeParse(values);
  if (!parsed.success) return { ok: false, errors: formErrors(parsed.error), values };
  const input = parsed.data;
  const claimKey = `console-create:${input.requestId}`;

  // A double click or a resubmitted form carries the same request id: show the first result.
  const prior = await peekClaim(db, claimKey);
  if (prior?.status === 'done' && prior.result) {
    const { userId } = prior.result as { userId: string };
    return { ok: true, response: redirect(`/users/${userId}`) };
  }

  const dupe = async (): Promise<Record<string, FormError> | null> => {
    if (await findUserByEmail(db, input.email)) return { email: { code: 'users:errors.email_taken' } };
    if (input.externalUserId && (await findUserByExternalId(db, input.externalUserId)))
      return { externalUserId: { code: 'users:errors.external_id_taken' } };
    return null;
  };
  const found = await dupe();
  if (found) {
    await auditAction(request, who, {
      action: 'user.create',
      targetType: 'user',
      targetId: null,
      outcome: 'error',
      detail: { reason: Object.values(found)[0]!.code },
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
      return { ok: false, errors: { form: { code: 'users:errors.already_submitted' } }, values };
    }
    await forget(db, claimKey).catch(() => {});
    if (isUniqueViolation(err)) {
      // Lost a race with another operator (or an import) between the check and the insert.
      const errors = (await dupe()) ?? { email: { code: 'users:errors.email_or_id_taken' } };
      await auditAction(request, who, {
        action: 'user.create',
        targetType: 'user',
        targetId: null,
        outcome: 'error',
        detail: { reason: Object.values(errors)[0]!.code },
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

/**
 * KYC details in readable sections. Titles and labels are catalogue keys (`users:details.*`);
 * values are Capa's data as it sent them, except `time` values, which the page shows in the
 * reader's time zone.
 */
export interface DetailSection {
  title: string;
  rows: DetailRow[];
  tone?: 'ok' | 'error' | 'warn';
}
export type DetailRow = [label: Message, value: string | Message, kind?: 'time'];

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

const label = (key: string, values?: Message['values']): Message =>
  values ? { code: `users:details.labels.${key}`, values } : { code: `users:details.labels.${key}` };
const section = (key: string) => `users:details.sections.${key}`;

/** KYC details in readable sections (masked first for roles without PII access). */
export function detailSections(raw: KycDetails, pii: boolean): DetailSection[] {
  const d = (pii ? raw : maskDeep(raw)) as KycDetails;
  const sections: DetailSection[] = [];
  const created = str(d.createdAt);
  sections.push({
    title: section('summary'),
    rows: [
      [label('verification_result'), str(d.aipriseSummary?.verificationResult)],
      [label('session'), str(d.verificationSessionId)],
      created === '—' ? [label('created'), created] : [label('created'), created, 'time'],
    ],
  });
  const id = d.idInfo;
  if (id) {
    sections.push({
      title: section('id_document'),
      tone: checkTone(id.status, id.result),
      rows: [
        [label('id_type'), str(id.idType)],
        [label('id_number'), str(id.idNumber)],
        [label('full_name'), str(id.fullName ?? [id.firstName, id.lastName].filter(Boolean).join(' '))],
        [label('birth_date'), str(id.birthDate)],
        [label('nationality'), str(id.nationality)],
        [label('issuing_country'), str(id.issueCountry ?? id.issueCountryCode)],
        [label('issued'), str(id.idIssueDate)],
        [label('expires'), str(id.idExpiryDate)],
        [label('address'), str(id.address?.fullAddress)],
        [label('status'), str(id.status)],
        [label('result'), str(id.result)],
        ...(id.statusReasons ?? []).map((r): DetailRow => [label('reason'), `${str(r.code)}: ${str(r.message)}`]),
      ],
    });
  }
  const fm = d.faceMatchInfo;
  if (fm)
    sections.push({
      title: section('face_match'),
      tone: checkTone(fm.status, fm.result),
      rows: [
        [label('score'), str(fm.faceMatchScore)],
        [label('status'), str(fm.status)],
        [label('result'), str(fm.result)],
      ],
    });
  const lv = d.faceLivenessInfo;
  if (lv)
    sections.push({
      title: section('liveness'),
      tone: checkTone(lv.status, lv.result),
      rows: [
        [label('status'), str(lv.status)],
        [label('result'), str(lv.result)],
      ],
    });
  const fr = d.fraudInsights;
  if (fr)
    sections.push({
      title: section('fraud'),
      tone: checkTone(fr.status, fr.result),
      rows: [
        [label('status'), str(fr.status)],
        [label('result'), str(fr.result)],
      ],
    });
  const aml = d.amlInfo;
  if (aml) {
    const hits = (aml.entityHits ?? []).map((h): DetailRow => [
      label('hit', { name: str(h.name) }),
      // Capa's codes and score; the catalogue frames them.
      {
        code: 'users:details.hit_value',
        values: { type: str(h.entityType), score: str(h.nameMatchScore), resolution: str(h.resolutionStatus) },
      },
    ]);
    sections.push({
      title: section('aml'),
      tone: (aml.numHits ?? hits.length) > 0 ? 'warn' : 'ok',
      rows: [[label('hits'), str(aml.numHits ?? hits.length)], ...hits],
    });
  }
  const pi = d.clientReferenceData?.personalInfo;
  if (pi)
    sections.push({
      title: section('personal'),
      rows: [
        [label('tax_id'), str(pi.taxId)],
        [label('phone'), str(pi.phoneNumber)],
        [label('profession'), str(pi.profession)],
        [label('birth_country'), str(pi.birthCountry)],
      ],
    });
  // Media (document photos, selfie) are not rows: their URLs never leave the server; the page
  // shows them through /users/:id/documents/:kind (see documentKinds).
  // A value masked away for the reader's role (a link inside Capa's data) is worded by the page.
  for (const sec of sections) {
    sec.rows = sec.rows.map((r): DetailRow => (r[1] === HIDDEN_FOR_ROLE ? [r[0], { code: 'users:details.hidden' }] : r));
  }
  return sections;
}

export async function userPageData(who: SignedIn, id: string) {
  const { db, dataKeys } = await services();
  const user = await findUserById(db, id);
  // The page's error boundary words it (`users:page.*`).
  if (!user) throw new Response('users:page.not_found', { status: 404 });
  const pii = canSeePii(who.operator.role);
  const [links, details, timeline, emailLocale] = await Promise.all([
    linksForUser(db, id),
    latestDetails<KycDetails>(db, id, dataKeys).catch((err: Error) => ({ error: err.message }) as const),
    buildTimeline({ db, user, canSeePii: pii }),
    customerLocale(db, user),
  ]);
  let detailsView: { fetchedAt: string; verificationResult: string | null; sections: DetailSection[] } | { error: Message } | null = null;
  if (details && 'error' in details) detailsView = { error: { code: 'users:details.unreadable', values: { detail: details.error } } };
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
      kycStateReason: stateReasonText(user.kycStateReason),
      kycStateCause: user.kycStateCause,
      capaConfirmedAt: user.capaConfirmedAt,
      capaSync: user.capaSync,
      capaSyncError: user.capaSyncError ? jobFailureMessage(user.capaSyncError) : null,
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
    documents: details && !('error' in details) ? documentKinds(details.details) : [],
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

/** What an action on the customer page answers: a tone and a message the page words, and what it made. */
export type ActionResult = Message & {
  tone: 'ok' | 'error' | 'info';
  requestId?: string;
  link?: string | null;
  errors?: Record<string, FormError>;
};

const say = (tone: ActionResult['tone'], key: string, values?: Message['values']): Pick<ActionResult, 'tone' | 'code' | 'values'> => ({
  tone,
  code: `users:actions.${key}`,
  ...(values ? { values } : {}),
});

function waitMessage(r: WaitResult, done: Message): Pick<ActionResult, 'tone' | 'code' | 'values'> {
  switch (r.state) {
    case 'completed':
      return { tone: 'ok', ...done };
    case 'failed':
      return { tone: 'error', ...jobFailureMessage(r.error) };
    case 'queued':
      return say('info', 'queued');
    case 'unavailable':
      return say('error', 'queue_down');
  }
}

/** Why fetch-details did nothing (its `skipped` codes), as `users:actions.fetch_skipped.<key>`. */
const SKIPPED: Record<string, string> = { 'missing user': 'customer_gone', 'not in Capa yet': 'not_in_capa_yet' };

export async function runUserAction(request: Request, who: SignedIn, userId: string, form: FormData): Promise<ActionResult> {
  const { db, queues } = await services();
  const user = await findUserById(db, userId);
  if (!user) throw new Response('users:page.not_found', { status: 404 });
  const values = formToObject(form);
  if (values.intent === 'create' && /^[A-Za-z0-9_-]{8,100}$/.test(values.requestId ?? '')) {
    // Retry sending the customer to Capa (after a failure or while the queue was down).
    if (user.capaSync === 'created') return say('info', 'already_in_capa');
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
    return { ...waitMessage(r, { code: 'users:actions.created_in_capa' }), requestId: values.requestId };
  }
  const parsed = UserActionSchema.safeParse(values);
  if (!parsed.success) return { ...say('error', 'check_form'), errors: formErrors(parsed.error) };
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
    const done = { code: `users:actions.${before ? 'link_resent' : 'link_generated'}_${emailLink ? 'emailed' : 'not_emailed'}` };
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
  // Capa's result is its own code (APPROVED, DECLINED…), shown as it is; the state is worded by the catalogue.
  let done: Message = { code: 'users:actions.details_fetched' };
  if (res?.skipped) done = { code: `users:actions.fetch_skipped.${SKIPPED[res.skipped] ?? 'other'}`, values: { skipped: res.skipped } };
  else if (res?.unmapped) done = { code: 'users:actions.fetch_unmapped', values: { result: res.unmapped } };
  else if (res && res.found === false) done = { code: 'users:actions.fetch_no_kyc' };
  else if (res) {
    const key = `fetch_${res.verificationResult ? 'result' : 'no_result'}_${res.changed ? 'changed' : 'stays'}`;
    done = { code: `users:actions.${key}`, values: { result: res.verificationResult ?? '', state: res.state ?? '' } };
  }
  return { ...waitMessage(r, done), requestId: a.requestId };
}
