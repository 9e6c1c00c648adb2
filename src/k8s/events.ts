/**
 * Kubernetes Events on pods, for what needs a person (a lease conflict, two pods on one address,
 * a lease that cannot be restored). The same reason on the same pod is sent at most once per
 * `EVENT_REPEAT_MS`; a failure to send is logged, never thrown: events are advice.
 */
import type { KubeClient } from './client.js';
import type { Logger } from '../log/logger.js';

export const EVENT_REPEAT_MS = 10 * 60_000;
const MAX_REMEMBERED = 10_000;
const EVENT_TIMEOUT_MS = 5_000;

export interface EventTarget {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string | undefined;
}

export interface EventSink {
  warn(pod: EventTarget, reason: string, message: string): void;
}

export const NO_EVENTS: EventSink = { warn: () => undefined };

export const kubeEvents = (client: KubeClient, log: Logger, instance: string): EventSink => {
  const sent = new Map<string, number>();
  return {
    warn(pod, reason, message) {
      const key = `${pod.namespace}/${pod.name}/${pod.uid ?? ''}/${reason}`;
      const now = Date.now();
      const last = sent.get(key);
      if (last !== undefined && now - last < EVENT_REPEAT_MS) return;
      if (sent.size >= MAX_REMEMBERED) sent.clear();
      sent.set(key, now);
      const at = new Date(now).toISOString();
      const body = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${pod.name}.podlease.`, namespace: pod.namespace },
        involvedObject: {
          apiVersion: 'v1',
          kind: 'Pod',
          namespace: pod.namespace,
          name: pod.name,
          ...(pod.uid === undefined ? {} : { uid: pod.uid }),
        },
        reason,
        message: message.slice(0, 1000),
        type: 'Warning',
        source: { component: 'podlease-controller' },
        reportingComponent: 'podlease.io/controller',
        reportingInstance: instance,
        firstTimestamp: at,
        lastTimestamp: at,
        count: 1,
      };
      client
        .request(`/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/events`, {
          method: 'POST',
          body,
          timeoutMs: EVENT_TIMEOUT_MS,
        })
        .catch((err: unknown) => {
          log.warn(
            { err, pod: `${pod.namespace}/${pod.name}`, reason },
            'could not record an event',
          );
        });
    },
  };
};
