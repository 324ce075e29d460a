import type { IncomingMessage, ServerResponse } from 'node:http';
import { handleAuthLog } from './admin-api.js';
import { handleAuthorize, handlePrompt } from './authorize.js';
import { PATHS, publicUrl, type SimContext } from './context.js';
import { handleControl } from './control.js';
import { REASON_HEADER, sendJson, sendText } from './http.js';
import { BodyTooLargeError, readParams } from './params.js';
import { checkClientAssertion, handleToken } from './token.js';

function failEnvelope(detail = 'The provided client_assertion was invalid.') {
  return {
    stat: 'FAIL',
    code: 40002,
    timestamp: Math.floor(Date.now() / 1000),
    message: 'invalid_client',
    message_detail: detail,
  };
}

async function handleHealth(ctx: SimContext, req: IncomingMessage, res: ServerResponse, url: URL) {
  ctx.store.counters.health_check++;
  switch (ctx.store.takeHealthFault()) {
    case 'down':
      sendText(res, 503, 'Service Unavailable');
      return;
    case '500':
      sendText(res, 500, 'Internal Server Error');
      return;
    case 'reset':
      req.socket.destroy();
      return;
    case 'timeout':
      return; // never answer; close() drops the connection
    case 'fail_envelope':
      sendJson(res, 200, failEnvelope());
      return;
    case '429':
      sendJson(
        res,
        429,
        {
          stat: 'FAIL',
          code: 42901,
          message: 'Too Many Requests',
          message_detail: 'Rate limit exceeded',
        },
        { 'Retry-After': '1' },
      );
      return;
    case '400':
      sendJson(res, 400, {
        stat: 'FAIL',
        code: 40003,
        timestamp: Math.floor(Date.now() / 1000),
        message: 'invalid_request',
        message_detail: 'The request is malformed.',
      });
      return;
    case '403':
      sendText(res, 403, 'Forbidden');
      return;
    case '404':
      sendText(res, 404, 'Not Found');
      return;
    case null:
      break;
  }
  const params = await readParams(req, url);
  const assertion = params.get('client_assertion');
  const app = ctx.store.app(params.get('client_id'));
  // Checked against that application's secret, and the aud against the public host only.
  const why = !app
    ? 'client_id missing or unknown'
    : await checkClientAssertion(ctx, app, assertion, publicUrl(ctx, PATHS.health));
  if (why) {
    sendJson(res, 400, failEnvelope(), { [REASON_HEADER]: why });
    return;
  }
  sendJson(res, 200, { stat: 'OK', response: { timestamp: Math.floor(Date.now() / 1000) } });
}

function methodNotAllowed(res: ServerResponse, allowed: string): void {
  sendJson(
    res,
    405,
    { error: 'invalid_request', error_description: 'Method not allowed' },
    { Allow: allowed },
  );
}

async function route(ctx: SimContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://simulator.invalid');
  const method = req.method ?? 'GET';
  switch (url.pathname) {
    case PATHS.health:
      return method === 'POST' ? handleHealth(ctx, req, res, url) : methodNotAllowed(res, 'POST');
    case PATHS.authorize:
      return method === 'GET' ? handleAuthorize(ctx, req, res, url) : methodNotAllowed(res, 'GET');
    case PATHS.token:
      return method === 'POST'
        ? handleToken(ctx, req, res, await readParams(req, url))
        : methodNotAllowed(res, 'POST');
    case PATHS.adminAuthLog:
      return method === 'GET'
        ? handleAuthLog(ctx, ctx.admin, req, res, req.url ?? '')
        : methodNotAllowed(res, 'GET');
    case PATHS.prompt:
      return method === 'POST' ? handlePrompt(ctx, req, res, url) : methodNotAllowed(res, 'POST');
    default:
      if (url.pathname.startsWith(PATHS.control)) {
        return handleControl(ctx.store, req, res, url.pathname.slice(PATHS.control.length));
      }
      sendText(res, 404, 'Not Found');
  }
}

/** The request listener of one simulator. */
export function createListener(ctx: SimContext) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    route(ctx, req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof BodyTooLargeError) {
        sendJson(res, 413, {
          error: 'invalid_request',
          error_description: 'Request body too large',
        });
        return;
      }
      sendText(res, 500, 'Internal Server Error');
    });
  };
}
