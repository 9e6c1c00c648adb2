/** The IPAM result in the caller's `cniVersion` (CNI SPEC 0.3.0 … 1.1.0 "Success"). */
import type { Dns, Route } from './args.js';
import type { PodAddress } from './pod.js';
import { compareVersions, type CniVersion } from './version.js';

export interface IpEntry {
  version?: '4' | '6';
  address: string;
  gateway?: string;
}

export interface RouteEntry {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface IpamResult {
  cniVersion: CniVersion;
  ips: IpEntry[];
  routes?: RouteEntry[];
  dns?: Dns;
}

/** Before 1.0.0 every IP entry names its family (`"version": "4"`); 1.0.0 dropped the field. */
const ipEntry = (a: PodAddress, cniVersion: CniVersion): IpEntry => {
  const entry: IpEntry =
    compareVersions(cniVersion, '1.0.0') < 0
      ? { version: a.family === 4 ? '4' : '6', address: a.address }
      : { address: a.address };
  if (a.gateway !== undefined) entry.gateway = a.gateway;
  return entry;
};

/** Route fields other than `dst`/`gw` (mtu, advmss, priority, table, scope) came with 1.1.0. */
const routeEntry = (r: Route, cniVersion: CniVersion): RouteEntry => {
  if (compareVersions(cniVersion, '1.1.0') >= 0) return { ...r };
  return r.gw === undefined ? { dst: r.dst } : { dst: r.dst, gw: r.gw };
};

export interface ResultInput {
  readonly addresses: readonly PodAddress[];
  readonly routes: readonly Route[];
  readonly dns: Dns | undefined;
}

/** The result object to print for ADD; `routes` and `dns` appear only when configured. */
export const formatResult = (input: ResultInput, cniVersion: CniVersion): IpamResult => {
  const result: IpamResult = { cniVersion, ips: input.addresses.map(a => ipEntry(a, cniVersion)) };
  if (input.routes.length > 0) result.routes = input.routes.map(r => routeEntry(r, cniVersion));
  if (input.dns !== undefined) result.dns = input.dns;
  return result;
};

/** The addresses (`ip/prefix`) a previous result lists, for CHECK; undefined when it has none. */
export const prevResultAddresses = (prevResult: unknown): string[] | undefined => {
  if (typeof prevResult !== 'object' || prevResult === null) return undefined;
  const ips = (prevResult as { ips?: unknown }).ips;
  if (!Array.isArray(ips)) return undefined;
  const out: string[] = [];
  for (const ip of ips as unknown[]) {
    const address =
      typeof ip === 'object' && ip !== null ? (ip as { address?: unknown }).address : undefined;
    if (typeof address === 'string') out.push(address);
  }
  return out;
};
