import { AUDIT_ACTION_GROUPS, AUDIT_ACTION_LIST, AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import {
  AUDIT_CSV_COLUMNS,
  auditCsvRow,
  countAudit,
  iterateAudit,
  listAudit,
  validDay,
  type AuditFilters,
} from '../db/repositories/audit-query.js';
import { z } from 'zod';
import { csvField } from '../lib/csv.js';
import {
  auditChainHead,
  checkAuditAnchor,
  GENESIS,
  listAuditAnchors,
  verifyAuditChain,
  type AnchorCheck,
} from '../db/repositories/audit.js';
import { listOperators } from '../db/repositories/operators.js';
import type { Message } from './action-result';
import { auditAction, roleAtLeast, type SignedIn } from './auth.server';
import { i18nFor } from './i18n.server';
import { services } from './services.server';

/** The audit log page, its CSV export and the chain check (routes /audit and /audit.csv). */

const OUTCOMES = ['ok', 'error', 'denied', 'queued'] as const;

/** URL → filters. Malformed values are dropped and reported, never an error. */
export function parseAuditParams(sp: URLSearchParams): { filters: AuditFilters; before: number | null; problems: Message[] } {
  const problems: Message[] = [];
  const text = (k: string, max = 200) => sp.get(k)?.trim().slice(0, max) || null;
  const day = (k: 'from' | 'to') => {
    const v = text(k, 20);
    if (v && !validDay(v)) {
      problems.push({ code: `audit:problems.${k}_not_a_date`, values: { value: v } });
      return null;
    }
    return v;
  };
  const action = text('action', 100);
  const outcome = text('outcome', 20);
  const before = sp.get('before');
  const filters: AuditFilters = {
    operator: text('operator'),
    action,
    target: text('target'),
    from: day('from'),
    to: day('to'),
    outcome: outcome && (OUTCOMES as readonly string[]).includes(outcome) ? (outcome as AuditFilters['outcome']) : null,
  };
  if (filters.from && filters.to && filters.from > filters.to) problems.push({ code: 'audit:problems.from_after_to' });
  return { filters, before: before && /^\d{1,15}$/.test(before) ? Number(before) : null, problems };
}

export async function auditPageData(who: SignedIn, sp: URLSearchParams) {
  const { db } = await services();
  const { filters, before, problems } = parseAuditParams(sp);
  const [page, total, operators, chain, anchors] = await Promise.all([
    listAudit(db, filters, { before, limit: 100 }),
    countAudit(db, filters),
    listOperators(db),
    auditChainHead(db),
    listAuditAnchors(db, 10),
  ]);
  return {
    rows: page.rows,
    nextBefore: page.nextBefore,
    total,
    filters,
    problems,
    actions: AUDIT_ACTION_LIST,
    groups: AUDIT_ACTION_GROUPS,
    operators: operators.map((o) => ({ id: o.id, email: o.email, name: o.name })),
    canVerify: roleAtLeast(who.operator.role, 'admin'),
    chain,
    anchors: anchors.map((a) => ({ id: a.id, at: a.at, count: a.rowCount, head: a.headHash })),
  };
}

/**
 * The filtered log as CSV, streamed in batches (constant memory whatever the size). The export
 * itself is audited: who took a copy of the log, and with which filters.
 */
export async function auditCsvResponse(request: Request, who: SignedIn, sp: URLSearchParams): Promise<Response> {
  const { db } = await services();
  const { filters } = parseAuditParams(sp);
  await auditAction(request, who, {
    action: AUDIT_ACTIONS.auditExport,
    targetType: 'audit_log',
    targetId: null,
    outcome: 'ok',
    detail: { filters },
  });
  // Column names in the reader's language; the rows keep the log's own codes (what was recorded).
  const { t } = await i18nFor(request, 'audit');
  const header = AUDIT_CSV_COLUMNS.map((c) => csvField(t(`csv.columns.${c}`))).join(',');
  const rows = iterateAudit(db, filters);
  const enc = new TextEncoder();
  let headerSent = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!headerSent) {
          headerSent = true;
          controller.enqueue(enc.encode(`${header}\r\n`));
        }
        let chunk = '';
        for (let i = 0; i < 200; i++) {
          const next = await rows.next();
          if (next.done) {
            if (chunk) controller.enqueue(enc.encode(chunk));
            controller.close();
            return;
          }
          chunk += auditCsvRow(next.value);
        }
        controller.enqueue(enc.encode(chunk));
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      await rows.return(undefined);
    },
  });
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
  return new Response(stream, {
    status: 200,
    headers: {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="kyc-desk-audit-${stamp}.csv"`,
      'cache-control': 'no-store',
    },
  });
}

/** Why the chain broke, as a code the page words (`audit:chain_reasons.*`); unknown text as it is. */
export type ChainReason = 'missing_row' | 'content_changed' | 'other';
export function chainReason(text: string): { reasonCode: ChainReason; reasonText: string } {
  if (/^a row is missing/.test(text)) return { reasonCode: 'missing_row', reasonText: text };
  if (/^row content does not match/.test(text)) return { reasonCode: 'content_changed', reasonText: text };
  return { reasonCode: 'other', reasonText: text };
}

export type VerifyResult = { kind: 'verify'; checkedAt: string } & (
  { ok: true; rows: number } | { ok: false; rows: number; brokenAtId: number; reason: string; reasonCode: ChainReason; reasonText: string }
);

/** Walks the hash chain (admin). The check is audited with its result. */
export async function verifyChain(request: Request, who: SignedIn): Promise<VerifyResult> {
  const { db } = await services();
  const r = await verifyAuditChain(db);
  const checkedAt = new Date().toISOString();
  await auditAction(request, who, {
    action: AUDIT_ACTIONS.auditVerify,
    targetType: 'audit_log',
    targetId: r.ok ? null : String(r.brokenAtId),
    outcome: r.ok ? 'ok' : 'error',
    detail: r.ok ? { rows: r.rows } : { rows: r.rows, brokenAtId: r.brokenAtId, reason: r.reason },
  });
  return r.ok ? { kind: 'verify', ...r, checkedAt } : { kind: 'verify', ...r, ...chainReason(r.reason), checkedAt };
}

const AnchorSchema = z.object({
  // A sha256 in hex, as the anchor line and /audit print it (or GENESIS for an empty log).
  head: z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => /^[0-9a-f]{64}$/.test(v) || v === GENESIS.toLowerCase())
    .transform((v) => (v === GENESIS.toLowerCase() ? GENESIS : v)),
  count: z
    .string()
    .trim()
    .regex(/^\d{1,12}$/)
    .transform(Number),
});

export type CompareResult = { kind: 'compare'; checkedAt: string } & (
  | { code: 'invalid' }
  | Exclude<AnchorCheck, { code: 'broken' }>
  | (Extract<AnchorCheck, { code: 'broken' }> & ReturnType<typeof chainReason>)
);

/**
 * Compares a saved anchor (head hash + row count, e.g. from the log stream) with today's chain:
 * does the chain still verify up to that row, with that hash there? The check is audited.
 */
export async function compareAnchor(request: Request, who: SignedIn, form: FormData): Promise<CompareResult> {
  const { db } = await services();
  const checkedAt = new Date().toISOString();
  const parsed = AnchorSchema.safeParse({ head: form.get('head') ?? '', count: form.get('count') ?? '' });
  if (!parsed.success) return { kind: 'compare', code: 'invalid', checkedAt };
  const r = await checkAuditAnchor(db, parsed.data);
  await auditAction(request, who, {
    action: AUDIT_ACTIONS.auditAnchorCompare,
    targetType: 'audit_log',
    targetId: String(parsed.data.count),
    outcome: r.code === 'match' ? 'ok' : 'error',
    detail: { ...r },
  });
  return r.code === 'broken' ? { kind: 'compare', ...r, ...chainReason(r.reason), checkedAt } : { kind: 'compare', ...r, checkedAt };
}
