/**
 * The plugin's whole configuration: the `CNI_*` environment and the NetConf on stdin, parsed,
 * validated and frozen in one place (host-local `LoadIPAMConfig(bytes, envArgs)`). Every problem
 * names the variable or field at fault; config problems are collected, not first-error-wins.
 */
import { addrFamily, parsePrefix } from './addr.js';
import { CNI_ERROR, CniError } from './errors.js';
import { LATEST_VERSION, requireSupported, type CniVersion } from './version.js';
import { quote, quoteJson } from '../text/quote.js';

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/** The runtime-config key under which containerd/CRI-O pass the pod's annotations. */
export const POD_ANNOTATIONS_CAPABILITY = 'io.kubernetes.cri.pod-annotations';

/**
 * The pod a CNI call is for, as `CNI_ARGS` names it: always namespaced and named (unlike the
 * store's `PodRef` in src/pool/store.ts, which at admission may have only a generateName).
 */
export interface CniPodRef {
  readonly namespace: string;
  readonly name: string;
  /** `K8S_POD_UID`, when the runtime passes it. */
  readonly uid: string | undefined;
}

export interface CniEnv {
  readonly command: CniCommand;
  readonly containerId: string | undefined;
  readonly netns: string | undefined;
  readonly ifName: string | undefined;
  /** `CNI_ARGS` as key/value pairs. */
  readonly args: Readonly<Record<string, string>>;
}

export interface Route {
  readonly dst: string;
  readonly gw?: string;
  readonly mtu?: number;
  readonly advmss?: number;
  readonly priority?: number;
  readonly table?: number;
  readonly scope?: number;
}

export interface Dns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

export interface IpamConfig {
  readonly type: string;
  /** Absolute or working-directory-relative path of the kubeconfig to reach the API server. */
  readonly kubeconfig: string | undefined;
  readonly routes: readonly Route[];
  readonly dns: Dns | undefined;
}

export interface NetConf {
  readonly cniVersion: CniVersion;
  readonly name: string;
  readonly type: string;
  readonly ipam: IpamConfig;
  /** `runtimeConfig["io.kubernetes.cri.pod-annotations"]`, when the runtime passed it. */
  readonly podAnnotations: Readonly<Record<string, string>> | undefined;
  /** The previous plugin's result (CHECK, and chained ADD), unparsed. */
  readonly prevResult: unknown;
}

type Env = Readonly<Record<string, string | undefined>>;
type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const envError = (name: string, problem: string): CniError =>
  new CniError(CNI_ERROR.invalidEnv, `${name} ${problem}`);

/** Reads `CNI_COMMAND` alone; code 4 when it is absent or not a CNI verb. */
export const parseCommand = (env: Env): CniCommand => {
  const raw = env.CNI_COMMAND;
  if (raw === undefined || raw === '') throw envError('CNI_COMMAND', 'is not set');
  const command = CNI_COMMANDS.find(c => c === raw);
  if (command === undefined) {
    throw envError('CNI_COMMAND', `is ${quote(raw)}; expected one of ${CNI_COMMANDS.join(', ')}`);
  }
  return command;
};

