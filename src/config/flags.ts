/**
 * The `podlease` command line: the commands, the shape of a flag, and reading argv with
 * `node:util` `parseArgs`. Which flags each command takes, and what their values mean, is
 * config.ts's business. What this
 * reports are the problems of the command line itself (an unknown command or flag, a flag
 * without its value, a switch given a value, a flag given twice), all of them, not just the
 * first: parseArgs runs non-strict and its tokens are checked here.
 */
import { parseArgs } from 'node:util';

export const COMMANDS = [
  'serve',
  'pools',
  'leases',
  'reservations',
  'reserve',
  'release',
  'unreserve',
  'check',
  'rebuild',
  'help',
  'version',
] as const;
export type CommandName = (typeof COMMANDS)[number];

export const isCommand = (s: string): s is CommandName =>
  (COMMANDS as readonly string[]).includes(s);

type FlagKind = 'value' | 'switch';
export interface FlagSpec {
  readonly kind: FlagKind;
  /** Also read from `PODLEASE_<FLAG>`. */
  readonly env: boolean;
  readonly help: string;
  /** One-letter alias (`-o`, `-h`). */
  readonly short?: string;
}

/** A flag with a value, also read from `PODLEASE_<FLAG>`. */
export const valueFlag = (help: string): FlagSpec => ({ kind: 'value', env: true, help });
/** A flag with a value, command line only (a per-command argument such as `--pool`). */
export const argFlag = (help: string): FlagSpec => ({ kind: 'value', env: false, help });
/** A switch, command line only. */
export const switchFlag = (help: string): FlagSpec => ({ kind: 'switch', env: false, help });

/** `--metrics-listen` is `PODLEASE_METRICS_LISTEN`. */
export const envName = (flag: string): string =>
  `PODLEASE_${flag.toUpperCase().replace(/-/g, '_')}`;

/** What was on the command line, before any value is validated. */
export interface CommandLine {
  readonly command: CommandName;
  /** Flag name to its value; a switch is `true`. The first occurrence wins. */
  readonly flags: ReadonlyMap<string, string | true>;
  readonly positional: readonly string[];
  readonly issues: readonly string[];
}

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];
type OptionToken = Extract<Token, { kind: 'option' }>;

const parseOptions = (
  specs: Readonly<Record<string, FlagSpec>>,
): Record<string, { type: 'string' | 'boolean'; short?: string; multiple: true }> =>
  Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [
      name,
      {
        type: spec.kind === 'value' ? 'string' : 'boolean',
        multiple: true,
        ...(spec.short === undefined ? {} : { short: spec.short }),
      },
    ]),
  );

/** The problem with one option token, if any (non-strict parseArgs accepts them all). */
const tokenIssue = (
  token: OptionToken,
  specs: Readonly<Record<string, FlagSpec>>,
): string | undefined => {
  const spec = specs[token.name];
  if (spec === undefined) {
    const known = Object.keys(specs)
      .map(f => `--${f}`)
      .join(', ');
    return `unknown flag ${token.rawName} (known: ${known})`;
  }
  if (spec.kind === 'switch') {
    return token.value === undefined ? undefined : `flag --${token.name} takes no value`;
  }
  if (token.value === undefined) return `flag --${token.name} needs a value`;
  // Non-strict parseArgs takes the next argument whatever it is: `--pool -o json` would make
  // `-o` the pool. A value that looks like a flag must be written inline (`--pool=-o`).
  if (!token.inlineValue && /^-./.test(token.value)) {
    return `flag --${token.name} needs a value, not ${token.value} (write --${token.name}=${token.value} if you mean it)`;
  }
  return undefined;
};

/**
 * Reads `podlease <command> [flags] [arguments]`. Never throws: every problem found is in
 * `issues`. Without a command (argv empty or starting with a flag) the command is `help`.
 */
export const readCommandLine = (
  argv: readonly string[],
  commandFlags: (command: CommandName) => Readonly<Record<string, FlagSpec>>,
): CommandLine => {
  const issues: string[] = [];
  const first = argv[0];
  let command: CommandName = 'help';
  let rest = argv;
  if (first !== undefined && !first.startsWith('-')) {
    rest = argv.slice(1);
    if (isCommand(first)) command = first;
    else issues.push(`unknown command "${first}" (known: ${COMMANDS.join(', ')})`);
  }
  const specs = commandFlags(command);
  const { tokens } = parseArgs({
    args: [...rest],
    options: parseOptions(specs),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') positional.push(token.value);
    if (token.kind !== 'option') continue;
    const issue = tokenIssue(token, specs);
    if (issue !== undefined) {
      issues.push(issue);
    } else if (flags.has(token.name)) {
      issues.push(`flag --${token.name} given more than once`);
    } else {
      flags.set(token.name, token.value ?? true);
    }
  }
  return { command, flags, positional, issues };
};
