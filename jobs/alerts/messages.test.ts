import { describe, expect, it } from 'vitest';
import type { Alert } from '../../db/schema.js';
import { ALERT_RULE_IDS } from '../../domain/alerts.js';
import en from './locales/en.json';
import es from './locales/es.json';
import { alertWebhookBody, renderAlertEmail, ruleSummary, ruleTitle, voice } from './messages.js';

function keys(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' ? keys(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

const alert: Alert = {
  id: 'a1',
  ruleId: 'imports.paused',
  openKey: 'imports.paused',
  state: 'firing',
  severity: 'warning',
  pendingSince: '2026-11-29T08:00:00.000Z',
  firedAt: '2026-11-29T08:00:00.000Z',
  acknowledgedAt: null,
  acknowledgedBy: null,
  acknowledgedByName: null,
  ackReason: null,
  resolvingSince: null,
  resolvedAt: null,
  resolvedReason: null,
  value: 1,
  peakValue: 1,
  measure: JSON.stringify({ imports: 1, fileName: '<b>night</b>.csv', pausedSeconds: 3900 }),
  settings: '{}',
  page: '/imports/i1',
  silenceId: null,
  notifiedAt: null,
  resolutionNotifiedAt: null,
  evaluatedAt: '2026-11-29T09:05:00.000Z',
  updatedAt: '2026-11-29T09:05:00.000Z',
};

describe('alert messages', () => {
  it('say the same things in Spanish and English, with the same variables, for every rule', () => {
    expect(keys(es).sort()).toEqual(keys(en).sort());
    const vars = (s: string) => [...s.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]).sort();
    const flat = (o: Record<string, unknown>) =>
      new Map(keys(o).map((k) => [k, k.split('.').reduce<unknown>((x, p) => (x as Record<string, unknown>)[p], o) as string]));
    const [fe, fs] = [flat(en), flat(es)];
    for (const [k, v] of fe) expect(vars(fs.get(k)!), k).toEqual(vars(v));
    for (const id of ALERT_RULE_IDS) {
      for (const lng of ['es', 'en'] as const) {
        const v = voice(lng, 'UTC');
        expect(ruleTitle(id, v)).not.toContain('rules.');
        expect(ruleSummary(id, {}, v)).not.toContain('rules.');
      }
    }
  });

  it('word figures in the reader’s language and time zone', () => {
    const es = voice('es', 'America/Mexico_City');
    expect(ruleSummary('webhooks.silent', { silentSeconds: 5400, customers: 2, lastValidAt: '2026-11-29T08:00:00.000Z' }, es)).toBe(
      'Ningún webhook válido en 1 h 30 min mientras 2 clientes esperan respuesta de Capa (último webhook válido: 29 nov 2026, 02:00).',
    );
    expect(ruleSummary('webhooks.silent', { silentSeconds: 60, customers: 1, lastValidAt: null }, voice('en', 'UTC'))).toBe(
      'No valid webhook for 1 min while 1 customer waits on Capa (last valid webhook: never).',
    );
  });

  it('render the e-mail with every value escaped in HTML and links to the alert and its page', () => {
    const r = renderAlertEmail('alert_firing', alert, voice('en', 'UTC'), 'https://desk.example');
    expect(r.subject).toBe('[KYC Desk · warning] Import paused by a Capa outage');
    expect(r.text).toContain('The import <b>night</b>.csv has been paused for 1 hr 5 min');
    expect(r.html).toContain('&lt;b&gt;night&lt;/b&gt;.csv');
    expect(r.html).not.toContain('<b>night</b>');
    expect(r.text).toContain('https://desk.example/alerts?alert=a1#alert-a1');
    expect(r.text).toContain('https://desk.example/imports/i1');
    const resolved = renderAlertEmail(
      'alert_resolved',
      { ...alert, state: 'resolved', resolvedAt: '2026-11-29T10:00:00.000Z' },
      voice('es', 'UTC'),
      'https://desk.example',
    );
    expect(resolved.subject).toBe('[KYC Desk · resuelta] Importación pausada por una caída de Capa');
    expect(resolved.text).toContain('Resuelta: 29 nov 2026, 10:00');
  });

  it('build a Slack-compatible body, or KYC Desk’s own JSON', () => {
    const slack = JSON.parse(
      alertWebhookBody('alert_firing', alert, 'n1', 'slack', voice('en', 'UTC'), 'https://desk.example', 'now').body,
    );
    expect(Object.keys(slack)).toEqual(['text']);
    expect(slack.text).toContain('warning alert: Import paused by a Capa outage');
    expect(slack.text).toContain('<https://desk.example/alerts?alert=a1#alert-a1|Open in KYC Desk>');
    const json = JSON.parse(
      alertWebhookBody('alert_resolved', alert, 'n1', 'json', voice('en', 'UTC'), 'https://desk.example', 'now').body,
    );
    expect(json).toMatchObject({ event: 'alert.resolved', deliveryId: 'n1', alert: { rule: 'imports.paused', values: { imports: 1 } } });
  });
});
