/**
 * The express apps: HTTPS `/mutate` and `/validate` (the AdmissionReview handlers behind a JSON
 * body limit), and the plain-HTTP `/metrics`, `/healthz`, `/readyz`.
 */
import express, {
  type ErrorRequestHandler,
  type Express,
  type Request,
  type Response,
} from 'express';
import type { LeaseStore } from '../pool/store.js';
import type { Logger } from '../log/logger.js';
import { parseApiTimeout, within } from './deadline.js';
import { isWebhookError } from './errors.js';
import {
  handleMutate,
  handleValidate,
  type HandleOptions,
  type Handled,
  type WebhookDeps,
} from './handlers.js';
import type { WebhookMetrics } from './metrics.js';

type Handler = (body: unknown, options: HandleOptions, deps: WebhookDeps) => Promise<Handled>;

interface BodyParserError {
  readonly type?: string;
  readonly status?: number;
  readonly message?: string;
}

const sendError = (res: Response, status: number, error: string, message: string): void => {
  res.status(status).json({ error, message: `podlease: ${message}` });
};

const route =
  (handler: Handler, deps: WebhookDeps) =>
  async (req: Request, res: Response): Promise<void> => {
    const receivedAt = Date.now();
    try {
      const handled = await handler(
        req.body,
        { apiTimeoutMs: parseApiTimeout(req.query.timeout), receivedAt },
        deps,
      );
      res.json(handled.review);
    } catch (err) {
      if (isWebhookError(err) && err.code === 'BAD_REVIEW') {
        sendError(res, 400, 'BadRequest', err.message);
        return;
      }
      deps.log.error({ err }, 'admission handler failed');
      sendError(res, 500, 'InternalError', err instanceof Error ? err.message : String(err));
    }
  };

/** Body-parser failures: 413 over the limit, 400 for JSON that does not parse. */
const bodyErrors =
  (log: Logger): ErrorRequestHandler =>
  (err: BodyParserError, _req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    if (err.type === 'entity.too.large') {
      sendError(
        res,
        413,
        'RequestEntityTooLarge',
        `the body is larger than the limit (${err.message ?? ''})`,
      );
    } else if (err.type === 'entity.parse.failed' || err.status === 400) {
      sendError(
        res,
        400,
        'BadRequest',
        `the body is not JSON (expected an AdmissionReview): ${err.message ?? ''}`,
      );
    } else {
      log.error({ err }, 'request failed');
      sendError(res, err.status ?? 500, 'Error', err.message ?? 'request failed');
    }
  };

/** The HTTPS admission app. */
export const createWebhookApp = (deps: WebhookDeps): Express => {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(express.json({ limit: deps.config.bodyLimitBytes, type: () => true, strict: false }));
  app.post('/mutate', route(handleMutate, deps));
  app.post('/validate', route(handleValidate, deps));
  app.use((_req, res) => {
    sendError(res, 404, 'NotFound', 'the webhook serves POST /mutate and POST /validate');
  });
  app.use(bodyErrors(deps.log));
  return app;
};

export interface OpsAppOptions {
  readonly store: LeaseStore;
  readonly metrics: WebhookMetrics;
  readonly pingTimeoutMs: number;
  /** False while starting or shutting down. */
  readonly accepting: () => boolean;
  /**
   * False until the namespace cache has synced: before, a pod of a namespace with a
   * `podlease.io/pool` annotation would have to wait on a live lookup of its namespace.
   */
  readonly namespacesReady: () => boolean;
  readonly log: Logger;
}

/**
 * Plain HTTP: `/metrics`, `/healthz` (the process answers), `/readyz` (accepting, the namespace
 * cache synced, and the store answers).
 */
export const createOpsApp = (options: OpsAppOptions): Express => {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', async (_req, res) => {
    if (!options.accepting()) {
      res.status(503).type('text/plain').send('not ready: starting or shutting down\n');
      return;
    }
    if (!options.namespacesReady()) {
      res
        .status(503)
        .type('text/plain')
        .send('not ready: the namespace cache has not synced yet\n');
      return;
    }
    try {
      await within(options.store.ping(), options.pingTimeoutMs, 'ping');
      res.type('text/plain').send('ok\n');
    } catch (err) {
      options.metrics.storeError('ping', err instanceof Error ? err.name : 'unknown');
      res
        .status(503)
        .type('text/plain')
        .send(`not ready: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  });
  app.get('/metrics', async (_req, res) => {
    try {
      const text = await options.metrics.registry.metrics();
      res.type(options.metrics.registry.contentType).send(text);
    } catch (err) {
      options.log.error({ err }, 'metrics collection failed');
      res.status(500).type('text/plain').send('metrics collection failed\n');
    }
  });
  return app;
};
