/**
 * The CNI DaemonSet's installer (`podlease-cni-install`, docs/cni.md "Installing"): puts the
 * plugin and what it needs on a node, for the container runtime to find.
 *
 *   <binDir>/podlease                   the plugin executable (dist/cni/podlease)
 *   <confDir>/podlease/token            the plugin's service-account token, copied from the
 *                                       projected volume at every rotation
 *   <confDir>/podlease/kubeconfig       JSON (read without the YAML parser): the API server, its
 *                                       CA inline, and `tokenFile` naming the token above
 *   <confDir>/<conflist>                optional: a network configuration whose podlease IPAM
 *                                       gets `ipam.kubeconfig` and the
 *                                       `io.kubernetes.cri.pod-annotations` capability
 *
 * The runtime may read any of these at any moment, so no file is ever written in place: each is
 * written whole to a temporary file beside its destination (same file system), flushed to disk,
 * then renamed over it. A reader sees the old file or the new one, never a part. Temporary names
 * start with a dot and end in `.podlease-tmp-<pid>`, which no runtime takes for a network
 * configuration or a plugin; leftovers of a killed run are removed at the next start. Order
 * matters too: the binary, token and kubeconfig are in place before the conflist that makes the
 * runtime use them.
 *
 * All file system access goes through `InstallFs`, so tests can stop the installer between any
 * two steps.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { InstallConfig } from '../config/cni-install.js';
import { InstallError } from './errors.js';

/** The file operations the installer uses (node:fs/promises by default). */
export interface InstallFs {
  readonly readFile: (path: string) => Promise<Buffer>;
  /** Writes and flushes (fsync) a new file. */
  readonly writeFileSynced: (path: string, data: Buffer, mode: number) => Promise<void>;
  /** Copies a file and flushes the copy (fsync). */
  readonly copyFileSynced: (from: string, to: string, mode: number) => Promise<void>;
  readonly rename: (from: string, to: string) => Promise<void>;
  readonly rm: (path: string) => Promise<void>;
  readonly mkdir: (path: string) => Promise<void>;
  readonly readdir: (path: string) => Promise<string[]>;
  /** SHA-256 of a file's content, or undefined when it does not exist. */
  readonly digest: (path: string) => Promise<string | undefined>;
}

const TMP_MARK = '.podlease-tmp-';
export const PLUGIN_NAME = 'podlease';
export const KUBECONFIG_DIR = 'podlease';
export const POD_ANNOTATIONS_CAPABILITY = 'io.kubernetes.cri.pod-annotations';

const isMissing = (e: unknown): boolean => (e as NodeJS.ErrnoException).code === 'ENOENT';

/** Writes `data` to a new file (or, without data, opens an existing one), sets its mode, fsyncs. */
const syncedWrite = async (path: string, data: Buffer | undefined, mode: number): Promise<void> => {
  const handle = await fsp.open(path, data === undefined ? 'r+' : 'wx', mode);
  try {
    if (data !== undefined) await handle.writeFile(data);
    await handle.chmod(mode);
    await handle.sync();
  } finally {
    await handle.close();
  }
};

/** The real file system. */
export const nodeInstallFs: InstallFs = {
  readFile: path => fsp.readFile(path),
  writeFileSynced: (path, data, mode) => syncedWrite(path, data, mode),
  copyFileSynced: async (from, to, mode) => {
    // copy_file_range where the kernel has it: a 100 MiB plugin is never held in memory
    await fsp.copyFile(from, to);
    await syncedWrite(to, undefined, mode).catch(async (e: unknown) => {
      await fsp.rm(to, { force: true });
      throw e;
    });
  },
  rename: (from, to) => fsp.rename(from, to),
  rm: path => fsp.rm(path, { force: true }),
  mkdir: async path => {
    await fsp.mkdir(path, { recursive: true });
  },
  readdir: path => fsp.readdir(path),
  digest: async path => {
    const hash = createHash('sha256');
    try {
      const handle = await fsp.open(path, 'r');
      try {
        for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer);
      } finally {
        await handle.close();
      }
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
    return hash.digest('hex');
  },
};

