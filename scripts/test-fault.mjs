// `npm run test:fault -- --seeds N [--steps S] [--from SEED]`: the lease-safety fault suite
// (test/integration/fault) with N seeds, consecutive from a random start (or --from). A failure
// names its seed; rerun it alone with `npm run test:fault -- --seeds 1 --from <seed>`.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '10' },
    steps: { type: 'string', default: '200' },
    from: { type: 'string' },
  },
});
const count = Number(values.seeds);
const from = values.from === undefined ? Math.floor(Math.random() * 1e6) : Number(values.from);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(from)) {
  console.error('usage: npm run test:fault -- --seeds N [--steps S] [--from SEED]');
  process.exit(2);
}
const seeds = Array.from({ length: count }, (_, i) => from + i).join(',');
console.log(`fault suite: seeds ${seeds}, ${values.steps} steps each`);
const r = spawnSync(
  process.execPath,
  ['node_modules/vitest/vitest.mjs', 'run', '--project', 'integration', 'test/integration/fault'],
  {
    stdio: 'inherit',
    env: { ...process.env, PODLEASE_FAULT_SEEDS: seeds, PODLEASE_FAULT_STEPS: values.steps },
  },
);
process.exit(r.status ?? 1);
