// The stand-in API server of bench:controller for 100k pods: plain HTTP on 127.0.0.1, serving
// what `podlease serve --controller on` and `podlease rebuild` call, and nothing else:
//   - paged `GET /api/v1/pods?limit=…&continue=…` as a `PartialObjectMetadataList` (every pod
//     carries podlease annotations, a ReplicaSet owner and two managedFields entries, the shape a
//     real API server returns), and the same with a `fieldSelector` (the finished pods: none);
//   - `GET /apis/apps/v1/statefulsets` (none) and `GET /api/v1/namespaces` (the pods' namespaces);
//   - watches (`watch=1`/`watch=true`): kept open, nothing sent;
//   - coordination.k8s.io Leases GET/POST/PUT with resourceVersion checks; Events POST.
// Pages of the default size (500) are rendered once at start, so the server costs little CPU
// while the controller lists. Anything else answers 404 and is counted (GET /stats).
//   node fake-apiserver.mjs <port> <pods> <pool> <cidr (IPv4, /8–/16)> <gateway>
// Prints `ready <bytes of one full list>` on stdout once listening.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { newLeaseId } from '../../dist/pool/lease-id.js';

const [portText, podsText, pool, cidr, gateway] = process.argv.slice(2);
const PODS = Number(podsText);
const PAGE = 500;
const NAMESPACES = 100;
const LIST_RV = '100000';
const WATCH_GRACE_MS = 250;

const [base = '', bitsText = ''] = (cidr ?? '').split('/');
const baseInt = base.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const size = 2 ** (32 - Number(bitsText));
if (!Number.isInteger(PODS) || PODS < 1 || PODS > size - 3) {
  throw new Error(`${PODS} pods do not fit in ${cidr}`);
}
const ipOf = n => [24, 16, 8, 0].map(s => Math.floor(n / 2 ** s) % 256).join('.');

const namespaceOf = i => `bench-${i % NAMESPACES}`;
const created = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');

/** One pod as `PartialObjectMetadata`: what a metadata-only list of a Deployment's pod holds. */
const podJson = i => {
  const rs = `web-${i % 1000}-5d8f9c7b6`;
  const rsUid = `00000000-0000-4000-8000-${String(i % 1000).padStart(12, '0')}`;
  const leaseId = newLeaseId();
  return JSON.stringify({
    kind: 'PartialObjectMetadata',
    apiVersion: 'meta.k8s.io/v1',
    metadata: {
      name: `${rs}-${i.toString(36).padStart(5, '0')}`,
      generateName: `${rs}-`,
      namespace: namespaceOf(i),
      uid: randomUUID(),
      resourceVersion: String(1000 + i),
      creationTimestamp: created,
      labels: { app: `web-${i % 1000}`, 'pod-template-hash': '5d8f9c7b6' },
      annotations: {
        'podlease.io/cidr': cidr,
        'podlease.io/gateway': gateway,
        'podlease.io/ip': ipOf(baseInt + 2 + i),
        'podlease.io/lease': `${pool}/${leaseId}`,
      },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: rs,
          uid: rsUid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
      managedFields: [
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          apiVersion: 'v1',
          time: created,
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': {
              'f:generateName': {},
              'f:labels': { '.': {}, 'f:app': {}, 'f:pod-template-hash': {} },
              'f:ownerReferences': { '.': {}, [`k:{"uid":"${rsUid}"}`]: {} },
            },
            'f:spec': {
              'f:containers': {
                'k:{"name":"app"}': {
                  '.': {},
                  'f:image': {},
                  'f:imagePullPolicy': {},
                  'f:name': {},
                  'f:resources': {},
                  'f:terminationMessagePath': {},
                  'f:terminationMessagePolicy': {},
                },
              },
              'f:dnsPolicy': {},
              'f:enableServiceLinks': {},
              'f:restartPolicy': {},
              'f:schedulerName': {},
              'f:securityContext': {},
              'f:terminationGracePeriodSeconds': {},
            },
          },
        },
        {
          manager: 'kubelet',
          operation: 'Update',
          apiVersion: 'v1',
          time: created,
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:status': {
              'f:conditions': {
                'k:{"type":"Ready"}': {
                  '.': {},
                  'f:lastProbeTime': {},
                  'f:lastTransitionTime': {},
                  'f:status': {},
                  'f:type': {},
                },
              },
              'f:containerStatuses': {},
              'f:hostIP': {},
              'f:phase': {},
              'f:podIP': {},
              'f:podIPs': {
                '.': {},
                [`k:{"ip":"${ipOf(baseInt + 2 + i)}"}`]: { '.': {}, 'f:ip': {} },
              },
              'f:startTime': {},
            },
          },
          subresource: 'status',
        },
      ],
    },
  });
};

const items = Array.from({ length: PODS }, (_, i) => podJson(i));
const listJson = (kind, apiVersion, slice, next) =>
  `{"kind":"${kind}","apiVersion":"${apiVersion}","metadata":{"resourceVersion":"${LIST_RV}"` +
  `${next === undefined ? '' : `,"continue":"${next}"`}},"items":[${slice.join(',')}]}`;
const tokenOf = offset =>
  Buffer.from(JSON.stringify({ rv: LIST_RV, start: offset })).toString('base64');
