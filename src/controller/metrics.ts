/** Prometheus metrics of the controller, registered on the process's registry. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ControllerMetrics {
  bound(pool: string): void;
  released(pool: string, reason: ReleaseReason): void;
  expired(pool: string): void;
  leaked(pool: string): void;
  conflict(pool: string, kind: string): void;
  restored(pool: string, count: number): void;
  /** A pool reconciled on its store's new history (after a Redis failover or restart). */
  historyReconciled(pool: string): void;
  unreserved(pool: string, reason: string): void;
  reconcileSeconds(seconds: number): void;
  rebuildSeconds(pool: string, seconds: number): void;
  watchRestart(resource: string): void;
  leader(isLeader: boolean): void;
  /** Last reconcile's findings by kind (gauges). */
  findings(pool: string, kind: string, count: number): void;
}

export type ReleaseReason = 'deleted' | 'finished' | 'expired' | 'leaked';

export const createControllerMetrics = (registry: Registry): ControllerMetrics => {
  const reg = { registers: [registry] };
  const bound = new Counter({
    name: 'podlease_leases_bound_total',
    help: 'Pending leases bound to their pod',
    labelNames: ['pool'],
    ...reg,
  });
  const released = new Counter({
    name: 'podlease_leases_released_total',
    help: 'Leases released by the controller, by reason',
    labelNames: ['pool', 'reason'],
    ...reg,
  });
  const expired = new Counter({
    name: 'podlease_leases_expired_total',
    help: 'Pending leases expired after the API server had no pod carrying them',
    labelNames: ['pool'],
    ...reg,
  });
  const leaked = new Counter({
    name: 'podlease_leases_leaked_total',
    help: 'Leases found by reconcile whose pod was gone (a missed delete)',
    labelNames: ['pool'],
    ...reg,
  });
  const conflicts = new Counter({
    name: 'podlease_lease_conflicts_total',
    help: 'Conflicts: a lease id on two pods, two pods on one address, a lease that cannot be restored',
    labelNames: ['pool', 'kind'],
    ...reg,
  });
  const restored = new Counter({
    name: 'podlease_leases_restored_total',
    help: 'Leases restored from pod annotations (rebuild and reconcile)',
    labelNames: ['pool'],
    ...reg,
  });
  const histories = new Counter({
    name: 'podlease_history_reconciled_total',
    help: "Pools reconciled on their store's new history (a Redis failover or restart) before allocation resumed",
    labelNames: ['pool'],
    ...reg,
  });
  const unreserved = new Counter({
    name: 'podlease_reservations_released_total',
    help: 'Sticky reservations released by when-scaled / when-deleted',
    labelNames: ['pool', 'reason'],
    ...reg,
  });
  const reconcile = new Histogram({
    name: 'podlease_reconcile_duration_seconds',
    help: 'Duration of a full reconcile pass',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    ...reg,
  });
  const rebuild = new Histogram({
    name: 'podlease_rebuild_duration_seconds',
    help: 'Duration of a pool rebuild from pod annotations',
    labelNames: ['pool'],
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    ...reg,
  });
  const restarts = new Counter({
    name: 'podlease_watch_restarts_total',
    help: 'Watches restarted after a failure',
    labelNames: ['resource'],
    ...reg,
  });
  const leader = new Gauge({
    name: 'podlease_controller_leader',
    help: '1 while this replica is the active controller',
    ...reg,
  });
  const findings = new Gauge({
    name: 'podlease_reconcile_findings',
    help: 'Findings of the last reconcile, by kind',
    labelNames: ['pool', 'kind'],
    ...reg,
  });
  return {
    bound: pool => {
      bound.inc({ pool });
    },
    released: (pool, reason) => {
      released.inc({ pool, reason });
    },
    expired: pool => {
      expired.inc({ pool });
    },
    leaked: pool => {
      leaked.inc({ pool });
    },
    conflict: (pool, kind) => {
      conflicts.inc({ pool, kind });
    },
    restored: (pool, count) => {
      restored.inc({ pool }, count);
    },
    historyReconciled: pool => {
      histories.inc({ pool });
    },
    unreserved: (pool, reason) => {
      unreserved.inc({ pool, reason });
    },
    reconcileSeconds: s => {
      reconcile.observe(s);
    },
    rebuildSeconds: (pool, s) => {
      rebuild.observe({ pool }, s);
    },
    watchRestart: resource => {
      restarts.inc({ resource });
    },
    leader: is => {
      leader.set(is ? 1 : 0);
    },
    findings: (pool, kind, count) => {
      findings.set({ pool, kind }, count);
    },
  };
};
