import type { Executor } from './client.js';

/**
 * A read by key whose calls made together (in the same turn of the event loop) are answered by
 * one query for all their keys. A worker settles a batch of deliveries at once and then runs
 * each one's hooks; without this each hook's read would be a round trip of its own (PostgreSQL).
 * `load` gets distinct keys and returns a value for each one it knows; `missing` answers the rest.
 * A failed load rejects every call it was serving.
 */
export function coalescedRead<K, V>(
  load: (db: Executor, keys: K[]) => Promise<Map<K, V>>,
  missing: V,
): (db: Executor, key: K) => Promise<V> {
  const pending = new WeakMap<Executor, Map<K, Array<{ resolve: (v: V) => void; reject: (e: unknown) => void }>>>();
  return (db, key) =>
    new Promise<V>((resolve, reject) => {
      let waiting = pending.get(db);
      if (!waiting) {
        const batch = new Map<K, Array<{ resolve: (v: V) => void; reject: (e: unknown) => void }>>();
        pending.set(db, (waiting = batch));
        setImmediate(() => {
          pending.delete(db);
          load(db, [...batch.keys()]).then(
            (values) => {
              for (const [k, callers] of batch) for (const c of callers) c.resolve(values.has(k) ? values.get(k)! : missing);
            },
            (err) => {
              for (const callers of batch.values()) for (const c of callers) c.reject(err);
            },
          );
        });
      }
      const callers = waiting.get(key);
      if (callers) callers.push({ resolve, reject });
      else waiting.set(key, [{ resolve, reject }]);
    });
}