const offsetOf = token => {
  try {
    return Number(JSON.parse(Buffer.from(token, 'base64').toString('utf8')).start) || 0;
  } catch {
    return -1;
  }
};
const podPage = (offset, limit) => {
  const end = Math.min(PODS, offset + limit);
  return listJson(
    'PartialObjectMetadataList',
    'meta.k8s.io/v1',
    items.slice(offset, end),
    end < PODS ? tokenOf(end) : undefined,
  );
};
/** The pages of the default size, rendered once. */
const pages = new Map();
for (let offset = 0; offset < PODS; offset += PAGE) {
  pages.set(offset, Buffer.from(podPage(offset, PAGE)));
}
const fullListBytes = [...pages.values()].reduce((n, b) => n + b.length, 0);

const namespaces = listJson(
  'NamespaceList',
  'v1',
  ['default', ...Array.from({ length: NAMESPACES }, (_, i) => `bench-${i}`)].map(name =>
    JSON.stringify({
      metadata: {
        name,
        uid: randomUUID(),
        resourceVersion: '10',
        labels: { 'kubernetes.io/metadata.name': name },
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    }),
  ),
);
const statefulSets = listJson('StatefulSetList', 'apps/v1', [], undefined);
const finished = listJson('PartialObjectMetadataList', 'meta.k8s.io/v1', [], undefined);

const leases = new Map();
let leaseRv = 500;
const stats = { requests: 0, listPages: 0, watches: 0, leases: 0, events: 0, unknown: {} };
const watches = new Set();

const send = (res, status, body) => {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
};
const notFound = (res, what) =>
  send(
    res,
    404,
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason: 'NotFound',
      code: 404,
      message: `${what} not found`,
    }),
  );

const readBody = req =>
  new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

const LEASES = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/;
const EVENTS = /^\/api\/v1\/namespaces\/[^/]+\/events$/;

const serveLease = async (req, res, ns, name) => {
  stats.leases++;
  const key = `${ns}/${name ?? ''}`;
  if (req.method === 'GET') {
    const lease = leases.get(key);
    return lease === undefined
      ? notFound(res, `lease ${key}`)
      : send(res, 200, JSON.stringify(lease));
  }
  const body = JSON.parse(await readBody(req));
  if (req.method === 'POST') {
    const k = `${ns}/${body.metadata?.name ?? ''}`;
    if (leases.has(k))
      return send(res, 409, JSON.stringify({ kind: 'Status', code: 409, reason: 'AlreadyExists' }));
    body.metadata = { ...body.metadata, namespace: ns, resourceVersion: String(++leaseRv) };
    leases.set(k, body);
    return send(res, 201, JSON.stringify(body));
  }
  if (req.method === 'PUT') {
    const old = leases.get(key);
    if (old === undefined) return notFound(res, `lease ${key}`);
    if (body.metadata?.resourceVersion !== old.metadata.resourceVersion) {
      return send(res, 409, JSON.stringify({ kind: 'Status', code: 409, reason: 'Conflict' }));
    }
    body.metadata = { ...body.metadata, resourceVersion: String(++leaseRv) };
    leases.set(key, body);
    return send(res, 200, JSON.stringify(body));
  }
  return notFound(res, `${req.method} lease`);
};

/** Answers a list this server knows; false for any other path. */
const serveList = (res, path, q) => {
  if (path === '/api/v1/pods') {
    if (q.has('fieldSelector')) {
      send(res, 200, finished);
      return true;
    }
    stats.listPages++;
    const limit = Number(q.get('limit') ?? PODS) || PODS;
    const offset = q.has('continue') ? offsetOf(q.get('continue') ?? '') : 0;
    if (offset < 0) {
      send(res, 410, JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired' }));
      return true;
    }
    const page = limit === PAGE ? pages.get(offset) : undefined;
    send(res, 200, page ?? podPage(offset, limit));
    return true;
  }
  const constant = {
    '/apis/apps/v1/statefulsets': statefulSets,
    '/api/v1/namespaces': namespaces,
  }[path];
  if (constant === undefined) return false;
  send(res, 200, constant);
  return true;
};

const WATCHED = new Set(['/api/v1/pods', '/apis/apps/v1/statefulsets', '/api/v1/namespaces']);

const server = createServer((req, res) => {
  stats.requests++;
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const path = url.pathname;
  const q = url.searchParams;
  if (path === '/stats') return send(res, 200, JSON.stringify(stats));
  const lease = LEASES.exec(path);
  if (lease !== null) {
    serveLease(req, res, lease[1], lease[2]).catch(err => send(res, 500, String(err)));
    return undefined;
  }
  if (req.method === 'POST' && EVENTS.test(path)) {
    stats.events++;
    void readBody(req).then(body => send(res, 201, body));
    return undefined;
  }
  if (
    req.method === 'GET' &&
    WATCHED.has(path) &&
    (q.get('watch') === '1' || q.get('watch') === 'true')
  ) {
    // Open, silent: the bench ends long before the controller's idle timeout (150 s).
    stats.watches++;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    watches.add(res);
    res.on('close', () => watches.delete(res));
    return undefined;
  }
  if (req.method === 'GET' && serveList(res, path, q)) return undefined;
  const what = `${req.method} ${path}`;
  stats.unknown[what] = (stats.unknown[what] ?? 0) + 1;
  return notFound(res, what);
});
server.keepAliveTimeout = 120_000;
server.listen(Number(portText), '127.0.0.1', () => {
  process.stdout.write(`ready ${fullListBytes}\n`);
});
process.on('SIGTERM', () => {
  for (const w of watches) w.destroy();
  setTimeout(() => process.exit(0), WATCH_GRACE_MS).unref();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
