import { z } from 'zod';
import { defineJob } from '../types.js';
import { IMPORT_CAPA_JOB } from './capa-job-options.js';

/**
 * The link step of an import row: one Capa call through the shared generate-link logic, keyed by
 * a request id derived from the row (import + row number), so a re-run, a retried row or a
 * restarted worker asks Capa once and records — and sends, with `notify` — one link.
 */
export const importLink = defineJob({
  name: 'import-link',
  queue: 'capa',
  schema: z.object({ importId: z.string().min(1).max(64), rowNo: z.number().int().positive(), gen: z.number().int().nonnegative() }),
  jobId: (p) => `implink-${p.importId}-${p.rowNo}-${p.gen}`,
  options: IMPORT_CAPA_JOB,
  trackRuns: false,
});

/** One link request per import row, whatever the generation: the link is asked for once. */
export function linkRequestId(importId: string, rowNo: number): string {
  return `import-${importId}-${rowNo}`;
}
