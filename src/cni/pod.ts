/**
 * From a pod's podlease annotations (docs/design.md §3) to the addresses the CNI result carries.
 * No imports beyond the annotation keys and the local address helpers: this is on the ADD path.
 */
import { OWNED_ANNOTATIONS, USER_ANNOTATIONS } from '../pool/annotations.js';
import {
  canonicalAddrOrInput,
  formatAddr,
  addrFamily,
  parseAddr,
  parsePrefix,
  prefixContains,
  type Prefix,
} from './addr.js';
import type { CniPodRef } from './args.js';
import { CNI_ERROR, CniError } from './errors.js';
import { quote } from '../text/quote.js';

/** One address of the pod, with the prefix length of its pool and the pool's gateway. */
export interface PodAddress {
  readonly family: 4 | 6;
  /** `ip/prefixlen`, as CNI results carry it. */
  readonly address: string;
  readonly gateway: string | undefined;
}

/** What a pod lookup returns: the pod's UID (when known) and its annotations. */
export interface PodInfo {
  readonly uid: string | undefined;
  readonly annotations: Readonly<Record<string, string>>;
}

const podName = (pod: CniPodRef): string => `${pod.namespace}/${pod.name}`;

const splitList = (v: string): string[] => v.split(',').map(s => s.trim());

/** Canonical `ip/prefix` (for comparing a previous result's addresses); unchanged if not one. */
export const canonicalAddress = (address: string): string => {
  const [ip = '', bits] = address.split('/');
  if (addrFamily(ip) === 0 || bits === undefined) return address;
  return `${canonicalAddrOrInput(ip)}/${bits}`;
};

const prefixText = (p: Prefix): string =>
  `${formatAddr({ family: p.family, value: p.network })}/${p.bits}`;

const bad = (pod: CniPodRef, what: string): CniError =>
  new CniError(
    CNI_ERROR.badAnnotation,
    `pod ${podName(pod)} has a malformed podlease annotation`,
    `${what}; the annotations are written by the podlease webhook — recreate the pod`,
  );

const notAdmitted = (pod: CniPodRef, annotations: Readonly<Record<string, string>>): CniError => {
  if (annotations[USER_ANNOTATIONS.ignore] === 'true') {
    return new CniError(
      CNI_ERROR.podIgnored,
      `pod ${podName(pod)} is marked ${USER_ANNOTATIONS.ignore}: "true", so podlease leased it no address`,
      'use another IPAM for this network, or remove the annotation and recreate the pod',
    );
  }
  return new CniError(
    CNI_ERROR.podNotAdmitted,
    `pod ${podName(pod)} has no ${OWNED_ANNOTATIONS.ip} annotation: the podlease webhook did not admit it`,
    'check that the MutatingWebhookConfiguration for podlease exists, selects this namespace and ' +
      'was reachable when the pod was created (failurePolicy: Ignore lets pods through unannotated); ' +
      'then delete the pod so it is recreated',
  );
};

const pickGateway = (
  pod: CniPodRef,
  gateways: readonly string[],
  prefix: Prefix,
): string | undefined => {
  const gw = gateways.map(parseAddr).find(g => g?.family === prefix.family);
  if (gw === undefined) return undefined;
  if (!prefixContains(prefix, gw)) {
    throw bad(pod, `gateway ${formatAddr(gw)} is outside ${prefixText(prefix)}`);
  }
  return formatAddr(gw);
};

const toAddress = (
  pod: CniPodRef,
  ip: string,
  cidrRaw: string,
  gateways: readonly string[],
): PodAddress => {
  const prefix = parsePrefix(cidrRaw);
  const addr = parseAddr(ip);
  if (addr === undefined) throw bad(pod, `${quote(ip)} is not an IP address`);
  if (prefix === undefined) throw bad(pod, `${quote(cidrRaw)} is not a CIDR`);
  if (!prefixContains(prefix, addr)) throw bad(pod, `address ${ip} is outside ${quote(cidrRaw)}`);
  return {
    family: addr.family,
    address: `${formatAddr(addr)}/${prefix.bits}`,
    gateway: pickGateway(pod, gateways, prefix),
  };
};

interface Lists {
  ipText: string;
  ips: string[];
  cidrs: string[];
  gateways: string[];
}

const annotationLists = (pod: CniPodRef, annotations: Readonly<Record<string, string>>): Lists => {
  const ipText = annotations[OWNED_ANNOTATIONS.ip]?.trim() ?? '';
  if (ipText === '') throw notAdmitted(pod, annotations);
  const cidrText = annotations[OWNED_ANNOTATIONS.cidr]?.trim() ?? '';
  if (cidrText === '') {
    throw bad(pod, `${OWNED_ANNOTATIONS.ip} is set but ${OWNED_ANNOTATIONS.cidr} is missing`);
  }
  const ips = splitList(ipText);
  const cidrs = splitList(cidrText);
  const gateways = splitList(annotations[OWNED_ANNOTATIONS.gateway] ?? '').filter(g => g !== '');
  if (ips.length !== cidrs.length || ips.length > 2) {
    throw bad(
      pod,
      `${OWNED_ANNOTATIONS.ip}=${quote(ipText)} does not pair with ${OWNED_ANNOTATIONS.cidr}=${quote(cidrText)}`,
    );
  }
  const badGw = gateways.find(g => addrFamily(g) === 0);
  if (badGw !== undefined) throw bad(pod, `gateway ${quote(badGw)} is not an IP address`);
  return { ipText, ips, cidrs, gateways };
};

/**
 * The pod's addresses, IPv4 first: one entry per family from the comma lists in
 * `podlease.io/ip`, `podlease.io/cidr` and `podlease.io/gateway`. Code 100 when the pod has no
 * address (106 when it is marked ignore), 101 when the annotations do not fit together.
 */
export const podAddresses = (
  pod: CniPodRef,
  annotations: Readonly<Record<string, string>>,
): PodAddress[] => {
  const { ipText, ips, cidrs, gateways } = annotationLists(pod, annotations);
  const out = ips.map((ip, i) => toAddress(pod, ip, cidrs[i] ?? '', gateways));
  if (out.length === 2 && out[0]?.family === out[1]?.family) {
    throw bad(pod, `${OWNED_ANNOTATIONS.ip}=${quote(ipText)} lists two addresses of one family`);
  }
  return out.sort((a, b) => a.family - b.family);
};

/** Code 102 when the runtime named a pod UID and the pod found has another one. */
export const checkUid = (pod: CniPodRef, found: PodInfo): void => {
  if (pod.uid === undefined || found.uid === undefined || pod.uid === found.uid) return;
  throw new CniError(
    CNI_ERROR.podUidMismatch,
    `pod ${podName(pod)} has UID ${found.uid}, not ${pod.uid} as the runtime says`,
    'the pod was deleted and recreated under the same name; the runtime will retry with the new pod',
  );
};
