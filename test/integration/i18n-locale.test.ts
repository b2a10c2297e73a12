import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperator } from '../../app/operator-accounts.server.js';
import { AUDIT_ACTIONS } from '../../db/repositories/audit-actions.js';
import { operatorPreferences, setOperatorPreferences } from '../../db/repositories/operators.js';
import { createFormatters } from '../../lib/i18n.js';
import { createTestDb, createTestRuntime, type TestRuntime } from '../support/runtime.js';
import { startBuiltApp } from '../support/web.js';

/**
 * Which language and time zone the real built app answers in, over HTTP: the operator's own
 * setting, else Accept-Language, else DEFAULT_LOCALE; the header's switch and /account store the
 * setting (audited) and the next page follows it.
 */
const PASSWORD = 'correct horse battery';

let rt: TestRuntime;
let server: Server;
let base: string;
const ids = { ana: '', bob: '' };

beforeAll(async () => {
  rt = await createTestRuntime({ worker: false });
  ({ server, base } = await startBuiltApp());
  ids.ana = (await createOperator(rt.db, { email: 'ana@desk.test', name: 'Ana Analista', role: 'compliance', password: PASSWORD })).id;
  ids.bob = (await createOperator(rt.db, { email: 'bob@desk.test', name: 'Bob Builder', role: 'viewer', password: PASSWORD })).id;
  await setOperatorPreferences(rt.db, ids.ana, { locale: 'es', timeZone: 'America/Mexico_City' });
}, 120_000);

afterAll(async () => {
  await new Promise((r) => (server ? server.close(r) : r(null)));
  await rt?.close();
});

async function signIn(email: string): Promise<string> {
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
    body: new URLSearchParams({ email, password: PASSWORD, next: '/' }),
  });
  expect(res.status).toBe(302);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

async function page(path: string, cookie: string | null, headers: Record<string, string> = {}): Promise<{ status: number; html: string }> {
  const res = await fetch(`${base}${path}`, { headers: { ...(cookie ? { cookie } : {}), ...headers } });
  return { status: res.status, html: await res.text() };
}

const lang = (html: string) => /<html lang="([^"]+)"/.exec(html)?.[1];
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1]!;

describe('the language of a page', () => {
  it('an operator with Spanish set gets <html lang="es">, the Spanish header, nav and dashboard, whatever the browser asks for', async () => {
    const cookie = await signIn('ana@desk.test');
    const { status, html } = await page('/', cookie, { 'accept-language': 'en-US,en;q=0.9' });
    expect(status).toBe(200);
    expect(lang(html)).toBe('es');
    expect(html).toContain('aria-label="Principal"');
    for (const word of [
      '>Clientes<',
      '>Revisión<',
      '>Importaciones<',
      '>Cerrar sesión<',
      '>Clientes por estado<',
      '>Embudo<',
      '>Los que más esperan<',
    ])
      expect(html).toContain(word);
    for (const english of ['>Users<', '>Sign out<', '>Customers by state<', '>Waiting longest<', '>Funnel<'])
      expect(html).not.toContain(english);
    // The switch offers the other language, named in that language.
    expect(html).toMatch(/<button[^>]*name="locale"[^>]*value="en"[^>]*lang="en"[^>]*>English<\/button>/);
    expect(html).toContain('<title>Inicio — KYC Desk</title>');
  });

  it('an operator without a setting gets the browser language: the first one we speak, in order of preference', async () => {
    const cookie = await signIn('bob@desk.test');
    expect(lang((await page('/', cookie, { 'accept-language': 'es-MX,es;q=0.9,en;q=0.8' })).html)).toBe('es');
    expect(lang((await page('/', cookie, { 'accept-language': 'fr-FR,fr;q=0.9,es;q=0.8,en;q=0.7' })).html)).toBe('es');
    expect(lang((await page('/', cookie, { 'accept-language': 'en-GB,en;q=0.9,es;q=0.5' })).html)).toBe('en');
    const spanish = (await page('/', cookie, { 'accept-language': 'es-DO' })).html;
    expect(spanish).toContain('>Clientes<');
    expect(spanish).toContain('>consulta<'); // the role, in Spanish
  });

  it('with no usable Accept-Language: DEFAULT_LOCALE (en unless set), for operators and for the sign-in page', async () => {
    const cookie = await signIn('bob@desk.test');
    expect(lang((await page('/', cookie)).html)).toBe('en');
    expect(lang((await page('/', cookie, { 'accept-language': 'de-DE,fr;q=0.5' })).html)).toBe('en');
    expect(lang((await page('/', cookie, { 'accept-language': ';;;q=x,,' })).html)).toBe('en');
    const before = rt.services.env.DEFAULT_LOCALE;
    try {
      rt.services.env.DEFAULT_LOCALE = 'es';
      const home = (await page('/', cookie, { 'accept-language': 'de-DE' })).html;
      expect(lang(home)).toBe('es');
      expect(home).toContain('>Clientes<');
      const login = (await page('/login', null)).html;
      expect(lang(login)).toBe('es');
      expect(login).toContain('Inicia sesión en KYC Desk');
      expect(login).toContain('<title>Iniciar sesión — KYC Desk</title>');
      // The browser still wins over the instance default.
      expect(lang((await page('/login', null, { 'accept-language': 'en' })).html)).toBe('en');
    } finally {
      rt.services.env.DEFAULT_LOCALE = before;
    }
  });

  it('a sign-in refusal is worded in the page language', async () => {
    const res = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base, 'accept-language': 'es-MX' },
      body: new URLSearchParams({ email: 'nobody@desk.test', password: 'wrong-password-1' }),
    });
    expect(res.status).toBe(401);
    const html = await res.text();
    expect(lang(html)).toBe('es');
    expect(html).toContain('Ese correo y esa contraseña no corresponden a un operador activo.');
  });
});

