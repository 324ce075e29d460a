/**
 * OpenAPI 3.1 description of the audit routes, written by hand (served at GET /audit/openapi.json).
 * A test checks that every audit route in Nest's router appears here: keep it in step with
 * audit.controller.ts and audit-page.controller.ts.
 */
import { AUDIT_EVENT_TYPES, AUDIT_OUTCOMES } from './audit-events.js';
import { AUDIT_BOUNDS } from './audit-record.js';
import { AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX } from './audit.repository.js';

const nullableString = { type: ['string', 'null'] };

const query = (name: string, description: string, schema: Record<string, unknown>) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});

const TIME_SCHEMA = {
  type: 'string',
  description: 'ISO 8601: a date (UTC midnight) or a date-time with Z or an offset',
  examples: ['2026-01-31', '2026-01-31T12:00:00Z', '2026-01-31T13:00:00+01:00'],
};

const FILTER_PARAMETERS = [
  query('username', 'Exact username', { type: 'string', maxLength: AUDIT_BOUNDS.username }),
  query('type', 'Event type', { type: 'string', enum: [...AUDIT_EVENT_TYPES] }),
  query('outcome', 'Outcome', { type: 'string', enum: [...AUDIT_OUTCOMES] }),
  query('factor', "Duo factor (auth_context.factor), e.g. 'Duo Push'", {
    type: 'string',
    maxLength: AUDIT_BOUNDS.factor,
  }),
  query('reason', 'Reason code, e.g. state_unknown', {
    type: 'string',
    maxLength: AUDIT_BOUNDS.reason,
  }),
  query('txid', "Duo's transaction id", { type: 'string', maxLength: AUDIT_BOUNDS.txid }),
  query('ip', "Client ip or Duo's access device ip", {
    type: 'string',
    maxLength: AUDIT_BOUNDS.ip,
  }),
  query('from', 'Earliest occurred_at, inclusive', TIME_SCHEMA),
  query('to', 'Latest occurred_at, exclusive (must be after from)', TIME_SCHEMA),
];

const ID_PARAMETER = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Event id',
  schema: { type: 'string', format: 'uuid' },
};

const USERNAME_PARAMETER = {
  name: 'username',
  in: 'path',
  required: true,
  description: 'The user (the name Duo was asked about)',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};

const HANDLE_PARAMETER = {
  name: 'handle',
  in: 'path',
  required: true,
  description: 'A session handle from the listing (a hash of the session id, never the id)',
  schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
};

const COUNT_SCHEMA = { type: 'object', properties: { revoked: { type: 'integer' } } };

const json = (schema: Record<string, unknown>) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const html = { 'text/html': { schema: { type: 'string' } } };

const ERRORS = {
  '400': {
    description:
      'A parameter is unknown, repeated, empty or malformed (JSON; the message names it)',
    content: json(ref('Error')),
  },
  '401': {
    description: 'No completed Duo MFA session (JSON; browsers are sent to the sign-on page)',
    content: json(ref('Error')),
  },
  '403': {
    description: 'Not an audit admin (JSON or HTML); an access_denied event is recorded',
    content: json(ref('Error')),
  },
};

