// Test PKI for the e2e control plane, made with the openssl command line (no npm dependency).
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const VALID_DAYS = '7';

export interface KeyPair {
  readonly certPath: string;
  readonly keyPath: string;
}

export interface CertificateRequest {
  /** Files are written as `<dir>/<name>.crt` and `<dir>/<name>.key`. */
  readonly name: string;
  readonly commonName: string;
  /** Subject O=; for a client certificate these are the user's groups (e.g. system:masters). */
  readonly organizations?: readonly string[];
  /** Subject alternative names: IP addresses and DNS names. */
  readonly ipAddresses?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly usage: 'server' | 'client';
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0] ?? ''} failed: ${stderr || String(err)}`, { cause: err });
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA: `<dir>/ca.crt`, `<dir>/ca.key`. */
export async function createCa(dir: string, commonName = 'podlease-e2e-ca'): Promise<KeyPair> {
  const pair = { certPath: path.join(dir, 'ca.crt'), keyPath: path.join(dir, 'ca.key') };
  await openssl([
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    pair.keyPath,
    '-out',
    pair.certPath,
    '-days',
    VALID_DAYS,
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);
  return pair;
}

/** A leaf certificate signed by `ca`, for a TLS server or a client (Kubernetes user). */
export async function issueCertificate(
  dir: string,
  ca: KeyPair,
  req: CertificateRequest,
): Promise<KeyPair> {
  const pair = {
    certPath: path.join(dir, `${req.name}.crt`),
    keyPath: path.join(dir, `${req.name}.key`),
  };
  const csrPath = path.join(dir, `${req.name}.csr`);
  const extPath = path.join(dir, `${req.name}.ext`);
  const subject = (req.organizations ?? []).map(o => `/O=${o}`).join('') + `/CN=${req.commonName}`;
  const sans = [
    ...(req.ipAddresses ?? []).map(ip => `IP:${ip}`),
    ...(req.dnsNames ?? []).map(dns => `DNS:${dns}`),
  ];
  const ext = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${req.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
    ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
  ];
  await writeFile(extPath, ext.join('\n') + '\n');
  await openssl([
    'req',
    '-new',
    ...EC_KEY,
    '-keyout',
    pair.keyPath,
    '-out',
    csrPath,
    '-subj',
    subject,
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csrPath,
    '-CA',
    ca.certPath,
    '-CAkey',
    ca.keyPath,
    // A random serial per certificate: -CAcreateserial shares one ca.srl file, and the
    // certificates of one PKI are issued concurrently (a torn ca.srl failed a run).
    '-set_serial',
    `0x${randomBytes(16).toString('hex')}`,
    '-days',
    VALID_DAYS,
    '-extfile',
    extPath,
    '-out',
    pair.certPath,
  ]);
  return pair;
}

/** An RSA key pair for signing service-account tokens: `<dir>/sa.key`, `<dir>/sa.pub`. */
export async function createServiceAccountKey(
  dir: string,
): Promise<{ privateKeyPath: string; publicKeyPath: string }> {
  const privateKeyPath = path.join(dir, 'sa.key');
  const publicKeyPath = path.join(dir, 'sa.pub');
  await openssl([
    'genpkey',
    '-algorithm',
    'RSA',
    '-pkeyopt',
    'rsa_keygen_bits:2048',
    '-out',
    privateKeyPath,
  ]);
  await openssl(['pkey', '-in', privateKeyPath, '-pubout', '-out', publicKeyPath]);
  return { privateKeyPath, publicKeyPath };
}
