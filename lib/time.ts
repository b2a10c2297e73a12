/** Timestamps are stored as ISO-8601 UTC text on both engines (sortable, portable). */
export const nowIso = (): string => new Date().toISOString();
export const isoAgo = (ms: number, from: number = Date.now()): string => new Date(from - ms).toISOString();
export const isoIn = (ms: number, from: number = Date.now()): string => new Date(from + ms).toISOString();