/** What one pass changed, for the log. */
export interface InstallReport {
  /** Destination paths written (unchanged files are not rewritten). */
  readonly written: readonly string[];
  /** Temporary files of an earlier, interrupted run that were removed. */
  readonly removedLeftovers: readonly string[];
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

const tmpName = (dest: string): string =>
  join(
    dirname(dest),
    `.${basename(dest)}${TMP_MARK}${process.pid}-${randomBytes(3).toString('hex')}`,
  );

/** The files the installer writes, as paths in its container. */
export const installPaths = (
  config: InstallConfig,
): {
  plugin: string;
  token: string;
  kubeconfig: string;
  conflist: string | undefined;
} => ({
  plugin: join(config.binDir, PLUGIN_NAME),
  token: join(config.confDir, KUBECONFIG_DIR, 'token'),
  kubeconfig: join(config.confDir, KUBECONFIG_DIR, 'kubeconfig'),
  conflist: config.conflist && join(config.confDir, config.conflist.fileName),
});

/** The kubeconfig the plugin reads (JSON, docs/cni.md), naming the token by its host path. */
export const toKubeconfig = (config: InstallConfig, ca: Buffer | undefined): string =>
  `${JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'podlease',
      clusters: [
        {
          name: 'podlease',
          cluster: {
            server: config.server,
            ...(ca === undefined ? {} : { 'certificate-authority-data': ca.toString('base64') }),
          },
        },
      ],
      users: [
        {
          name: 'podlease-cni',
          user: { tokenFile: join(config.hostConfDir, KUBECONFIG_DIR, 'token') },
        },
      ],
      contexts: [{ name: 'podlease', context: { cluster: 'podlease', user: 'podlease-cni' } }],
    },
    null,
    2,
  )}\n`;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The conflist to install: the template with, on every plugin whose IPAM is podlease,
 * `ipam.kubeconfig` (unless set) and the pod-annotations capability, so the runtime passes the
 * pod's annotations and ADD makes no API call.
 */
export const toConflist = (config: InstallConfig, template: string, source: string): string => {
  let doc: unknown;
  try {
    doc = JSON.parse(template);
  } catch (e) {
    throw new InstallError(
      `conflist template ${source} is not JSON: ${(e as Error).message}`,
      false,
    );
  }
  const plugins = isObject(doc) ? doc.plugins : undefined;
  if (!isObject(doc) || typeof doc.name !== 'string' || !Array.isArray(plugins)) {
    throw new InstallError(
      `conflist template ${source} needs "cniVersion", "name" and a "plugins" list`,
      false,
    );
  }
  const kubeconfig = join(config.hostConfDir, KUBECONFIG_DIR, 'kubeconfig');
  let uses = 0;
  const filled = plugins.map((plugin: unknown) => {
    if (!isObject(plugin) || !isObject(plugin.ipam) || plugin.ipam.type !== PLUGIN_NAME) {
      return plugin;
    }
    uses++;
    const capabilities = isObject(plugin.capabilities) ? plugin.capabilities : {};
    return {
      ...plugin,
      capabilities: { ...capabilities, [POD_ANNOTATIONS_CAPABILITY]: true },
      ipam: { kubeconfig, ...plugin.ipam },
    };
  });
  if (uses === 0) {
    throw new InstallError(
      `conflist template ${source}: no plugin has "ipam": {"type": "${PLUGIN_NAME}"}`,
      false,
    );
  }
  return `${JSON.stringify({ ...doc, plugins: filled }, null, 2)}\n`;
};

const readInput = async (fs: InstallFs, path: string, what: string): Promise<Buffer> => {
  try {
    return await fs.readFile(path);
  } catch (e) {
    throw new InstallError(`cannot read ${what} ${path}: ${(e as Error).message}`, true, {
      cause: e,
    });
  }
};

export class Installer {
  readonly config: InstallConfig;
  readonly fs: InstallFs;

  constructor(config: InstallConfig, fs: InstallFs = nodeInstallFs) {
    this.config = config;
    this.fs = fs;
  }

