/** Timestamps are stored as ISO-8601 UTC text on both engines (sortable, portable). */
export const nowIso = (): string => new Date().toISOString();
export const isoAgo = (ms: number, from: number = Date.now()): string => new Date(from - ms).toISOString();
export const isoIn = (ms: number, from: number = Date.now()): string => new Date(from + ms).toISOString();

/** `p`, or a rejection naming `what` once `ms` have passed without an answer. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
