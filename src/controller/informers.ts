/**
 * The three informers the controller and `podlease check` read the cluster through: every pod
 * (metadata only), finished pods (metadata only, by field selector: a finished Job pod keeps its
 * object but not its sandbox) and StatefulSets. One place for their paths, selectors and slims.
 */
import type { KubeClient } from '../k8s/client.js';
import { Informer, type InformerHandlers } from '../k8s/informer.js';
import type { Logger } from '../log/logger.js';
import { toPodInfo, toStatefulSetInfo, type PodInfo, type StatefulSetInfo } from './pod-info.js';

/** Pods in a phase whose sandbox is gone: Succeeded or Failed. */
export const FINISHED_SELECTOR =
  'status.phase!=Pending,status.phase!=Running,status.phase!=Unknown';

export interface ClusterInformers {
  readonly pods: Informer<PodInfo>;
  readonly finished: Informer<PodInfo>;
  readonly statefulSets: Informer<StatefulSetInfo>;
}

export const clusterInformers = (
  client: KubeClient,
  log: Logger,
  handlers: {
    readonly pods?: InformerHandlers<PodInfo>;
    readonly finished?: InformerHandlers<PodInfo>;
    readonly statefulSets?: InformerHandlers<StatefulSetInfo>;
  } = {},
): ClusterInformers => ({
  pods: new Informer<PodInfo>({
    client,
    path: '/api/v1/pods',
    metadataOnly: true,
    slim: toPodInfo,
    log,
    handlers: handlers.pods ?? {},
  }),
  finished: new Informer<PodInfo>({
    client,
    path: '/api/v1/pods',
    metadataOnly: true,
    fieldSelector: FINISHED_SELECTOR,
    slim: toPodInfo,
    log,
    handlers: handlers.finished ?? {},
  }),
  statefulSets: new Informer<StatefulSetInfo>({
    client,
    path: '/apis/apps/v1/statefulsets',
    metadataOnly: false,
    slim: toStatefulSetInfo,
    log,
    handlers: handlers.statefulSets ?? {},
  }),
});