/** `CNI_ARGS` (`K=V;K2=V2`) as a record; code 4 naming `CNI_ARGS` for a pair without `=`. */
export const parseCniArgs = (raw: string | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  if (raw === undefined || raw.trim() === '') return out;
  for (const pair of raw.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw envError('CNI_ARGS', `has a malformed pair ${quote(pair)} (expected KEY=VALUE)`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
};

/** Which `CNI_*` variables each verb needs (CNI SPEC 1.1 "Parameters"). */
const REQUIRED_ENV: Readonly<Record<CniCommand, readonly string[]>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  VERSION: [],
  STATUS: [],
  GC: [],
};

const nonEmpty = (v: string | undefined): string | undefined => (v === '' ? undefined : v);

/** The `CNI_*` environment for `command`; code 4 naming the first missing variable. */
export const parseEnv = (env: Env, command: CniCommand): CniEnv => {
  for (const name of REQUIRED_ENV[command]) {
    if (nonEmpty(env[name]) === undefined)
      throw envError(name, `is not set (required for ${command})`);
  }
  return Object.freeze({
    command,
    containerId: nonEmpty(env.CNI_CONTAINERID),
    netns: nonEmpty(env.CNI_NETNS),
    ifName: nonEmpty(env.CNI_IFNAME),
    args: Object.freeze(parseCniArgs(env.CNI_ARGS)),
  });
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** The pod named by `CNI_ARGS`; code 4 naming the missing or malformed `K8S_POD_*` key. */
export const podRefFromArgs = (args: Readonly<Record<string, string>>): CniPodRef => {
  const namespace = nonEmpty(args.K8S_POD_NAMESPACE);
  const name = nonEmpty(args.K8S_POD_NAME);
  if (namespace === undefined) throw envError('CNI_ARGS', 'lacks K8S_POD_NAMESPACE');
  if (name === undefined) throw envError('CNI_ARGS', 'lacks K8S_POD_NAME');
  if (!DNS_LABEL.test(namespace)) {
    throw envError('CNI_ARGS', `has K8S_POD_NAMESPACE=${quote(namespace)}, not a namespace name`);
  }
  if (!DNS_SUBDOMAIN.test(name)) {
    throw envError('CNI_ARGS', `has K8S_POD_NAME=${quote(name)}, not a pod name`);
  }
  return Object.freeze({ namespace, name, uid: nonEmpty(args.K8S_POD_UID) });
};

/** Stdin as a JSON object; code 6 when it is not one. */
export const decodeStdin = (stdin: string): Json => {
  if (stdin.trim() === '') {
    throw new CniError(
      CNI_ERROR.decodeFailure,
      'no network configuration on stdin',
      'the runtime passes the NetConf JSON on standard input',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(
      CNI_ERROR.decodeFailure,
      'the network configuration on stdin is not valid JSON',
      e instanceof Error ? e.message : String(e),
    );
  }
  if (!isObject(parsed)) {
    throw new CniError(
      CNI_ERROR.decodeFailure,
      'the network configuration on stdin is not a JSON object',
    );
  }
  return parsed;
};

/** The `cniVersion` of a decoded NetConf, for messages; `LATEST_VERSION` when absent. */
export const rawVersion = (conf: Json): string =>
  typeof conf.cniVersion === 'string' && conf.cniVersion !== '' ? conf.cniVersion : LATEST_VERSION;

/** The family of a CIDR `a.b.c.d/n` or `x::/n`, or undefined when it is not one. */
export const cidrFamily = (cidr: string): 4 | 6 | undefined => parsePrefix(cidr)?.family;

const ROUTE_INTS = ['mtu', 'advmss', 'priority', 'table', 'scope'] as const;

const routeInts = (
  raw: Json,
  at: string,
  route: Record<string, string | number>,
  problems: string[],
): void => {
  for (const key of ROUTE_INTS) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) route[key] = v;
    else problems.push(`${at}.${key} ${quoteJson(v)} is not a non-negative integer`);
  }
};

const parseRoute = (raw: unknown, at: string, problems: string[]): Route | undefined => {
  if (!isObject(raw)) {
    problems.push(`${at} is not an object`);
    return undefined;
  }
  const { dst, gw } = raw;
  if (typeof dst !== 'string' || cidrFamily(dst) === undefined) {
    problems.push(`${at}.dst ${quoteJson(dst)} is not a CIDR`);
    return undefined;
  }
  if (gw !== undefined && (typeof gw !== 'string' || addrFamily(gw) === 0)) {
    problems.push(`${at}.gw ${quoteJson(gw)} is not an IP address`);
    return undefined;
  }
  const route: Record<string, string | number> = { dst };
  if (typeof gw === 'string') route.gw = gw;
  routeInts(raw, at, route, problems);
  return route as unknown as Route;
};

const stringList = (v: unknown, at: string, problems: string[]): string[] | undefined => {
  if (v === undefined) return undefined;
  if (Array.isArray(v) && v.every(s => typeof s === 'string')) return v;
  problems.push(`${at} is not a list of strings`);
  return undefined;
};

const parseDns = (raw: unknown, problems: string[]): Dns | undefined => {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) {
    problems.push('ipam.dns is not an object');
    return undefined;
  }
  const dns: { -readonly [K in keyof Dns]: Dns[K] } = {};
  const nameservers = stringList(raw.nameservers, 'ipam.dns.nameservers', problems);
  const bad = nameservers?.find(s => addrFamily(s) === 0);
  if (bad !== undefined) problems.push(`ipam.dns.nameservers has ${quote(bad)}, not an IP address`);
  if (nameservers !== undefined) dns.nameservers = nameservers;
  if (typeof raw.domain === 'string') dns.domain = raw.domain;
  else if (raw.domain !== undefined) problems.push('ipam.dns.domain is not a string');
  const search = stringList(raw.search, 'ipam.dns.search', problems);
  if (search !== undefined) dns.search = search;
  const options = stringList(raw.options, 'ipam.dns.options', problems);
  if (options !== undefined) dns.options = options;
  return dns;
};

