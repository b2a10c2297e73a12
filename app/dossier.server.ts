import { Readable } from 'node:stream';
import PDFDocument from 'pdfkit';
import { fetchKycMedia } from '../capa/media.js';
import { ZipFile } from 'yazl';
import type { KycDetails } from '../capa/types.js';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { auditForTarget, verifyAuditChain } from '../db/repositories/audit.js';
import { caseHistoryForUser, tasksForUser } from '../db/repositories/cases.js';
import { detailsHistory } from '../db/repositories/details.js';
import { linksForUser } from '../db/repositories/links.js';
import { notificationsForUser } from '../db/repositories/notifications.js';
import { findUserById } from '../db/repositories/users.js';
import type { TFunction } from '../lib/i18n.js';
import { auditAction, type SignedIn } from './auth.server';
import { i18nFor } from './i18n.server';
import { DOCUMENT_KINDS, documentKinds, type DocumentKind } from './documents';
import { services } from './services.server';
import type { TimelineText, TimelineValue } from './timeline-entry';
import { buildTimeline } from './timeline.server';
import { detailSections } from './users.server';

/**
 * One customer's complete file for an auditor: identity, every KYC result, links, messages, case
 * notes and decisions, the timeline and the audit entries about the customer with the chain check.
 *
 * Generated inline, streamed while it is written: one customer's file is bounded (the timeline
 * and the ledger are capped below, KYC results are a handful per customer) and pdfkit writes
 * page by page, so the request never holds more than a page; a job with progress would add a
 * stored artefact holding personal data for no gain at this size.
 */

const MAX_ROWS = 5000;

export async function dossierData(id: string) {
  const { db, dataKeys } = await services();
  const user = await findUserById(db, id);
  if (!user) return null;
  const [results, links, messages, caseWork, tasks, timeline, audit, chain] = await Promise.all([
    detailsHistory<KycDetails>(db, id, dataKeys),
    linksForUser(db, id),
    notificationsForUser(db, id, MAX_ROWS),
    caseHistoryForUser(db, id),
    tasksForUser(db, id),
    buildTimeline({ db, user, canSeePii: true }, MAX_ROWS),
    auditForTarget(db, 'user', id, MAX_ROWS),
    verifyAuditChain(db),
  ]);
  return { generatedAt: new Date().toISOString(), user, results, links, messages, case: { ...caseWork, tasks }, timeline, audit, chain };
}

/** The latest result's pictures, read whole for embedding (PNG/JPEG only — what pdfkit draws); a failure is listed, not fatal. */
async function documentImages(d: Dossier): Promise<Array<{ kind: DocumentKind; image: Buffer | null; code?: string }>> {
  const { env } = await services();
  const latest = d.results.at(-1)?.details;
  const out: Array<{ kind: DocumentKind; image: Buffer | null; code?: string }> = [];
  for (const kind of documentKinds(latest)) {
    const url = latest?.media?.[DOCUMENT_KINDS[kind]];
    if (kind === 'selfie_video' || typeof url !== 'string') {
      out.push({ kind, image: null, code: 'not_embedded' });
      continue;
    }
    const got = await fetchKycMedia(url, {
      capaBaseUrl: env.capaBaseUrl,
      apiKey: env.CAPA_API_KEY,
      timeoutMs: Math.min(env.CAPA_TIMEOUT_MS, 8000),
      maxBytes: 10 * 1024 * 1024,
    });
    if (!got.ok || (got.contentType !== 'image/png' && got.contentType !== 'image/jpeg')) {
      if (got.ok) await got.body.cancel();
      out.push({ kind, image: null, code: got.ok ? 'not_embedded' : got.code });
      continue;
    }
    out.push({ kind, image: Buffer.from(await new Response(got.body).arrayBuffer()) });
  }
  return out;
}
export type Dossier = NonNullable<Awaited<ReturnType<typeof dossierData>>>;

async function load(request: Request, who: SignedIn, id: string, format: 'pdf' | 'zip'): Promise<Dossier> {
  const d = await dossierData(id);
  if (!d) throw new Response('evidence:dossier.not_found', { status: 404 });
  await auditAction(request, who, {
    action: AUDIT_ACTIONS.evidenceDossier,
    targetType: 'user',
    targetId: id,
    outcome: 'ok',
    detail: { format, results: d.results.length, auditEntries: d.audit.length, chainOk: d.chain.ok },
  });
  return d;
}

const fileName = (d: Dossier, ext: string) =>
  `dossier-${d.user.externalUserId.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60) || d.user.id}.${ext}`;

function text(t: TFunction, v: TimelineText | TimelineValue | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if ('time' in v) return v.time;
  const values = Object.fromEntries(
    Object.entries(v.values ?? {}).map(([k, x]) => [k, typeof x === 'object' && x !== null ? text(t, x as TimelineValue) : x]),
  );
  return t(v.code, values);
}

