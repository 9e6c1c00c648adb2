/** `-o table|json` output of the `podlease` commands. */
import type { OutputFormat } from '../config/config.js';

export interface Out {
  write(text: string): void;
}

export type Row = Readonly<Record<string, string | number | boolean | undefined>>;

/** Columns padded to the widest cell, headers in capitals (kubectl's style). */
export const formatTable = (rows: readonly Row[], columns: readonly string[]): string => {
  const cell = (v: Row[string]): string => (v === undefined || v === '' ? '-' : String(v));
  const header = columns.map(c => c.toUpperCase());
  const body = rows.map(r => columns.map(c => cell(r[c])));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map(b => (b[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...body.map(line)].join('\n') + '\n';
};

export interface Printable {
  /** What `-o json` prints. */
  readonly data: unknown;
  /** What `-o table` prints. */
  readonly rows: readonly Row[];
  readonly columns: readonly string[];
  /** A line after the table (`-o table` only), e.g. what a bar's characters mean. */
  readonly legend?: string | undefined;
}

export const print = (out: Out, format: OutputFormat, p: Printable): void => {
  if (format === 'json') {
    out.write(JSON.stringify(p.data, null, 2) + '\n');
    return;
  }
  out.write(formatTable(p.rows, p.columns) + (p.legend === undefined ? '' : `${p.legend}\n`));
};

/**
 * How bars are drawn: unicode blocks in colour on a terminal, the same blocks without colour under
 * `NO_COLOR`, plain ASCII when the output is not a terminal (a pipe, a file, `TERM=dumb`).
 */
export type BarStyle = 'color' | 'unicode' | 'ascii';

export const barStyleFor = (
  isTty: boolean,
  env: Readonly<Record<string, string | undefined>>,
): BarStyle => {
  if (!isTty || env.TERM === 'dumb') return 'ascii';
  return (env.NO_COLOR ?? '') === '' ? 'color' : 'unicode';
};

/** One part of a bar: how many, and what the legend calls it. */
export interface BarPart {
  readonly count: number;
  readonly label: string;
}

/** The characters of the bar's parts, in order; the last is the background (free). */
const GLYPHS: Readonly<Record<'unicode' | 'ascii', readonly string[]>> = {
  unicode: ['\u2588', '\u2593', '\u2592', '\u2591'],
  ascii: ['#', '=', '~', '.'],
};
/** SGR colours for the `color` style: green, cyan, yellow, dim. */
const COLORS = ['32', '36', '33', '2'];
const ESC = '\u001b';

const glyph = (style: BarStyle, i: number): string =>
  GLYPHS[style === 'ascii' ? 'ascii' : 'unicode'][i] ?? ' ';

const paint = (style: BarStyle, i: number, text: string): string =>
  style === 'color' && text !== '' ? `${ESC}[${COLORS[i] ?? '0'}m${text}${ESC}[0m` : text;

/**
 * How many of `width` cells each count gets: in proportion (largest remainder), and at least one
 * for any count above zero, so one cooling address in 65,536 still shows.
 */
export const barCells = (counts: readonly number[], width: number): number[] => {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return counts.map(() => 0);
  const exact = counts.map(c => (c / total) * width);
  const cells = exact.map((e, i) => ((counts[i] ?? 0) > 0 ? Math.max(1, Math.floor(e)) : 0));
  const byRemainder = exact
    .map((e, i) => ({ i, r: e - Math.floor(e) }))
    .filter(x => (counts[x.i] ?? 0) > 0)
    .sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0, n = width - sum(cells); n > 0; k++, n--) {
    const at = byRemainder[k % byRemainder.length]?.i ?? 0;
    cells[at] = (cells[at] ?? 0) + 1;
  }
  // Minimums pushed the bar past its width: take the excess from the widest part.
  for (let n = sum(cells) - width; n > 0; n--) {
    const widest = cells.indexOf(Math.max(...cells));
    cells[widest] = (cells[widest] ?? 0) - 1;
  }
  return cells;
};

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** A fixed-width bar of up to four parts (`█▓▒░`, `#=~.` in ASCII). */
export const formatBar = (parts: readonly BarPart[], width: number, style: BarStyle): string =>
  barCells(
    parts.map(p => p.count),
    width,
  )
    .map((n, i) => paint(style, i, glyph(style, i).repeat(n)))
    .join('');

/** `█ leased by a pod   ▓ reserved, no pod …`: what the characters of `formatBar` stand for. */
export const formatLegend = (parts: readonly BarPart[], style: BarStyle): string =>
  parts.map((p, i) => `${paint(style, i, glyph(style, i))} ${p.label}`).join('  ');