export const AUDIT_OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'duo-nest audit trail',
    version: '1.0.0',
    description:
      'Read access to the MFA audit trail. Every route needs a session with a completed Duo MFA ' +
      '(cookie) and an audit admin: the username in AUDIT_ADMIN_USERS or a Duo group in ' +
      'AUDIT_ADMIN_GROUPS.',
  },
  security: [{ duoSession: [] }],
  paths: {
    '/audit/events': {
      get: {
        operationId: 'listAuditEvents',
        summary: 'Events, newest first, keyset-paginated',
        parameters: [
          ...FILTER_PARAMETERS,
          query('cursor', 'nextCursor of the previous page', { type: 'string', maxLength: 200 }),
          query(
            'limit',
            `Page size; default ${AUDIT_PAGE_DEFAULT}, larger values are capped at ${AUDIT_PAGE_MAX}`,
            { type: 'integer', minimum: 1, default: AUDIT_PAGE_DEFAULT },
          ),
        ],
        responses: {
          '200': {
            description: 'One page',
            content: json({
              type: 'object',
              required: ['items', 'nextCursor', 'limit'],
              properties: {
                items: { type: 'array', items: ref('AuditEvent') },
                nextCursor: { ...nullableString, description: 'null on the last page' },
                limit: { type: 'integer' },
              },
            }),
          },
          ...ERRORS,
        },
      },
    },
    '/audit/events/{id}': {
      get: {
        operationId: 'getAuditEvent',
        summary: 'One event',
        parameters: [ID_PARAMETER],
        responses: {
          '200': { description: 'The event', content: json(ref('AuditEvent')) },
          ...ERRORS,
          '404': { description: 'No event has this id', content: json(ref('Error')) },
        },
      },
    },
    '/audit/export': {
      get: {
        operationId: 'exportAuditEvents',
        summary: 'Every matching event, newest first, streamed as a download',
        parameters: [
          ...FILTER_PARAMETERS,
          query('format', 'ndjson (default) or csv', {
            type: 'string',
            enum: ['ndjson', 'csv'],
            default: 'ndjson',
          }),
        ],
        responses: {
          '200': {
            description:
              'NDJSON: one AuditEvent per line. CSV: RFC 4180 with a header row; JSON columns ' +
              "as JSON text; cells starting with = + - @ are prefixed with ' (formula guard).",
            headers: {
              'Content-Disposition': {
                schema: { type: 'string' },
                description: 'attachment; filename="audit-events-<UTC stamp>.<format>"',
              },
            },
            content: {
              'application/x-ndjson': { schema: { type: 'string' } },
              'text/csv': { schema: { type: 'string' } },
            },
          },
          ...ERRORS,
        },
      },
    },
    '/audit/stats': {
      get: {
        operationId: 'auditStats',
        summary: 'Counts by outcome and factor per hour or day (UTC)',
        parameters: [
          ...FILTER_PARAMETERS,
          query('bucket', 'hour or day (default)', {
            type: 'string',
            enum: ['hour', 'day'],
            default: 'day',
          }),
        ],
        responses: {
          '200': {
            description: 'Buckets in time order; total is the sum of their totals',
            content: json({
              type: 'object',
              required: ['bucket', 'total', 'buckets'],
              properties: {
                bucket: { type: 'string', enum: ['hour', 'day'] },
                total: { type: 'integer' },
                buckets: { type: 'array', items: ref('StatsBucket') },
              },
            }),
          },
          ...ERRORS,
        },
      },
    },
    '/audit/openapi.json': {
      get: {
        operationId: 'auditOpenApi',
        summary: 'This document',
        responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } },
      },
    },
    '/audit': {
      get: {
        operationId: 'auditPage',
        summary: 'The audit page for people: filters, table with paging, outcome chart',
        parameters: [
          ...FILTER_PARAMETERS,
          query('cursor', 'Page cursor (from the "Older events" link)', { type: 'string' }),
          query('limit', 'Rows per page', { type: 'integer', minimum: 1 }),
          query('bucket', 'Chart bucket: hour or day (default)', {
            type: 'string',
            enum: ['hour', 'day'],
          }),
        ],
        responses: {
          '200': { description: 'HTML page', content: html },
          '400': { description: 'The page with the parameter problem shown', content: html },
          '403': ERRORS['403'],
        },
      },
    },
    '/audit/view/{id}': {
      get: {
        operationId: 'auditEventPage',
        summary: "One event's fields and its auth_context, for people",
        parameters: [ID_PARAMETER],
        responses: {
          '200': { description: 'HTML page', content: html },
          '400': { description: 'Not a UUID', content: html },
          '403': ERRORS['403'],
          '404': { description: 'No event has this id', content: html },
        },
      },
    },
    '/audit/users/{username}/sessions': {
      get: {
        operationId: 'auditUserSessions',
        summary:
          "A user's live sessions: created, last seen, IP, factor, application, and an opaque handle (never the session id)",
        parameters: [USERNAME_PARAMETER],
        responses: {
          '200': {
            description: 'The sessions',
            content: json({
              type: 'object',
              properties: {
                username: { type: 'string' },
                sessions: { type: 'array', items: { type: 'object' } },
              },
            }),
          },
          ...ERRORS,
        },
      },
    },
    '/audit/users/{username}/sessions/{handle}/revoke': {
      post: {
        operationId: 'auditRevokeSession',
        summary: 'Ends one session of the user (audited as session_revoked); needs the CSRF token',
        parameters: [USERNAME_PARAMETER, HANDLE_PARAMETER],
        responses: {
          '200': { description: 'Revoked', content: json(COUNT_SCHEMA) },
          '303': { description: 'A form post: back to the sessions page' },
          ...ERRORS,
          '404': {
            description: 'The user has no live session with this handle',
            content: json(ref('Error')),
          },
        },
      },
    },
    '/audit/users/{username}/sessions/revoke-all': {
      post: {
        operationId: 'auditRevokeAllSessions',
        summary: 'Ends every session of the user on every instance; needs the CSRF token',
        parameters: [USERNAME_PARAMETER],
        responses: {
          '200': { description: 'How many were revoked', content: json(COUNT_SCHEMA) },
          '303': { description: 'A form post: back to the sessions page' },
          ...ERRORS,
        },
      },
    },
    '/audit/users/{username}/compromised': {
      post: {
        operationId: 'auditMarkCompromised',
        summary:
          'Marks the user compromised: every session ends on every instance (audited as user_marked_compromised); needs the CSRF token',
        parameters: [USERNAME_PARAMETER],
        responses: {
          '200': {
            description: 'Marked, and how many sessions were revoked',
            content: json({
              type: 'object',
              properties: { compromised: { const: true }, revoked: { type: 'integer' } },
            }),
          },
          '303': { description: 'A form post: back to the sessions page' },
          ...ERRORS,
        },
      },
    },
    '/audit/sessions': {
      get: {
        operationId: 'auditSessionsPage',
        summary: "The page of a user's live sessions, with revoke and compromised buttons",
        parameters: [
          query('username', 'The user whose sessions to show', { type: 'string' }),
          query('done', 'The notice after an action', { type: 'string' }),
        ],
        responses: {
          '200': { description: 'HTML page', content: html },
          '400': { description: 'The page with the parameter problem shown', content: html },
          '403': ERRORS['403'],
        },
      },
    },
  },
  components: {
    securitySchemes: {
      duoSession: {
        type: 'apiKey',
        in: 'cookie',
        name: '__Host-duo_session',
        description:
          'The signed session cookie set after a completed Duo sign-on (duo_session over plain http)',
      },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['statusCode', 'error', 'message'],
        properties: {
          statusCode: { type: 'integer' },
          error: { type: 'string', examples: ['invalid_request', 'forbidden', 'not_found'] },
          message: { type: 'string' },
        },
      },
      AuditEvent: {
        type: 'object',
        properties: {
          id: { type: 'string', format: 'uuid' },
          seq: { type: 'integer', description: 'Position in the HMAC chain' },
          occurredAt: { type: 'string', format: 'date-time' },
          type: { type: 'string', enum: [...AUDIT_EVENT_TYPES] },
          outcome: { type: 'string', enum: [...AUDIT_OUTCOMES] },
          username: nullableString,
          reason: nullableString,
          txid: nullableString,
          factor: nullableString,
          duoResult: nullableString,
          duoReason: nullableString,
          duoStatus: nullableString,
          authDeviceIp: nullableString,
          authDeviceName: nullableString,
          authDeviceLocation: nullableString,
          accessDeviceIp: nullableString,
          accessDeviceLocation: nullableString,
          application: nullableString,
          groups: { type: ['array', 'null'], items: { type: 'string' } },
          clientIp: nullableString,
          userAgent: nullableString,
          correlationId: nullableString,
          instanceId: nullableString,
          authContext: {
            type: ['object', 'null'],
            description: "Duo's auth_context (allow-listed)",
          },
          detail: { type: ['object', 'null'] },
          prevHash: { type: 'string' },
          hash: { type: 'string' },
        },
      },
      StatsBucket: {
        type: 'object',
        required: ['bucket', 'total', 'byOutcome', 'byFactor'],
        properties: {
          bucket: { type: 'string', format: 'date-time', description: 'Start of the bucket (UTC)' },
          total: { type: 'integer' },
          byOutcome: { type: 'object', additionalProperties: { type: 'integer' } },
          byFactor: {
            type: 'object',
            additionalProperties: { type: 'integer' },
            description: 'Key none counts events without a factor',
          },
        },
      },
    },
  },
} as const;
