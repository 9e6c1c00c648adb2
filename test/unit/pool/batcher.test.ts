import { setImmediate as immediate } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Batcher } from '../../../src/pool/batcher.js';

/** A `run` whose batches the test answers by hand. */
const manual = () => {
  const calls: {
    key: string;
    items: readonly number[];
    answer: (r: readonly string[]) => void;
    fail: (e: unknown) => void;
  }[] = [];
  const run = (key: string, items: readonly number[]): Promise<readonly string[]> =>
    new Promise((answer, fail) => {
      calls.push({ key, items, answer, fail });
    });
  return { calls, run };
};

/** Past the batcher's own setImmediate, which an answer schedules only once its promise settles. */
const nextTurn = async (): Promise<void> => {
  await immediate();
  await immediate();
};

const settle = <T>(p: Promise<T>): Promise<{ ok: T } | { err: unknown }> =>
  p.then(
    ok => ({ ok }),
    (err: unknown) => ({ err }),
  );

describe('Batcher', () => {
  it('sends a call for an idle key at once, alone, before the event loop turns', async () => {
    const m = manual();
    const b = new Batcher({ run: m.run, maxBatch: 8 });
    const p = b.submit('pool', 1);
    expect(m.calls.map(c => c.items)).toEqual([[1]]);
    m.calls[0]?.answer(['one']);
    expect(await p).toBe('one');
  });

  it('calls made while a batch is in flight go together on the next turn, each with its own result', async () => {
    const m = manual();
    const b = new Batcher({ run: m.run, maxBatch: 8 });
    const first = b.submit('pool', 1);
    const rest = [2, 3, 4].map(n => b.submit('pool', n));
    expect(m.calls.map(c => c.items)).toEqual([[1]]);
    await nextTurn();
    expect(m.calls.map(c => c.items)).toEqual([[1], [2, 3, 4]]);
    m.calls[1]?.answer(['r2', 'r3', 'r4']);
    expect(await Promise.all(rest)).toEqual(['r2', 'r3', 'r4']);
    m.calls[0]?.answer(['r1']);
    expect(await first).toBe('r1');
    expect(b.stats).toEqual({ batches: 2, items: 4, largest: 3 });
  });

  it('the callers an answer wakes up go together in the next batch, not the first alone', async () => {
    const m = manual();
    const b = new Batcher({ run: m.run, maxBatch: 8 });
    const first = [1, 2, 3].map(n => b.submit('pool', n));
    await nextTurn();
    m.calls[0]?.answer(['a']);
    await nextTurn();
    m.calls[1]?.answer(['b', 'c']);
    // Each caller calls again as soon as its answer arrives.
    const again = first.map(async p => b.submit('pool', (await p).length * 10));
    await nextTurn();
    expect(m.calls.map(c => c.items)).toEqual([[1], [2, 3], [10, 10, 10]]);
    m.calls[2]?.answer(['x', 'y', 'z']);
    expect(await Promise.all(again)).toEqual(['x', 'y', 'z']);
  });

  it('sends batches of at most maxBatch, per key, however many are in flight', async () => {
    const m = manual();
    const b = new Batcher({ run: m.run, maxBatch: 2 });
    const ps = [1, 2, 3, 4, 5, 6].map(n => b.submit('a', n));
    const other = b.submit('b', 100);
    await nextTurn();
    expect(m.calls.map(c => [c.key, c.items])).toEqual([
      ['a', [1]],
      ['b', [100]],
      ['a', [2, 3]],
      ['a', [4, 5]],
      ['a', [6]],
    ]);
    m.calls.forEach(c => {
      c.answer(c.items.map(String));
    });
    expect(await Promise.all(ps)).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(await other).toBe('100');
  });

  it('flushNow sends what is queued at once, in order, before the caller goes on', async () => {
    const m = manual();
    const b = new Batcher({ run: m.run, maxBatch: 8 });
    const ps = [1, 2, 3].map(n => b.submit('a', n));
    b.flushNow('b'); // nothing queued there
    expect(m.calls.map(c => c.items)).toEqual([[1]]);
    b.flushNow('a');
    expect(m.calls.map(c => c.items)).toEqual([[1], [2, 3]]);
    await nextTurn();
    expect(m.calls).toHaveLength(2);
    m.calls[0]?.answer(['1']);
    m.calls[1]?.answer(['2', '3']);
    expect(await Promise.all(ps)).toEqual(['1', '2', '3']);
  });

  it('a failed batch fails every call in it, and a short answer fails the calls it left out', async () => {
    const m = manual();
    const b = new Batcher({ run: m.run, maxBatch: 8 });
    const first = settle(b.submit('pool', 1));
    const batch = [2, 3, 4].map(n => settle(b.submit('pool', n)));
    await nextTurn();
    const lost = new Error('connection lost');
    m.calls[0]?.fail(lost);
    expect(await first).toEqual({ err: lost });
    await nextTurn();
    m.calls[1]?.answer(['r2']);
    const [r2, r3, r4] = await Promise.all(batch);
    expect(r2).toEqual({ ok: 'r2' });
    expect((r3 as { err: Error }).err.message).toMatch(/batch of 3 answered 1 results/);
    expect((r4 as { err: Error }).err.message).toMatch(/batch of 3 answered 1 results/);
  });

  it('a run that throws synchronously fails its batch; later calls still go', async () => {
    let n = 0;
    const b = new Batcher<number, number>({
      run: (_key, items) => {
        if (n++ === 0) throw new Error('boom');
        return Promise.resolve(items.map(i => i * 2));
      },
      maxBatch: 4,
    });
    await expect(b.submit('k', 1)).rejects.toThrow('boom');
    expect(await b.submit('k', 2)).toBe(4);
  });

  it('refuses a batch size below 1', () => {
    const run = (): Promise<never[]> => Promise.resolve([]);
    expect(() => new Batcher({ run, maxBatch: 0 })).toThrow(/at least 1/);
  });
});