describe('the operator setting', () => {
  it("the header switch stores the operator's language (audited) and returns to the same page, now in that language", async () => {
    const cookie = await signIn('ana@desk.test');
    const before = await page('/account', cookie);
    expect(lang(before.html)).toBe('es');
    const since = new Date(Date.now() - 1000).toISOString();
    const res = await fetch(`${base}/account/language`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base, cookie },
      body: new URLSearchParams({ csrf: csrfOf(before.html), locale: 'en', returnTo: '/users?state=REJECTED' }),
    });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/users?state=REJECTED');
    expect(await operatorPreferences(rt.db, ids.ana)).toEqual({ locale: 'en', timeZone: 'America/Mexico_City' });
    const after = await page('/', cookie, { 'accept-language': 'es-MX' });
    expect(lang(after.html)).toBe('en');
    expect(after.html).toContain('>Sign out<');
    const audit = await rt.db
      .selectFrom('auditLog')
      .select(['actor', 'targetId', 'detail'])
      .where('action', '=', AUDIT_ACTIONS.operatorPreferences)
      .where('at', '>=', since)
      .execute();
    expect(audit.map((a) => [a.actor, a.targetId, JSON.parse(a.detail ?? 'null')])).toEqual([
      [
        'ana@desk.test',
        ids.ana,
        { from: { locale: 'es', timeZone: 'America/Mexico_City' }, to: { locale: 'en', timeZone: 'America/Mexico_City' } },
      ],
    ]);

    // Back to Spanish; a return address off our site is refused (it goes home).
    const html = (await page('/', cookie)).html;
    const back = await fetch(`${base}/account/language`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base, cookie },
      body: new URLSearchParams({ csrf: csrfOf(html), locale: 'es', returnTo: '//evil.example/x' }),
    });
    expect(back.headers.get('location')).toBe('/');
    expect((await operatorPreferences(rt.db, ids.ana))?.locale).toBe('es');
  });

  it('the switch refuses a language we do not speak, and a form from another site, and stores nothing', async () => {
    const cookie = await signIn('bob@desk.test');
    const html = (await page('/', cookie)).html;
    const post = (fields: Record<string, string>, origin = base) =>
      fetch(`${base}/account/language`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin, cookie, 'accept-language': 'es' },
        body: new URLSearchParams({ csrf: csrfOf(html), ...fields }),
      });
    const fr = await post({ locale: 'fr', returnTo: '/' });
    expect(fr.status).toBe(400);
    expect(await fr.text()).toContain('Elige un idioma y una zona horaria de las listas.');
    expect((await post({ locale: 'en', returnTo: '/' }, 'https://evil.example')).status).toBe(403);
    expect(await operatorPreferences(rt.db, ids.bob)).toEqual({ locale: null, timeZone: null });
  });

  it('/account saves language and time zone; times on the page follow the time zone; "automatic" clears the setting', async () => {
    const cookie = await signIn('bob@desk.test');
    const form = (await page('/account', cookie)).html;
    expect(form).toContain('Automatic: my browser&#x27;s language, else English');
    expect(form).toContain('This installation&#x27;s default (UTC)');
    const save = (fields: Record<string, string>) =>
      fetch(`${base}/account`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base, cookie },
        body: new URLSearchParams({ csrf: csrfOf(form), intent: 'preferences', ...fields }),
      });
    const bad = await save({ locale: 'es', timeZone: 'Europe/Madrid' });
    expect(bad.status).toBe(400);
    expect(await operatorPreferences(rt.db, ids.bob)).toEqual({ locale: null, timeZone: null });

    const ok = await save({ locale: 'es', timeZone: 'America/Santo_Domingo' });
    expect(ok.status).toBe(302);
    expect(ok.headers.get('location')).toBe('/account?flash=preferences-saved');
    expect(await operatorPreferences(rt.db, ids.bob)).toEqual({ locale: 'es', timeZone: 'America/Santo_Domingo' });
    const t0 = Date.now();
    const saved = (await page('/account?flash=preferences-saved', cookie)).html;
    const t1 = Date.now();
    expect(lang(saved)).toBe('es');
    expect(saved).toContain('Se guardaron tu idioma y tu zona horaria.');
    // "Ahora: 29 nov 2026, 16:05 (Santo Domingo)" — the clock of the request, in the operator's zone.
    const sd = createFormatters('es-MX', 'America/Santo_Domingo');
    const now = /data-testid="local-time">([^<]+)</.exec(saved)![1]!;
    expect([`Ahora: ${sd.dateTime(t0)} (Santo Domingo)`, `Ahora: ${sd.dateTime(t1)} (Santo Domingo)`]).toContain(now);

    const auto = await save({ locale: '', timeZone: '' });
    expect(auto.status).toBe(302);
    expect(await operatorPreferences(rt.db, ids.bob)).toEqual({ locale: null, timeZone: null });
  });
});

