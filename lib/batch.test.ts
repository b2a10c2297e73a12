import { describe, expect, it } from 'vitest';
import { Batcher } from './batch.js';

/** Runs `calls` calls `gapMs` apart and returns the sizes of the batches the handler saw. */
async function batchesOf(b: (sizes: number[]) => Batcher<number, number>, calls: number, gapMs: number): Promise<number[]> {
  const sizes: number[] = [];
  const batcher = b(sizes);
  const answers: Array<Promise<number>> = [];
  for (let i = 0; i < calls; i++) {
    answers.push(batcher.run(i));
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  // Every caller gets its own answer, whatever batch it was in.
  expect(await Promise.all(answers)).toEqual(Array.from({ length: calls }, (_, i) => i * 10));
  return sizes;
}

const times10 = (sizes: number[], max: number, waitMs: number) =>
  new Batcher<number, number>(
    async (items) => {
      sizes.push(items.length);
      return items.map((i) => ({ ok: true as const, value: i * 10 }));
    },
    max,
    waitMs,
  );

describe('Batcher', () => {
  it('with no wait, calls spaced out in time are handled one by one', async () => {
    expect(await batchesOf((s) => times10(s, 64, 0), 5, 5)).toEqual([1, 1, 1, 1, 1]);
  });

  it('with a wait, calls arriving within it are handled in one batch', async () => {
    const sizes = await batchesOf((s) => times10(s, 64, 200), 5, 5);
    expect(sizes).toEqual([5]);
  });

  it('never makes a batch larger than its maximum', async () => {
    const sizes = await batchesOf((s) => times10(s, 4, 50), 10, 0);
    expect(sizes).toEqual([4, 4, 2]);
  });

  it("one item's error rejects that item only", async () => {
    const b = new Batcher<number, number>(
      async (items) => items.map((i) => (i === 2 ? { ok: false, error: new Error('two') } : { ok: true, value: i })),
      64,
      10,
    );
    const r = await Promise.allSettled([1, 2, 3].map((i) => b.run(i)));
    expect(r.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('with lanes, batches are handled side by side, never more at once than there are lanes', async () => {
    let inFlight = 0;
    let most = 0;
    const b = new Batcher<number, number>(
      async (items) => {
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, 30));
        inFlight--;
        return items.map((i) => ({ ok: true as const, value: i }));
      },
      2,
      0,
      3,
    );
    expect(await Promise.all(Array.from({ length: 12 }, (_, i) => b.run(i)))).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(most).toBe(3);
  });

  it('one lane handles one batch at a time', async () => {
    let inFlight = 0;
    let most = 0;
    const b = new Batcher<number, number>(async (items) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 10));
      inFlight--;
      return items.map((i) => ({ ok: true as const, value: i }));
    }, 2);
    await Promise.all(Array.from({ length: 8 }, (_, i) => b.run(i)));
    expect(most).toBe(1);
  });
});
