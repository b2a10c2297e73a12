import { z } from 'zod';
import { defineJob } from '../types.js';
import { IMPORT_CAPA_JOB } from './capa-job-options.js';

export const ImportRowPayload = z.object({
  importId: z.string().min(1).max(64),
  rowNo: z.number().int().positive(),
  gen: z.number().int().nonnegative(),
});

/**
 * One import row: create the customer here, then in Capa (at most one Capa call), then — when
 * the row asks for a link — queue the link step as its own `capa` job, so every Capa call passes
 * the shared limiter once. Safe to run twice: the job id carries the row's generation and the
 * handler acts only on a row still `queued` at that generation.
 */
export const importRow = defineJob({
  name: 'import-row',
  queue: 'capa',
  schema: ImportRowPayload,
  jobId: (p) => `improw-${p.importId}-${p.rowNo}-${p.gen}`,
  options: IMPORT_CAPA_JOB,
  // The import row records every outcome (status, reason, customer); a job_runs pair per row
  // would double the writes of a 100k-row import.
  trackRuns: false,
});