describe('stored values', () => {
  for (const kind of ['sqlite', 'postgres'] as const) {
    it(`${kind}: the repository and the database both refuse a language or time zone outside the lists`, async () => {
      const t = await createTestDb(kind);
      try {
        const op = await createOperator(t.db, { email: `x-${kind}@desk.test`, name: 'X', role: 'viewer', password: PASSWORD });
        expect(await operatorPreferences(t.db, op.id)).toEqual({ locale: null, timeZone: null });
        await expect(setOperatorPreferences(t.db, op.id, { locale: 'fr' as 'es', timeZone: null })).rejects.toThrow(/unsupported language/);
        await expect(setOperatorPreferences(t.db, op.id, { locale: null, timeZone: 'Europe/Madrid' as 'UTC' })).rejects.toThrow(
          /unsupported time zone/,
        );
        // Past the repository, the column's own check.
        await expect(
          t.db
            .updateTable('operators')
            .set({ locale: 'fr' as 'es' })
            .where('id', '=', op.id)
            .execute(),
        ).rejects.toThrow(/check/i);
        await expect(
          t.db
            .updateTable('operators')
            .set({ timeZone: 'Europe/Madrid' as 'UTC' })
            .where('id', '=', op.id)
            .execute(),
        ).rejects.toThrow(/check/i);
        expect(await setOperatorPreferences(t.db, op.id, { locale: 'en', timeZone: 'UTC' })).toBe(true);
        expect(await operatorPreferences(t.db, op.id)).toEqual({ locale: 'en', timeZone: 'UTC' });
      } finally {
        await t.close();
      }
    });
  }
});