  /** Writes `data` to `dest` unless it already holds exactly that: temp file, flush, rename. */
  async put(dest: string, data: Buffer, mode: number): Promise<boolean> {
    if ((await this.fs.digest(dest)) === sha256(data)) return false;
    const tmp = tmpName(dest);
    try {
      await this.fs.writeFileSynced(tmp, data, mode);
      await this.fs.rename(tmp, dest);
    } catch (e) {
      await this.fs.rm(tmp).catch(() => undefined);
      throw e;
    }
    return true;
  }

  /** Copies the plugin unless the installed one is the same: temp copy, flush, rename. */
  async putPlugin(dest: string): Promise<boolean> {
    const source = this.config.pluginSource;
    const want = await this.fs.digest(source);
    if (want === undefined) throw new InstallError(`the plugin ${source} does not exist`, false);
    if ((await this.fs.digest(dest)) === want) return false;
    const tmp = tmpName(dest);
    try {
      await this.fs.copyFileSynced(source, tmp, 0o755);
      await this.fs.rename(tmp, dest);
    } catch (e) {
      await this.fs.rm(tmp).catch(() => undefined);
      throw e;
    }
    return true;
  }

  /** Removes `.<name>.podlease-tmp-*` files an interrupted run left in `dir`. */
  async removeLeftovers(dir: string): Promise<string[]> {
    let names: string[];
    try {
      names = await this.fs.readdir(dir);
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
    const stale = names.filter(n => n.startsWith('.') && n.includes(TMP_MARK));
    for (const name of stale) await this.fs.rm(join(dir, name));
    return stale.map(n => join(dir, n));
  }

  /** The token and the kubeconfig (whose CA may have changed); run at every tick. */
  async syncCredentials(): Promise<string[]> {
    const paths = installPaths(this.config);
    const written: string[] = [];
    const token = await readInput(this.fs, this.config.tokenFile, 'the service-account token');
    if (token.toString('utf8').trim() === '') {
      throw new InstallError(`the service-account token ${this.config.tokenFile} is empty`, true);
    }
    const ca =
      this.config.caFile === undefined
        ? undefined
        : await readInput(this.fs, this.config.caFile, 'the cluster CA');
    await this.fs.mkdir(dirname(paths.token));
    if (await this.put(paths.token, token, 0o600)) written.push(paths.token);
    const kubeconfig = Buffer.from(toKubeconfig(this.config, ca));
    if (await this.put(paths.kubeconfig, kubeconfig, 0o600)) written.push(paths.kubeconfig);
    return written;
  }

  /** The conflist, when configured; run at every tick (its ConfigMap may change). */
  async syncConflist(): Promise<string[]> {
    const { conflist } = this.config;
    const dest = installPaths(this.config).conflist;
    if (conflist === undefined || dest === undefined) return [];
    const template = await readInput(this.fs, conflist.template, 'the conflist template');
    const text = toConflist(this.config, template.toString('utf8'), conflist.template);
    return (await this.put(dest, Buffer.from(text), 0o644)) ? [dest] : [];
  }

  /** A whole install: leftovers, then plugin, token, kubeconfig, and the conflist last. */
  async install(): Promise<InstallReport> {
    const paths = installPaths(this.config);
    const kubeconfigDir = dirname(paths.kubeconfig);
    const removedLeftovers = [
      ...(await this.removeLeftovers(this.config.binDir)),
      ...(await this.removeLeftovers(this.config.confDir)),
      ...(await this.removeLeftovers(kubeconfigDir)),
    ];
    await this.fs.mkdir(this.config.binDir);
    const written: string[] = [];
    if (await this.putPlugin(paths.plugin)) written.push(paths.plugin);
    written.push(...(await this.syncCredentials()));
    written.push(...(await this.syncConflist()));
    return { written, removedLeftovers };
  }

  /** One tick of the long-running installer: what may change while it runs. */
  async refresh(): Promise<string[]> {
    return [...(await this.syncCredentials()), ...(await this.syncConflist())];
  }
}
