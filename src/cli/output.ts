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
}

export const print = (out: Out, format: OutputFormat, p: Printable): void => {
  out.write(
    format === 'json' ? JSON.stringify(p.data, null, 2) + '\n' : formatTable(p.rows, p.columns),
  );
};