/** GET /users/:id/dossier.pdf */
export async function dossierPdfResponse(request: Request, who: SignedIn, id: string): Promise<Response> {
  const d = await load(request, who, id, 'pdf');
  const { t } = await i18nFor(request, 'evidence');
  const doc = new PDFDocument({ size: 'A4', margin: 48, info: { Title: t('dossier.title', { id: d.user.externalUserId }) } });
  const h = (s: string) => doc.moveDown(0.6).font('Helvetica-Bold').fontSize(13).text(s).font('Helvetica').fontSize(9).moveDown(0.2);
  const kv = (k: string, v: unknown) =>
    doc
      .font('Helvetica-Bold')
      .text(`${k}: `, { continued: true })
      .font('Helvetica')
      .text(v === null || v === undefined || v === '' ? '—' : String(v));
  const none = () => doc.fillColor('#666').text(t('dossier.none')).fillColor('#000');

  doc
    .font('Helvetica-Bold')
    .fontSize(18)
    .text(t('dossier.title', { id: d.user.externalUserId }));
  doc
    .font('Helvetica')
    .fontSize(9)
    .text(t('dossier.generated', { at: d.generatedAt, by: who.operator.email }));

  h(t('dossier.sections.identity'));
  const u = d.user;
  kv(t('dossier.fields.id'), u.id);
  kv(t('dossier.fields.external_id'), u.externalUserId);
  kv(t('dossier.fields.capa_id'), u.capaUserId);
  kv(t('dossier.fields.email'), u.email);
  kv(t('dossier.fields.alias'), u.alias);
  kv(t('dossier.fields.type'), u.type);
  kv(t('dossier.fields.country'), u.country);
  kv(t('dossier.fields.state'), `${t(`common:states.${u.kycState}`)} (${u.kycState}) — ${u.kycStateChangedAt}`);
  kv(t('dossier.fields.created'), u.createdAt);

  h(t('dossier.sections.results'));
  if (!d.results.length) none();
  for (const r of d.results) {
    doc
      .font('Helvetica-Bold')
      .text(t('dossier.result', { at: r.fetchedAt, result: r.verificationResult ?? '—' }))
      .font('Helvetica');
    for (const s of detailSections(r.details, true)) {
      doc.font('Helvetica-Oblique').text(t(s.title)).font('Helvetica');
      for (const [label, value] of s.rows) doc.text(`  ${text(t, label)}: ${text(t, value)}`);
    }
  }

  h(t('dossier.sections.documents'));
  const images = await documentImages(d);
  if (!images.length) none();
  for (const img of images) {
    doc
      .font('Helvetica-Bold')
      .text(t(`documents.kinds.${img.kind}`))
      .font('Helvetica');
    if (img.image) doc.image(img.image, { fit: [240, 150] }).moveDown(0.3);
    else
      doc
        .fillColor('#666')
        .text(t(`documents.${img.code ?? 'unavailable'}`))
        .fillColor('#000');
  }

  h(t('dossier.sections.links'));
  if (!d.links.length) none();
  for (const l of d.links) doc.text(`${l.createdAt}  ${l.status}  ${l.country ?? ''}  ${l.url}${l.endedAt ? `  (${l.endedAt})` : ''}`);

  h(t('dossier.sections.messages'));
  if (!d.messages.length) none();
  for (const m of d.messages)
    doc.text(
      `${m.createdAt}  ${m.kind}  ${m.channel}  ${m.address}  ${m.status}${m.subject ? `  «${m.subject}»` : ''}${m.failureReason ? `  ${m.failureReason}` : ''}`,
    );

  h(t('dossier.sections.case'));
  if (!d.case.notes.length && !d.case.events.length && !d.case.tasks.length) none();
  for (const n of d.case.notes) doc.text(`${n.at}  ${n.author}: ${n.body}`);
  for (const e of d.case.events) doc.text(`${e.at}  ${e.actor}  ${e.kind}  ${e.detail ?? ''}`);
  for (const k of d.case.tasks) doc.text(`${k.dueOn}  ${k.title}${k.doneAt ? `  ✓ ${k.doneAt}` : ''}`);

  h(t('dossier.sections.timeline'));
  if (!d.timeline.length) none();
  for (const e of [...d.timeline].reverse()) {
    const detail = text(t, e.detail);
    doc.text(`${e.at}  [${e.kind}] ${text(t, e.title)}${detail ? ` — ${detail}` : ''}`);
  }

  h(t('dossier.sections.audit'));
  kv(
    t('dossier.fields.chain'),
    d.chain.ok
      ? t('dossier.chain_ok', { rows: d.chain.rows })
      : t('dossier.chain_broken', { id: d.chain.brokenAtId, reason: d.chain.reason }),
  );
  if (!d.audit.length) none();
  for (const a of [...d.audit].reverse()) {
    doc.text(`#${a.id}  ${a.at}  ${a.actor}  ${a.action}  ${a.outcome}`);
    doc.fillColor('#555').text(`  prev ${a.prevHash}`).text(`  hash ${a.hash}`).fillColor('#000');
  }
  doc.end();
  return new Response(Readable.toWeb(doc) as ReadableStream<Uint8Array>, {
    headers: {
      'content-type': 'application/pdf',
      'content-disposition': `attachment; filename="${fileName(d, 'pdf')}"`,
      'cache-control': 'no-store',
    },
  });
}

/** GET /users/:id/dossier.zip — the same file as raw JSON, one document per part. */
export async function dossierZipResponse(request: Request, who: SignedIn, id: string): Promise<Response> {
  const d = await load(request, who, id, 'zip');
  const zip = new ZipFile();
  const add = (name: string, v: unknown) =>
    zip.addBuffer(Buffer.from(JSON.stringify(v, null, 2)), name, { mtime: new Date(d.generatedAt) });
  add('customer.json', d.user);
  add('kyc-results.json', d.results);
  add('links.json', d.links);
  add('messages.json', d.messages);
  add('case.json', d.case);
  add('timeline.json', d.timeline);
  add('audit.json', { chain: d.chain, entries: d.audit });
  add('manifest.json', { generatedAt: d.generatedAt, generatedBy: who.operator.email, customerId: d.user.id });
  zip.end();
  return new Response(Readable.toWeb(zip.outputStream as Readable) as ReadableStream<Uint8Array>, {
    headers: {
      'content-type': 'application/zip',
      'content-disposition': `attachment; filename="${fileName(d, 'zip')}"`,
      'cache-control': 'no-store',
    },
  });
}
