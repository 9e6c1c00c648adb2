/**
 * Configuration of `podlease-cni-install`, the CNI DaemonSet's installer (src/cni/install.ts,
 * docs/cni.md "Installing"). Each flag is also `PODLEASE_CNI_<FLAG>` (dashes as underscores); the
 * command line wins. The API server defaults to the in-cluster one, from
 * `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`. Parsed once, every problem reported at
 * once (ConfigError), frozen.
 */
import { parseArgs } from 'node:util';
import { LOG_LEVELS, type LogLevel } from '../log/logger.js';
import { ConfigError } from './errors.js';
import { parseDuration } from './parse.js';

/** Where things are, as the installer's container sees them and as the host's runtime does. */
export interface InstallConfig {
  /** The plugin executable to install (dist/cni/podlease). */
  readonly pluginSource: string;
  /** The host's CNI bin dir, as mounted in the container. */
  readonly binDir: string;
  /** The host's CNI conf dir, as mounted in the container. */
  readonly confDir: string;
  /** The same conf dir as the host sees it: the paths written into the kubeconfig and conflist. */
  readonly hostConfDir: string;
  /** The projected service-account token (rotated by the kubelet). */
  readonly tokenFile: string;
  /** The cluster CA (PEM); undefined: the system's trust store. */
  readonly caFile: string | undefined;
  /** The API server URL the plugin talks to. */
  readonly server: string;
  /** A conflist template (JSON) and the file name to install it as. */
  readonly conflist: { readonly template: string; readonly fileName: string } | undefined;
}

/** The chart's mounts (charts/podlease/templates/cni.yaml). */
export const CNI_INSTALL_DEFAULTS = {
  binDir: '/host/cni/bin',
  confDir: '/host/cni/net.d',
  hostConfDir: '/etc/cni/net.d',
  tokenFile: '/var/run/secrets/podlease-cni/token',
  caFile: '/var/run/secrets/podlease-cni/ca.crt',
  conflistName: '10-podlease.conflist',
  intervalMs: 10_000,
  logLevel: 'info',
} as const;

export interface CniInstallConfig {
  readonly install: InstallConfig;
  /** Install once and exit (an init container, a test) instead of keeping the token fresh. */
  readonly once: boolean;
  /** How often the token, CA and conflist are checked for changes. */
  readonly intervalMs: number;
  readonly logLevel: LogLevel;
  readonly help: boolean;
}

const FLAGS = {
  plugin: 'the plugin executable to install (default: dist/cni/podlease of this package)',
  'bin-dir': `the host's CNI bin dir as mounted here (default ${CNI_INSTALL_DEFAULTS.binDir})`,
  'conf-dir': `the host's CNI conf dir as mounted here (default ${CNI_INSTALL_DEFAULTS.confDir})`,
  'host-conf-dir': `the CNI conf dir as the host sees it (default ${CNI_INSTALL_DEFAULTS.hostConfDir})`,
  'token-file': `the projected service-account token (default ${CNI_INSTALL_DEFAULTS.tokenFile})`,
  'ca-file': `the cluster CA, PEM; "" for the system trust store (default ${CNI_INSTALL_DEFAULTS.caFile})`,
  server: 'the API server URL (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)',
  conflist:
    'a conflist template (JSON) to install; its podlease IPAM gets kubeconfig and capability',
  'conflist-name': `file name of the installed conflist (default ${CNI_INSTALL_DEFAULTS.conflistName})`,
  interval: 'how often token, CA and conflist are re-checked, e.g. 10s',
  'log-level': `log level: ${LOG_LEVELS.join(' | ')}`,
} as const;
type Flag = keyof typeof FLAGS;

/** `--bin-dir` is `PODLEASE_CNI_BIN_DIR`. */
export const cniInstallEnvName = (flag: string): string =>
  `PODLEASE_CNI_${flag.toUpperCase().replace(/-/g, '_')}`;

