// The baseline webhook of bench:webhook and bench:admission-burst: a bare express HTTPS server
// that parses the JSON body and answers an allowing AdmissionReview with the request's uid (the
// API server checks it). With "patch" it also answers a constant JSONPatch that adds five
// annotations of the size podlease writes, so the API server applies a patch of the same shape.
//   node bare-server.mjs <port> <cert> <key> [patch]
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import express from 'express';

const [port, cert, key, mode] = process.argv.slice(2);
const patch =
  mode === 'patch'
    ? Buffer.from(
        JSON.stringify([
          {
            op: 'add',
            path: '/metadata/annotations',
            value: {
              'podlease.io/ip': '10.250.0.10',
              'podlease.io/cidr': '10.250.0.0/16',
              'podlease.io/gateway': '10.250.0.1',
              'podlease.io/lease': 'a3c1f0e2-6b1d-4c55-9a4e-1f2b3c4d5e6f',
              'podlease.io/pool': 'bench',
            },
          },
        ]),
      ).toString('base64')
    : undefined;
const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.use(express.json({ limit: '8mb', type: () => true }));
app.post('/mutate', (req, res) => {
  const uid = req.body?.request?.uid ?? '705ab4f5-6393-11e8-b7cc-42010a800002';
  res.json({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response:
      patch === undefined
        ? { uid, allowed: true }
        : { uid, allowed: true, patchType: 'JSONPatch', patch },
  });
});
const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, app);
server.keepAliveTimeout = 90_000;
server.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
