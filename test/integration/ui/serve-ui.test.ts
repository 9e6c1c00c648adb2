/**
 * `podlease serve --ui-listen`: the built executable serves the pool map on its own listener,
 * beside the webhook and the metrics, and stops it on SIGTERM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/lib/free-port.mjs';
import {
  ensureBuilt,
  generateCerts,
  startServe,
  type ServeProcess,
} from '../webhook/serve-process.js';

describe('podlease serve --ui-listen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'podlease-ui-serve-'));
  let serve: ServeProcess;
  let port = 0;

  beforeAll(async () => {
    ensureBuilt();
    generateCerts(dir);
    port = await freePort();
    serve = await startServe({
      certDir: dir,
      args: ['--ui-listen', String(port), '--log-level', 'info', '--controller', 'off'],
      env: {},
    });
  });

  afterAll(async () => {
    await (serve as ServeProcess | undefined)?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the pool map on 127.0.0.1:<port> from the memory store', async () => {
    const page = await fetch(`http://127.0.0.1:${port}/pools/default`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('10.244.0.0/16');
    expect(html).toContain('<dt>size</dt><dd>65,533</dd>');
    const map = (await (await fetch(`http://127.0.0.1:${port}/api/pools/default/map`)).json()) as {
      cells: string;
    };
    expect(map.cells).toHaveLength(65_536);
    await expect.poll(() => serve.output()).toContain(`pool map on http://127.0.0.1:${port}`);
    expect(await serve.stop()).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});
