/** `podlease help [command]`. */
import { commandFlags } from '../config/config.js';
import { COMMANDS, envName, type CommandName } from '../config/flags.js';

const SUMMARY: Readonly<Record<CommandName, string>> = {
  serve: 'run the admission webhook (HTTPS /mutate, /validate; HTTP /metrics, /healthz, /readyz)',
  pools:
    'list the pools [--pool P] with their size, leased, pending, reserved, cooling and free ' +
    'addresses; `pools init [--pool P]` initialises pools no pod has used yet (Redis without ' +
    'an API server)',
  leases: 'list leases [--pool P] [--namespace N]',
  reservations: 'list sticky reservations and the lease holding each [--pool P] [--namespace N]',
  reserve: 'reserve a sticky address: --pool P --key ns/sts/N [--ip X]',
  release: 'release a lease: --pool P --lease ID (or --lease P/ID)',
  unreserve: 'drop a sticky reservation: --pool P --key ns/sts/N',
  check:
    'audit every lease and reservation against the cluster [--pool P] [--fix]; exit 1 on problems',
  rebuild:
    "restore pools that lost their state (wiped Redis) from the pods' annotations [--pool P]",
  help: "print this help, or a command's flags: podlease help serve",
  version: 'print the version',
};

export const usage = (topic?: string): string => {
  const command = (COMMANDS as readonly string[]).includes(topic ?? '')
    ? (topic as CommandName)
    : undefined;
  if (command === undefined) {
    const lines = COMMANDS.map(c => `  ${c.padEnd(12)} ${SUMMARY[c]}`);
    return [
      'Usage: podlease <command> [flags]',
      '',
      'Commands:',
      ...lines,
      '',
      'Every command takes --store, --pools, --store-timeout, --reuse-cooldown and -o table|json;',
      'each flag is also an environment variable PODLEASE_<FLAG>, plus REDIS_URL and KUBECONFIG.',
      "podlease help <command> lists a command's flags.",
      '',
    ].join('\n');
  }
  const flags = Object.entries(commandFlags(command)).map(([name, spec]) => {
    const env = spec.env ? ` (${envName(name)})` : '';
    return `  --${name}${spec.kind === 'value' ? ' VALUE' : ''}${env}\n      ${spec.help}`;
  });
  return [
    `Usage: podlease ${command} [flags]`,
    '',
    SUMMARY[command],
    '',
    'Flags:',
    ...flags,
    '',
  ].join('\n');
};
