import { describe, expect, it } from 'vitest';
import { commandFlags, loadConfig, type Config } from '../../../src/config/config.js';
import { ConfigError } from '../../../src/config/errors.js';
import { envName, readCommandLine } from '../../../src/config/flags.js';
import { usage } from '../../../src/cli/usage.js';

const io = {
  readFile: (p: string): string => {
    if (p === 'pools.yaml')
      return 'pools:\n  - name: a\n    cidr: 10.9.0.0/24\n    default: true\n';
    throw new Error(`ENOENT: no such file, open '${p}'`);
  },
};

const load = (argv: string[], env: Record<string, string> = {}): Config =>
  loadConfig(argv, env, io);

const configError = (argv: string[], env: Record<string, string> = {}): ConfigError => {
  try {
    load(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
};

const issues = (argv: string[], env: Record<string, string> = {}): readonly string[] =>
  configError(argv, env).issues;

describe('readCommandLine (node:util parseArgs)', () => {
  it('reads the command, flags in every spelling, and positionals', () => {
    const line = readCommandLine(
      ['leases', '--pool', 'a', '--namespace=kube-system', '-o', 'json', '--', '--not-a-flag'],
      commandFlags,
    );
    expect(line.command).toBe('leases');
    expect(line.issues).toEqual([]);
    expect(Object.fromEntries(line.flags)).toEqual({
      pool: 'a',
      namespace: 'kube-system',
      output: 'json',
    });
    expect(line.positional).toEqual(['--not-a-flag']);
    expect(
      Object.fromEntries(readCommandLine(['check', '--fix', '-h'], commandFlags).flags),
    ).toEqual({ fix: true, help: true });
  });

  it('is help without a command', () => {
    expect(readCommandLine([], commandFlags).command).toBe('help');
    expect(readCommandLine(['--help'], commandFlags)).toMatchObject({
      command: 'help',
      issues: [],
    });
  });
});

describe('command line problems', () => {
  it('reports unknown flags, long, short and with an inline value, naming the known ones', () => {
    const found = issues(['pools', '--bogus', '-x', '--nope=1']);
    expect(found).toEqual([
      expect.stringMatching(/^unknown flag --bogus \(known: --store, --pools, .*--help, --pool\)$/),
      expect.stringMatching(/^unknown flag -x \(known: /),
      expect.stringMatching(/^unknown flag --nope \(known: /),
    ]);
  });

  it('reports flags of another command as unknown', () => {
    expect(issues(['pools', '--listen', ':1'])).toEqual([
      expect.stringMatching(/^unknown flag --listen /),
      'unexpected argument(s): :1',
    ]);
  });

  it('reports a missing value at the end and before another flag', () => {
    expect(issues(['leases', '--pool'])).toEqual(['flag --pool needs a value']);
    expect(issues(['leases', '--pool', '--namespace', 'x'])).toEqual([
      'flag --pool needs a value, not --namespace (write --pool=--namespace if you mean it)',
      'unexpected argument(s): x',
    ]);
    expect(issues(['leases', '--pool', '-o', 'json'])).toEqual([
      'flag --pool needs a value, not -o (write --pool=-o if you mean it)',
      'unexpected argument(s): json',
    ]);
    expect(issues(['serve', '--lease-ttl='])).toEqual([
      expect.stringMatching(/^--lease-ttl: "" is not a positive duration/),
    ]);
  });

  it('reports a switch given a value, and a flag given twice', () => {
    expect(issues(['check', '--fix=yes'])).toEqual(['flag --fix takes no value']);
    expect(issues(['serve', '--listen', ':1', '--listen=:2'])).toEqual([
      'flag --listen given more than once',
    ]);
  });

  it('reports every problem at once, in one ConfigError naming the command', () => {
    const err = configError(['reserve', '--bogus', '--pool', '--ip', 'x', '-o', 'yaml', '--key'], {
      PODLEASE_STORE_TIMEOUT: 'soon',
      REDIS_URL: 'http://x',
    });
    expect(err.issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^unknown flag --bogus/),
        expect.stringMatching(/^flag --pool needs a value, not --ip/),
        'flag --key needs a value',
        'unexpected argument(s): x',
        expect.stringMatching(/^PODLEASE_STORE_TIMEOUT: "soon" is not a duration/),
        expect.stringMatching(/^REDIS_URL: "http:\/\/x" is not a redis:\/\//),
        '--pool is required',
        expect.stringMatching(/^--key is required/),
        expect.stringMatching(/^--output: "yaml" is not one of table, json/),
      ]),
    );
    expect(err.issues).toHaveLength(9);
    expect(err.message).toMatch(/^podlease reserve: 9 problems:\n {2}- unknown flag --bogus/);
  });
});

describe('environment variables', () => {
  it('names each flag PODLEASE_<FLAG> with dashes as underscores', () => {
    expect(envName('metrics-listen')).toBe('PODLEASE_METRICS_LISTEN');
    expect(envName('log-level')).toBe('PODLEASE_LOG_LEVEL');
  });

  it('reads every env-enabled flag of serve from PODLEASE_*', () => {
    const c = load(['serve'], {
      PODLEASE_LISTEN: '127.0.0.1:1443',
      PODLEASE_TLS_CERT: '/c.crt',
      PODLEASE_TLS_KEY: '/c.key',
      PODLEASE_TLS_RELOAD_INTERVAL: '30s',
      PODLEASE_CONTROLLER: 'off',
      PODLEASE_BODY_LIMIT: '1Mi',
      PODLEASE_SHUTDOWN_GRACE: '3s',
      PODLEASE_STATS_CACHE: '1s',
      PODLEASE_LOG_LEVEL: 'debug',
      PODLEASE_OUTPUT: 'json',
      PODLEASE_STORE: 'memory',
      PODLEASE_KUBECONFIG: '/kc',
      KUBECONFIG: '/ignored-when-the-flag-is-set',
    });
    expect(c.serve.listen).toEqual({ host: '127.0.0.1', port: 1443 });
    expect(c.serve.tls).toMatchObject({ certPath: '/c.crt', keyPath: '/c.key', isDefault: false });
    expect(c.serve.tls.reloadIntervalMs).toBe(30_000);
    expect(c.serve.controller).toBe('off');
    expect(c.serve.webhook.bodyLimitBytes).toBe(1_048_576);
    expect(c.serve.shutdownGraceMs).toBe(3_000);
    expect(c.serve.statsCacheMs).toBe(1_000);
    expect(c.logLevel).toBe('debug');
    expect(c.output).toBe('json');
    expect(c.kube.kubeconfig).toBe('/kc');
  });

  it('--ui-listen: off by default, a bare port on 127.0.0.1, or host:port', () => {
    expect(load(['serve']).serve.uiListen).toBeUndefined();
    expect(load(['serve', '--ui-listen', '8081']).serve.uiListen).toEqual({
      host: '127.0.0.1',
      port: 8081,
    });
    expect(load(['serve'], { PODLEASE_UI_LISTEN: '[::1]:9000' }).serve.uiListen).toEqual({
      host: '::1',
      port: 9000,
    });
    expect(load(['serve', '--ui-listen', 'off']).serve.uiListen).toBeUndefined();
    expect(issues(['serve', '--ui-listen', 'everywhere'])).toEqual([
      expect.stringMatching(/^--ui-listen: "everywhere" is not off, a port \(on 127.0.0.1\)/),
    ]);
  });

  it('lets the command line win, ignores empty variables, and never reads per-command arguments', () => {
    const c = load(['leases', '-o', 'table', '--log-level=warn'], {
      PODLEASE_OUTPUT: 'json',
      PODLEASE_LOG_LEVEL: 'nonsense',
      PODLEASE_STORE_TIMEOUT: '',
      PODLEASE_NAMESPACE: 'kube-system',
      PODLEASE_HELP: 'true',
    });
    expect(c.output).toBe('table');
    expect(c.logLevel).toBe('warn');
    expect(c.store.timeoutMs).toBe(2_000);
    expect(c.command).toEqual({ name: 'leases', pool: undefined, namespace: undefined });
  });

  it('names the variable, not the flag, when a value from the environment is bad', () => {
    expect(
      issues(['serve'], { PODLEASE_LISTEN: 'nowhere', PODLEASE_POOLS: 'missing.yaml' }),
    ).toEqual([
      expect.stringMatching(/^PODLEASE_POOLS: cannot read pools file missing.yaml/),
      expect.stringMatching(/^PODLEASE_LISTEN: "nowhere" is not host:port/),
    ]);
  });

  it('reads REDIS_URL and KUBECONFIG as they are', () => {
    const c = load(['pools', '--pools', 'pools.yaml'], {
      REDIS_URL: 'rediss://r:6380',
      KUBECONFIG: '/home/me/.kube/config',
    });
    expect(c.store).toMatchObject({ kind: 'redis', redisUrl: 'rediss://r:6380' });
    expect(c.kube.kubeconfig).toBe('/home/me/.kube/config');
  });
});

describe('podlease help <command>', () => {
  it('answers help for a command, and --help on any command', () => {
    expect(load(['help', 'serve']).command).toEqual({ name: 'help', topic: 'serve' });
    expect(load(['reserve', '-h', '--bogus']).command).toEqual({ name: 'help', topic: 'reserve' });
  });

  it("lists a command's flags with their environment variables", () => {
    const text = usage('serve');
    expect(text).toMatch(/^Usage: podlease serve \[flags\]/);
    expect(text).toContain('--metrics-listen VALUE (PODLEASE_METRICS_LISTEN)');
    expect(text).toContain('--output VALUE (PODLEASE_OUTPUT)');
    expect(usage('leases')).toMatch(/--pool VALUE\n/);
    expect(usage()).toMatch(/Commands:\n {2}serve/);
  });
});
