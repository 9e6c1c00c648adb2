/**
 * `podlease check [--fix]` and `podlease rebuild`: the controller's audit and rebuild run once
 * against the API server of `KUBECONFIG` (src/controller/check.ts), printed `-o table|json`.
 */
import type { CommandConfig, Config } from '../config/config.js';
import type { CheckResult, RebuildCliResult } from '../controller/check.js';
import { EXIT, type CommandIo } from './commands.js';
import { print } from './output.js';

type Cmd<N extends CommandConfig['name']> = Extract<CommandConfig, { name: N }>;

export const printCheck = (
  config: Config,
  cmd: Cmd<'check'>,
  result: CheckResult,
  io: CommandIo,
): number => {
  const rows = [
    ...result.notReady.map(pool => ({
      kind: 'not-ready',
      pool,
      ip: '',
      fixed: '',
      message: `pool ${pool} has no state in the store: run \`podlease rebuild\` (or let the controller rebuild it)`,
    })),
    ...result.reconciling.map(pool => ({
      kind: 'reconciling',
      pool,
      ip: '',
      fixed: cmd.fix ? 'no' : '',
      message: cmd.fix
        ? `pool ${pool}: the store changed history again during the check; run it again`
        : `pool ${pool}: the store came back on another history (a Redis failover or restart) and allocation waits: \`podlease check --fix\` restores what pods carry and resumes it (or let the controller do it)`,
    })),
    ...result.findings.map(f => ({
      kind: f.kind,
      pool: f.pool,
      ip: f.ip ?? '',
      fixed: cmd.fix ? (f.fixed === true ? 'yes' : 'no') : '',
      message: f.message,
    })),
  ];
  if (config.output === 'table' && rows.length === 0) {
    io.stdout.write('no problems: every lease and reservation agrees with the cluster\n');
  } else {
    print(io.stdout, config.output, {
      data: result,
      rows,
      columns: cmd.fix
        ? ['kind', 'pool', 'ip', 'fixed', 'message']
        : ['kind', 'pool', 'ip', 'message'],
    });
  }
  if (result.problems > 0) {
    io.stderr.write(
      `podlease check: ${result.problems} problem${result.problems === 1 ? '' : 's'}` +
        (cmd.fix
          ? ' left that --fix does not repair (conflicts need a person)'
          : '; `podlease check --fix` repairs what is safe') +
        '\n',
    );
    return EXIT.FAILED;
  }
  return EXIT.OK;
};

export const printRebuild = (
  config: Config,
  results: readonly RebuildCliResult[],
  io: CommandIo,
): number => {
  print(io.stdout, config.output, {
    data: results,
    rows: results.map(r => ({
      pool: r.pool,
      result: r.result.alreadyReady ? 'ready (nothing to do)' : 'rebuilt',
      restored: r.result.restored,
      present: r.result.present,
      conflicts: r.result.conflicts,
    })),
    columns: ['pool', 'result', 'restored', 'present', 'conflicts'],
  });
  const conflicts = results.reduce((n, r) => n + r.result.conflicts, 0);
  if (conflicts > 0) {
    io.stderr.write(
      `podlease rebuild: ${conflicts} lease(s) could not be restored (another holds the address); see \`podlease check\`\n`,
    );
    return EXIT.FAILED;
  }
  return EXIT.OK;
};
