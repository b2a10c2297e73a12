import { describe, expect, it } from 'vitest';
import { dueStates, retentionCutoff, retentionPolicy } from './retention.js';

describe('retention policy', () => {
  const env = {
    RETENTION_NOT_STARTED_YEARS: 1,
    RETENTION_LINK_ISSUED_YEARS: 1,
    RETENTION_IN_PROGRESS_YEARS: 2,
    RETENTION_VERIFIED_YEARS: 0,
    RETENTION_REJECTED_YEARS: 5,
    RETENTION_REVIEW_NEEDED_YEARS: 0,
  };

  it('reads one value per state and erases only the states with years', () => {
    const now = Date.parse('2030-06-15T12:00:00.000Z');
    expect(dueStates(retentionPolicy(env), now)).toEqual([
      { state: 'NOT_STARTED', years: 1, before: '2029-06-15T12:00:00.000Z' },
      { state: 'LINK_ISSUED', years: 1, before: '2029-06-15T12:00:00.000Z' },
      { state: 'IN_PROGRESS', years: 2, before: '2028-06-15T12:00:00.000Z' },
      { state: 'REJECTED', years: 5, before: '2025-06-15T12:00:00.000Z' },
    ]);
    expect(
      dueStates(
        retentionPolicy({
          ...env,
          RETENTION_NOT_STARTED_YEARS: 0,
          RETENTION_LINK_ISSUED_YEARS: 0,
          RETENTION_IN_PROGRESS_YEARS: 0,
          RETENTION_REJECTED_YEARS: 0,
        }),
        now,
      ),
    ).toEqual([]);
  });

  it('counts calendar years', () => {
    expect(retentionCutoff(1, Date.parse('2028-02-29T00:00:00.000Z'))).toBe('2027-03-01T00:00:00.000Z');
    expect(retentionCutoff(10, Date.parse('2035-01-01T00:00:00.000Z'))).toBe('2025-01-01T00:00:00.000Z');
  });
});
