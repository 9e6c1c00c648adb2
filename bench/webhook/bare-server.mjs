// The baseline of bench:webhook: a bare express HTTPS server that parses the JSON body and
// answers a constant allowing AdmissionReview. Same TLS, same express, no podlease.
//   node bare-server.mjs <port> <cert> <key>
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import express from 'express';

const [port, cert, key] = process.argv.slice(2);
const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.use(express.json({ limit: '8mb', type: () => true }));
const answer = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true },
};
app.post('/mutate', (_req, res) => {
  res.json(answer);
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
