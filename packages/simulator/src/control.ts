import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './http.js';
import { readBody } from './params.js';
import type { SimStore } from './state.js';
import type {
  AdminFaultSettings,
  AuthLogInput,
  ScriptedOutcome,
  SimApplicationInput,
} from './types.js';
import { parseUsers } from './users.js';

async function readJson(req: IncomingMessage): Promise<unknown> {
  const body = await readBody(req);
  return body.length === 0 ? {} : (JSON.parse(body.toString('utf8')) as unknown);
}

function asObject(value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error('body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/**
 * The JSON control API under /__sim (only this simulator serves it):
 * GET state, GET stats, POST reset, POST users, POST next-outcome, POST faults,
 * GET authlog, POST authlog, POST admin-faults, GET applications, POST applications,
 * POST public-host ({ "publicHost": "host[:port]" }).
 */
export async function handleControl(
  store: SimStore,
  req: IncomingMessage,
  res: ServerResponse,
  action: string,
): Promise<void> {
  store.counters.control++;
  const route = `${req.method ?? 'GET'} ${action}`;
  try {
    switch (route) {
      case 'GET state':
        sendJson(res, 200, store.state());
        return;
      case 'GET stats':
        sendJson(res, 200, store.stats());
        return;
      case 'POST reset':
        store.reset();
        sendJson(res, 200, { ok: true });
        return;
      case 'POST users': {
        const body = await readJson(req);
        const replace = !Array.isArray(body) && asObject(body).replace === true;
        store.setUsers(parseUsers(body), replace);
        sendJson(res, 200, { ok: true, users: store.users.list() });
        return;
      }
      case 'POST next-outcome':
        store.nextOutcome(asObject(await readJson(req)) as unknown as ScriptedOutcome);
        sendJson(res, 200, { ok: true });
        return;
      case 'POST faults':
        store.setFaults(asObject(await readJson(req)));
        sendJson(res, 200, { ok: true, faults: store.state().faults });
        return;
      case 'GET authlog':
        sendJson(res, 200, { authlogs: store.authLog() });
        return;
      case 'POST authlog': {
        const body = asObject(await readJson(req));
        const txids = store.addAuthLogEntries(body.entries as AuthLogInput[]);
        sendJson(res, 200, { ok: true, txids });
        return;
      }
      case 'GET applications':
        sendJson(res, 200, { applications: store.applications() });
        return;
      case 'POST applications': {
        // `[...]`, `{ "applications": [...] }` or one application object; no secret is echoed.
        const body = await readJson(req);
        const list = (
          Array.isArray(body) || 'applications' in asObject(body) ? body : [body]
        ) as SimApplicationInput[];
        sendJson(res, 200, { ok: true, applications: await store.addApplications(list) });
        return;
      }
      case 'POST public-host': {
        const { publicHost } = asObject(await readJson(req));
        if (typeof publicHost !== 'string') {
          throw new Error('publicHost must be a string');
        }
        sendJson(res, 200, { ok: true, publicHost: store.setPublicHost(publicHost) });
        return;
      }
      case 'POST admin-faults':
        store.setAdminFault(asObject(await readJson(req)) as unknown as AdminFaultSettings);
        sendJson(res, 200, { ok: true, adminFault: store.state().adminFault });
        return;
      default:
        sendJson(res, 404, { error: 'not_found', error_description: `no control route ${route}` });
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : 'bad request';
    sendJson(res, 400, { error: 'invalid_request', error_description: message });
  }
}
