import { describe, expect, it } from 'vitest';
import {
  barCells,
  barStyleFor,
  formatBar,
  formatLegend,
  formatTable,
  print,
  type BarPart,
} from '../../../src/cli/output.js';

const parts = (...counts: number[]): BarPart[] =>
  counts.map((count, i) => ({ count, label: `part ${i}` }));

const captured = () => {
  let text = '';
  return { out: { write: (t: string) => (text += t) }, text: () => text };
};

describe('bars', () => {
  it('shares the width in proportion, by largest remainder, always summing to the width', () => {
    expect(barCells([1, 1, 1, 1], 20)).toEqual([5, 5, 5, 5]);
    expect(barCells([7, 1, 2, 3], 20)).toEqual([11, 1, 3, 5]);
    expect(barCells([0, 0, 0, 10], 20)).toEqual([0, 0, 0, 20]);
    expect(barCells([0, 0, 0, 0], 20)).toEqual([0, 0, 0, 0]);
    for (const counts of [
      [3, 3, 3, 0],
      [65_533, 0, 0, 1],
      [1, 2, 3, 4],
    ]) {
      expect(barCells(counts, 20).reduce((a, b) => a + b, 0)).toBe(20);
    }
  });

  it('gives any part above zero one cell at least, taken from the widest part', () => {
    expect(barCells([30_000, 2, 1, 35_531], 20)).toEqual([9, 1, 1, 9]);
    expect(barCells([65_533, 0, 1, 0], 20)).toEqual([19, 0, 1, 0]);
  });

  it('draws blocks, ASCII, or coloured blocks', () => {
    expect(formatBar(parts(5, 2, 3, 10), 20, 'ascii')).toBe('#####==~~~..........');
    expect(formatBar(parts(5, 2, 3, 10), 20, 'unicode')).toBe('█████▓▓▒▒▒░░░░░░░░░░');
    const colored = formatBar(parts(1, 0, 0, 1), 4, 'color');
    expect(colored).toBe('\u001b[32m██\u001b[0m\u001b[2m░░\u001b[0m');
  });

  it('explains the characters in a legend', () => {
    expect(formatLegend(parts(1, 1, 1, 1), 'ascii')).toBe('# part 0  = part 1  ~ part 2  . part 3');
    expect(formatLegend(parts(1, 1), 'unicode')).toBe('█ part 0  ▓ part 1');
  });

  it('picks colour on a terminal, blocks under NO_COLOR, ASCII elsewhere', () => {
    expect(barStyleFor(true, {})).toBe('color');
    expect(barStyleFor(true, { NO_COLOR: '1' })).toBe('unicode');
    expect(barStyleFor(true, { NO_COLOR: '' })).toBe('color');
    expect(barStyleFor(true, { TERM: 'dumb' })).toBe('ascii');
    expect(barStyleFor(false, {})).toBe('ascii');
  });
});

describe('print', () => {
  it('prints a table with its legend, and JSON without it', () => {
    const p = {
      data: [{ a: 1 }],
      rows: [{ name: 'x', n: 1, empty: undefined }],
      columns: ['name', 'n', 'empty'],
      legend: 'legend: # used',
    };
    const table = captured();
    print(table.out, 'table', p);
    expect(table.text()).toBe('NAME   N   EMPTY\nx      1   -\nlegend: # used\n');
    const json = captured();
    print(json.out, 'json', p);
    expect(JSON.parse(json.text())).toEqual([{ a: 1 }]);
    expect(formatTable(p.rows, p.columns)).toBe('NAME   N   EMPTY\nx      1   -\n');
  });
});