const parseIpam = (raw: unknown, problems: string[]): IpamConfig => {
  const ipam = isObject(raw) ? raw : {};
  if (!isObject(raw)) problems.push('"ipam" is missing or not an object');
  const type = typeof ipam.type === 'string' ? ipam.type : '';
  if (type === '') problems.push('ipam.type is missing');
  let kubeconfig: string | undefined;
  if (typeof ipam.kubeconfig === 'string' && ipam.kubeconfig !== '') kubeconfig = ipam.kubeconfig;
  else if (ipam.kubeconfig !== undefined)
    problems.push('ipam.kubeconfig is not a non-empty string (a file path)');
  const routes: Route[] = [];
  if (Array.isArray(ipam.routes)) {
    ipam.routes.forEach((r: unknown, i) => {
      const route = parseRoute(r, `ipam.routes[${i}]`, problems);
      if (route !== undefined) routes.push(route);
    });
  } else if (ipam.routes !== undefined) {
    problems.push('ipam.routes is not a list');
  }
  return Object.freeze({ type, kubeconfig, routes, dns: parseDns(ipam.dns, problems) });
};

const parseAnnotations = (
  runtimeConfig: unknown,
  problems: string[],
): Readonly<Record<string, string>> | undefined => {
  if (runtimeConfig === undefined) return undefined;
  if (!isObject(runtimeConfig)) {
    problems.push('runtimeConfig is not an object');
    return undefined;
  }
  const raw = runtimeConfig[POD_ANNOTATIONS_CAPABILITY];
  if (raw === undefined) return undefined;
  if (!isObject(raw) || !Object.values(raw).every(v => typeof v === 'string')) {
    problems.push(`runtimeConfig["${POD_ANNOTATIONS_CAPABILITY}"] is not a map of strings`);
    return undefined;
  }
  return Object.freeze({ ...(raw as Record<string, string>) });
};

/**
 * The NetConf for ADD/CHECK/DEL/STATUS/GC: code 1 for an unsupported `cniVersion`, code 7 listing
 * every invalid field.
 */
export const parseNetConf = (conf: Json): NetConf => {
  const cniVersion = requireSupported(rawVersion(conf));
  const problems: string[] = [];
  const name = typeof conf.name === 'string' ? conf.name : '';
  if (name === '') problems.push('"name" is missing');
  const type = typeof conf.type === 'string' ? conf.type : '';
  const ipam = parseIpam(conf.ipam, problems);
  const podAnnotations = parseAnnotations(conf.runtimeConfig, problems);
  if (problems.length > 0) {
    throw new CniError(
      CNI_ERROR.invalidConfig,
      `invalid network configuration${name === '' ? '' : ` "${name}"`}`,
      problems.join('; '),
    );
  }
  return Object.freeze({
    cniVersion,
    name,
    type,
    ipam,
    podAnnotations,
    prevResult: conf.prevResult,
  });
};
