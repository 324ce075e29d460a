import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

/** A safe incoming X-Request-Id is kept; anything else is replaced by a fresh UUID. */
export const REQUEST_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

export interface RequestScope {
  /** The correlation id: logged on every line of the request and stored in its audit events. */
  id: string;
}

/** The current request's scope, for log lines written deep inside services. */
export const requestScope = new AsyncLocalStorage<RequestScope>();

/**
 * Gives every request a correlation id (`req.id`, echoed in the `X-Request-Id` response header,
 * passed to auth events) and runs the rest of the request inside its async scope.
 */
export function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && REQUEST_ID_RE.test(incoming) ? incoming : randomUUID();
  (req as Request & { id: string }).id = id;
  res.setHeader('X-Request-Id', id);
  requestScope.run({ id }, next);
}

/** The correlation id of a request that went through requestIdMiddleware. */
export function requestIdOf(req: Request): string | undefined {
  const id = (req as Request & { id?: unknown }).id;
  return typeof id === 'string' ? id : undefined;
}
