import { defineConfig } from 'vitest/config';

// Three projects split by dependency (docs/design.md §11): unit tests are pure and run in parallel;
// integration tests talk to a real redis-server, HTTPS servers and spawned executables and run
// one file at a time; e2e runs against a real kube-apiserver built from Go modules.
export default defineConfig({
  test: {
    // Coverage of src/ by the unit project (`npm test` and `npm run test:unit` pass --coverage for
    // it): the summary prints in the run's output and the run fails below the floor. The floor
    // was set a little under the level measured when it was introduced; raise it as tests are
    // added, never lower it.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary'],
      reportsDirectory: 'coverage',
      // Measured 2026-12-02: statements 77.32 %, branches 69.46 %, functions 75.08 %, lines 78.65 %.
      thresholds: { statements: 76, branches: 68, functions: 74, lines: 77 },
    },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // The property tests run thousands of cases; with coverage on and a busy 2-core machine
          // one can pass 5 s (the default) without anything being wrong.
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 1_800_000,
        },
      },
    ],
  },
});
