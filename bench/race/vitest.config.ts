import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vitest/config';

// bench:race runs on the e2e harness (test/e2e/global-setup.ts: the control plane and a
// redis-server), as its own vitest run so `npm run test:e2e` does not pay for it.
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    name: 'bench-race',
    include: ['bench/race/*.bench.test.ts'],
    globalSetup: ['test/e2e/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 1_200_000,
    hookTimeout: 1_200_000,
  },
});
