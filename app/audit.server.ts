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
import {
  auditChainHead,
  checkAuditAnchor,
  GENESIS,
  listAuditAnchors,
  verifyAuditChain,
  type AnchorCheck,
} from '../db/repositories/audit.js';
import { listOperators } from '../db/repositories/operators.js';
import { auditAction, roleAtLeast, type SignedIn } from './auth.server';
import { services } from './services.server';

/** The audit log page, its CSV export and the chain check (routes /audit and /audit.csv). */

const OUTCOMES = ['ok', 'error', 'denied', 'queued'] as const;

/** URL → filters. Malformed values are dropped and reported, never an error. */
export function parseAuditParams(sp: URLSearchParams): { filters: AuditFilters; before: number | null; problems: string[] } {
  const problems: string[] = [];
  const text = (k: string, max = 200) => sp.get(k)?.trim().slice(0, max) || null;
  const day = (k: string, label: string) => {
    const v = text(k, 20);
    if (v && !validDay(v)) {
      problems.push(`${label} “${v}” is not a date (YYYY-MM-DD); it was ignored.`);
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
    from: day('from', 'From'),
    to: day('to', 'To'),
    outcome: outcome && (OUTCOMES as readonly string[]).includes(outcome) ? (outcome as AuditFilters['outcome']) : null,
  };
  if (filters.from && filters.to && filters.from > filters.to) problems.push('“From” is after “To”: nothing can match.');
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
  const rows = iterateAudit(db, filters);
  const enc = new TextEncoder();
  let headerSent = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!headerSent) {
          headerSent = true;
          controller.enqueue(enc.encode(`${AUDIT_CSV_COLUMNS.join(',')}\r\n`));
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

export type VerifyResult = { kind: 'verify'; checkedAt: string } & (
  { ok: true; rows: number } | { ok: false; rows: number; brokenAtId: number; reason: string }
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
  return { kind: 'verify', ...r, checkedAt };
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

export type CompareResult = { kind: 'compare'; checkedAt: string } & ({ code: 'invalid' } | AnchorCheck);

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
  return { kind: 'compare', ...r, checkedAt };
}
