import { describe, expect, it } from 'vitest';
import { ALERT_RULE_IDS, checkOverride, decide, effectiveSettings, parseRuleOverrides, RULES, type OpenAlert } from './alerts.js';

const T0 = Date.parse('2026-11-29T02:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const settings = { forSeconds: 60, resolveSeconds: 120 };

describe('decide: flap protection', () => {
  it('opens a pending alert when the condition first holds, and nothing otherwise', () => {
    expect(decide(null, true, settings, T0)).toEqual({ do: 'open' });
    expect(decide(null, false, settings, T0)).toEqual({ do: 'none' });
  });

  it('fires only once the condition has held for forSeconds', () => {
    const pending: OpenAlert = { state: 'pending', pendingSince: at(0), resolvingSince: null };
    expect(decide(pending, true, settings, T0 + 59_999)).toEqual({ do: 'hold', clearResolving: false });
    expect(decide(pending, true, settings, T0 + 60_000)).toEqual({ do: 'fire' });
    // forSeconds 0: a pending alert fires at the same evaluation it was opened in.
    expect(decide(pending, true, { ...settings, forSeconds: 0 }, T0)).toEqual({ do: 'fire' });
  });

  it('drops a pending alert whose condition clears before it fired', () => {
    expect(decide({ state: 'pending', pendingSince: at(0), resolvingSince: null }, false, settings, T0 + 30_000)).toEqual({ do: 'drop' });
  });

  it('resolves only after the condition stayed false for resolveSeconds; a return in between keeps it firing', () => {
    for (const state of ['firing', 'acknowledged'] as const) {
      const firing: OpenAlert = { state, pendingSince: at(0), resolvingSince: null };
      expect(decide(firing, true, settings, T0 + 600_000)).toEqual({ do: 'hold', clearResolving: false });
      expect(decide(firing, false, settings, T0 + 600_000)).toEqual({ do: 'start_resolving' });
      const resolving: OpenAlert = { ...firing, resolvingSince: at(600) };
      expect(decide(resolving, false, settings, T0 + 719_999)).toEqual({ do: 'hold', clearResolving: false });
      expect(decide(resolving, false, settings, T0 + 720_000)).toEqual({ do: 'resolve' });
      expect(decide(resolving, true, settings, T0 + 700_000)).toEqual({ do: 'hold', clearResolving: true });
    }
  });

  it('resolves at once with no resolve delay', () => {
    expect(decide({ state: 'firing', pendingSince: at(0), resolvingSince: null }, false, { ...settings, resolveSeconds: 0 }, T0)).toEqual({
      do: 'resolve',
    });
  });

  it('moves nothing when the condition could not be measured', () => {
    expect(decide(null, null, settings, T0)).toEqual({ do: 'none' });
    for (const state of ['pending', 'firing', 'acknowledged'] as const) {
      expect(decide({ state, pendingSince: at(0), resolvingSince: at(1) }, null, settings, T0 + 10_000_000)).toEqual({
        do: 'hold',
        clearResolving: false,
      });
    }
  });

  it('treats a resolved alert as none open', () => {
    expect(decide({ state: 'resolved', pendingSince: at(0), resolvingSince: null }, true, settings, T0)).toEqual({ do: 'open' });
  });
});

describe('rule settings', () => {
  it('every rule has a page, a known evaluator and defaults within their bounds', () => {
    for (const id of ALERT_RULE_IDS) {
      const r = RULES[id];
      expect(r.id).toBe(id);
      expect(r.page.startsWith('/')).toBe(true);
      expect(checkOverride(id, { params: r.defaults.params })).toEqual([]);
    }
    // Only the rule about missing workers is left to the web process.
    expect(ALERT_RULE_IDS.filter((id) => RULES[id].evaluator === 'web')).toEqual(['workers.none']);
  });

  it('layers overrides over the defaults, ignoring parameters a rule does not have', () => {
    const s = effectiveSettings('capa.errors', { params: { percent: 50 } }, { forSeconds: 0, severity: 'warning', params: { nope: 1 } });
    expect(s).toMatchObject({ forSeconds: 0, severity: 'warning', resolveSeconds: RULES['capa.errors'].defaults.resolveSeconds });
    expect(s.params).toEqual({ ...RULES['capa.errors'].defaults.params, percent: 50 });
    expect(RULES['capa.errors'].defaults.params.percent).toBe(20); // the defaults themselves are untouched
  });

  it('reads ALERTS_RULES', () => {
    expect(
      parseRuleOverrides(
        'workers.none.forSeconds=5, webhooks.silent.windowSeconds=30,drift.spike.enabled=false,capa.errors.severity=warning',
      ),
    ).toEqual({
      'workers.none': { forSeconds: 5 },
      'webhooks.silent': { params: { windowSeconds: 30 } },
      'drift.spike': { enabled: false },
      'capa.errors': { severity: 'warning' },
    });
    expect(parseRuleOverrides(undefined)).toEqual({});
    expect(parseRuleOverrides('')).toEqual({});
  });

  it('refuses ALERTS_RULES entries it cannot apply, naming them', () => {
    expect(() => parseRuleOverrides('workers.none=5')).toThrow(/rule\.field=value/);
    expect(() => parseRuleOverrides('workers.nobody.forSeconds=5')).toThrow(/no rule workers\.nobody/);
    expect(() => parseRuleOverrides('workers.none.windowSeconds=5')).toThrow(/has no setting windowSeconds/);
    expect(() => parseRuleOverrides('capa.errors.percent=abc')).toThrow(/must be a number/);
    expect(() => parseRuleOverrides('capa.errors.percent=500')).toThrow(/capa\.errors\.percent must be between/);
    expect(() => parseRuleOverrides('capa.errors.enabled=maybe')).toThrow(/true or false/);
    expect(() => parseRuleOverrides('capa.errors.severity=fatal')).toThrow(/critical or warning/);
  });

  it('checks an admin override: parameters the rule has, within bounds', () => {
    expect(checkOverride('email.failures', { params: { percent: 0 } })).toEqual([
      { rule: 'email.failures', field: 'percent', code: 'out_of_range', min: 0.01, max: 100 },
    ]);
    expect(checkOverride('email.failures', { params: { waiting: 3 } })).toEqual([
      { rule: 'email.failures', field: 'waiting', code: 'unknown_param' },
    ]);
  });
});
