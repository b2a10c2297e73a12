import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loader as pdfLoader } from '../../app/routes/users.$id.dossier[.]pdf';
import { insertDetailsSnapshot } from '../../db/repositories/details.js';
import { insertUser } from '../../db/repositories/users.js';
import { loader as documentLoader } from '../../app/routes/users.$id.documents.$kind';
import { loader as userLoader } from '../../app/routes/users.$id';
import { createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { call, get, signInAs, type Browser } from './console-helpers.js';

/**
 * KYC documents through the console's proxy: real pictures from the sandbox over HTTP, refused to
 * viewers and for unknown customers or kinds, and the upstream URL (with its host and path) never
 * in anything the browser receives.
 */
let rt: TestRuntime;
let compliance: Browser & { operatorId: string };
let viewer: Browser & { operatorId: string };
let userId: string;
let mediaUrls: string[];

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  compliance = await signInAs(rt.db, 'compliance');
  viewer = await signInAs(rt.db, 'viewer');
  const u = await insertUser(rt.db, { email: 'docs@example.mx', externalUserId: 'DOCS-1', type: 'INDIVIDUAL', country: 'MX' });
  userId = u.id;
  const { userId: capaUserId } = await rt.capa.createUser({ type: 'INDIVIDUAL', email: 'docs@example.mx', externalUserId: 'DOCS-1' });
  rt.sandbox.setOutcome(capaUserId, 'VERIFIED');
  const details = await rt.capa.getKycDetails(capaUserId);
  expect(details?.media?.frontIdImageUrl).toBeTruthy();
  mediaUrls = Object.values(details!.media!).filter((v): v is string => typeof v === 'string');
  await insertDetailsSnapshot(
    rt.db,
    { userId, details, verificationResult: 'APPROVED', mappedState: 'VERIFIED', cause: 'test' },
    rt.services.dataKeys,
  );
}, 60_000);

afterAll(async () => {
  await rt?.close();
});

async function doc(b: Browser | null, kind: string, id = userId) {
  try {
    const res: Response = await documentLoader({
      request: get(`/users/${id}/documents/${kind}`, b),
      params: { id, kind },
      context: {},
    } as never);
    return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
  } catch (err) {
    if (!(err instanceof Response)) throw err;
    return { status: err.status, headers: err.headers, bytes: Buffer.from(await err.arrayBuffer()) };
  }
}

describe('document proxy', () => {
  it('passes the real PNG through for compliance, never cached, and audits the view', async () => {
    for (const kind of ['id_front', 'id_back', 'selfie']) {
      const r = await doc(compliance, kind);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('image/png');
      expect(r.headers.get('cache-control')).toContain('no-store');
      expect([...r.bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      for (const u of mediaUrls) expect(r.bytes.toString('latin1')).not.toContain(new URL(u).pathname);
    }
    const audits = await rt.db
      .selectFrom('auditLog')
      .selectAll()
      .where('action', '=', 'evidence.document')
      .where('targetId', '=', userId)
      .execute();
    expect(audits.filter((a) => a.outcome === 'ok')).toHaveLength(3);
  });

  it('refuses viewers (withheld, audited) and anonymous callers', async () => {
    const r = await doc(viewer, 'id_front');
    expect(r.status).toBe(403);
    expect(r.bytes.subarray(0, 4).toString('latin1')).not.toBe('\x89PNG');
    const denied = await rt.db
      .selectFrom('auditLog')
      .select('outcome')
      .where('action', '=', 'evidence.document')
      .where('operatorId', '=', viewer.operatorId)
      .execute();
    expect(denied.map((d) => d.outcome)).toEqual(['denied']);
    const anon = await doc(null, 'id_front');
    expect([302, 401]).toContain(anon.status);
  });

  it('answers 404 for a foreign id, an unknown kind and a document the result does not name', async () => {
    expect((await doc(compliance, 'id_front', 'not-a-customer')).status).toBe(404);
    expect((await doc(compliance, 'passport')).status).toBe(404);
    expect((await doc(compliance, 'selfie_video')).status).toBe(404);
    const other = await insertUser(rt.db, { email: 'nodocs@example.mx', externalUserId: 'DOCS-2', type: 'INDIVIDUAL', country: 'MX' });
    expect((await doc(compliance, 'id_front', other.id)).status).toBe(404);
  });

  it('the customer page names the documents but never their URLs, for any role', async () => {
    for (const b of [compliance, viewer]) {
      const page = await call(userLoader, get(`/users/${userId}`, b), { id: userId });
      expect(page.data.documents).toEqual(['id_front', 'id_back', 'selfie']);
      const json = JSON.stringify(page.data);
      for (const u of mediaUrls) {
        expect(json).not.toContain(u);
        expect(json).not.toContain(new URL(u).pathname);
      }
      expect(json).not.toContain(rt.env.CAPA_API_KEY);
    }
  });

  it('the dossier PDF embeds the pictures', async () => {
    const res: Response = await pdfLoader({
      request: get(`/users/${userId}/dossier.pdf`, compliance),
      params: { id: userId },
      context: {},
    } as never);
    const file = join(mkdtempSync(join(tmpdir(), 'dossier-img-')), 'd.pdf');
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const list = execFileSync('pdfimages', ['-list', file], { encoding: 'utf8' }).trim().split('\n').slice(2);
    expect(list).toHaveLength(3);
    const text = execFileSync('pdftotext', [file, '-'], { encoding: 'utf8' });
    expect(text).toContain('ID front');
    expect(text).toContain('Selfie');
  });
});