export const cniInstallUsage = (): string =>
  [
    'Usage: podlease-cni-install [--once] [flags]',
    '',
    'Installs the podlease CNI plugin, its kubeconfig and token (and optionally a conflist) on this',
    'node, each file written whole and renamed into place; then keeps the token fresh.',
    '',
    'Flags:',
    ...Object.entries(FLAGS).map(
      ([name, help]) => `  --${name} VALUE (${cniInstallEnvName(name)})\n      ${help}`,
    ),
    '  --once\n      install and exit',
    '',
  ].join('\n');

type Env = Readonly<Record<string, string | undefined>>;

const inClusterServer = (env: Env): string | undefined => {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  if (host === '') return undefined;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
};

const parseServer = (text: string | undefined, issues: string[]): string => {
  if (text === undefined) {
    issues.push(
      'no API server: set --server (PODLEASE_CNI_SERVER) or run in a pod (KUBERNETES_SERVICE_HOST)',
    );
    return '';
  }
  try {
    const url = new URL(text);
    if (url.protocol === 'https:' || url.protocol === 'http:') return text.replace(/\/+$/, '');
  } catch {
    // reported below
  }
  issues.push(`server: "${text}" is not an http(s) URL`);
  return text;
};

type Values = Record<string, string | boolean | undefined>;

const readFlags = (argv: readonly string[], issues: string[]): Values => {
  try {
    return parseArgs({
      args: [...argv],
      options: {
        ...Object.fromEntries(Object.keys(FLAGS).map(f => [f, { type: 'string' as const }])),
        once: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    issues.push((e as Error).message);
    return {};
  }
};

const parseInterval = (text: string | undefined, issues: string[]): number => {
  if (text === undefined || text === '') return CNI_INSTALL_DEFAULTS.intervalMs;
  const ms = parseDuration(text);
  if (ms !== undefined && ms > 0) return ms;
  issues.push(`interval: "${text}" is not a positive duration such as 10s`);
  return CNI_INSTALL_DEFAULTS.intervalMs;
};

const parseLogLevel = (text: string, issues: string[]): LogLevel => {
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  issues.push(`log-level: "${text}" is not one of ${LOG_LEVELS.join(', ')}`);
  return CNI_INSTALL_DEFAULTS.logLevel;
};

/** Parses the installer's command line and environment; throws ConfigError with every problem. */
export const loadCniInstallConfig = (
  argv: readonly string[],
  env: Env,
  defaultPlugin: string,
): CniInstallConfig => {
  const issues: string[] = [];
  const values = readFlags(argv, issues);
  const raw = (flag: Flag): string | undefined => {
    const v = values[flag];
    return typeof v === 'string' ? v : env[cniInstallEnvName(flag)];
  };
  const or = (flag: Flag, fallback: string): string => {
    const v = raw(flag);
    return v === undefined || v === '' ? fallback : v;
  };
  const intervalMs = parseInterval(raw('interval'), issues);
  const logLevel = parseLogLevel(or('log-level', CNI_INSTALL_DEFAULTS.logLevel), issues);
  const caFile = raw('ca-file');
  const conflist = or('conflist', '');
  const server = parseServer(or('server', '') || inClusterServer(env), issues);
  const help = values.help === true;
  if (issues.length > 0 && !help) throw new ConfigError('podlease-cni-install', issues);
  return Object.freeze({
    install: Object.freeze({
      pluginSource: or('plugin', defaultPlugin),
      binDir: or('bin-dir', CNI_INSTALL_DEFAULTS.binDir),
      confDir: or('conf-dir', CNI_INSTALL_DEFAULTS.confDir),
      hostConfDir: or('host-conf-dir', CNI_INSTALL_DEFAULTS.hostConfDir),
      tokenFile: or('token-file', CNI_INSTALL_DEFAULTS.tokenFile),
      caFile: caFile === '' ? undefined : (caFile ?? CNI_INSTALL_DEFAULTS.caFile),
      server,
      conflist:
        conflist === ''
          ? undefined
          : Object.freeze({
              template: conflist,
              fileName: or('conflist-name', CNI_INSTALL_DEFAULTS.conflistName),
            }),
    }),
    once: values.once === true,
    intervalMs,
    logLevel,
    help,
  });
};
