import { Injectable } from '@nestjs/common';
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type CounterConfiguration,
} from 'prom-client';
import {
  DUO_AUTH_EVENT_TYPES,
  DUO_FACTORS,
  duoFactorName,
  type DuoAuthEvent,
  type DuoCallEndpoint,
  type DuoCallObserver,
  type DuoErrorCode,
} from '@duo-nest/core';

/** Where the gauges read their values at scrape time (bound by the app once the stores exist). */
export interface MetricsSources {
  pendingLogins?: () => Promise<number>;
  sessions?: () => Promise<number>;
  /** Cumulative counters of the audit service (AuditService.metrics). */
  audit?: () => Readonly<Record<string, number>>;
  /** Events waiting in this instance's audit spool. */
  auditSpoolDepth?: () => Promise<number>;
  /** The Duo circuit breaker's state. */
  circuitState?: () => 'closed' | 'open' | 'half_open';
}

const EVENT_TYPE_SET: ReadonlySet<string> = new Set(DUO_AUTH_EVENT_TYPES);
const OUTCOMES: ReadonlySet<string> = new Set(['success', 'failure', 'info']);
const DUO_ENDPOINTS: ReadonlySet<DuoCallEndpoint> = new Set(['health_check', 'token']);

/** The sign-on's end, by the event that closes it. */
const FINISHING: Readonly<Record<string, string>> = {
  mfa_succeeded: 'succeeded',
  mfa_failed: 'failed',
  mfa_denied: 'denied',
  mfa_unavailable: 'unavailable',
  mfa_failopen: 'failopen',
  mfa_abandoned: 'abandoned',
  mfa_expired: 'expired',
};

/** Every DuoErrorCode (compile-checked), plus the app's session reasons: the bounded reason label. */
const ERROR_CODES = [
  'config',
  'invalid_argument',
  'unavailable',
  'untrusted_certificate',
  'rate_limited',
  'invalid_client',
  'invalid_grant',
  'duo_rejected',
  'health_response',
  'token_response',
  'id_token_malformed',
  'id_token_alg',
  'id_token_signature',
  'id_token_iss',
  'id_token_aud',
  'id_token_expired',
  'id_token_iat',
  'id_token_nbf',
  'id_token_claims',
  'id_token_nonce',
  'id_token_username',
  'id_token_auth_result',
  'invalid_request',
  'state_unknown',
  'state_expired',
  'binding_mismatch',
  'callback_error',
  'audit_unavailable',
  'busy',
  'mfa_required',
  'session_expired',
  'mfa_stale',
  'mfa_not_performed',
  'forbidden',
  'csrf_failed',
] as const satisfies readonly DuoErrorCode[];
/**
 * Every other reason an event may carry (grep `reason:` in src/duo and src/security), so none is
 * counted as `other`.
 */
const EVENT_REASONS = [
  // session ends
  'idle',
  'absolute',
  'logout',
  'circuit_open',
  // store_record_invalid: a record that failed its MAC or its shape check
  'session_mac',
  'pending_login_mac',
  'session_shape',
  'pending_login_shape',
  // session_invalid: the session cookie
  'cookie_forged',
  'cookie_malformed',
  'cookie_duplicate',
  // access_denied: the factor and bypass policy (mfa_policy)
  'bypass_not_allowed',
  'factor_not_allowed',
  'factor_unknown',
  // input_validation_failed: the sign-on start's parameters and the stores' refusals
  'invalid_username',
  'store_validation',
  'offsite_return_to',
  // input_validation_failed: the CSRF check (the library's at the start, the app's elsewhere)
  'csrf_no_cookie',
  'csrf_no_token',
  'csrf_bad_token',
  'csrf_cross_origin',
  // input_validation_failed: the strict decoder and the body parsers, before any route
  'malformed_escape',
  'invalid_utf8',
  'invalid_char',
  'duplicate_key',
  'empty_key',
  'too_many_params',
  'invalid_cookie',
  'unsupported_charset',
  'body_too_large',
  'body_unsupported',
  'body_malformed',
  'body_unreadable',
  'method_not_allowed',
  // rate_limited: the sign-on caps
  'login_ip',
  'login_user',
  'callback_ip',
] as const;
const REASONS: ReadonlySet<string> = new Set<string>([...ERROR_CODES, ...EVENT_REASONS]);

/**
 * Duo's factor names (auth_context.factor, through duoFactorName: every WebAuthn spelling is
 * `webauthn`); anything else is 'other'. One list: the library's DUO_FACTORS.
 */
const FACTORS: ReadonlySet<string> = new Set<string>(DUO_FACTORS);

const AUDIT_RESULTS = [
  'recorded',
  'spooled',
  'replayed',
  'databaseFailures',
  'denied',
  'spoolFailures',
] as const;

/** A label value from a closed set: anything outside it is 'other', so cardinality stays bounded. */
export function boundedLabel(value: unknown, allowed: ReadonlySet<string>, none = 'none'): string {
  if (value === undefined || value === null || value === '') {
    return none;
  }
  return typeof value === 'string' && allowed.has(value) ? value : 'other';
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * The app's Prometheus metrics, on a registry of its own (several apps may share a process in
 * tests). Labels carry only bounded values (event type, outcome, reason, factor, endpoint, result):
 * never a username, state, IP or token.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private sources: MetricsSources = {};

  private readonly started: Counter;
  private readonly finished: Counter;
  private readonly events: Counter;
  private readonly duoCalls: Histogram;
  private readonly rateLimited: Counter;

  /** Reports Duo calls to the latency histogram (DuoModule's `onDuoCall`). */
  readonly duoCallObserver: DuoCallObserver = (endpoint, result, durationMs) => {
    this.duoCalls.observe(
      {
        endpoint: boundedLabel(endpoint, DUO_ENDPOINTS, 'other'),
        result: result === 'success' ? 'success' : boundedLabel(result, REASONS, 'other'),
      },
      durationMs / 1000,
    );
  };

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const counter = (config: CounterConfiguration<string>) =>
      new Counter({ ...config, registers: [this.registry] });
    this.started = counter({
      name: 'duo_nest_signons_started_total',
      help: 'Sign-ons sent to Duo (mfa_started).',
    });
    this.finished = counter({
      name: 'duo_nest_signons_finished_total',
      help: 'Sign-ons that ended, by outcome, reason (a DuoErrorCode) and Duo factor.',
      labelNames: ['outcome', 'reason', 'factor'],
    });
    this.events = counter({
      name: 'duo_nest_auth_events_total',
      help: 'Every auth event reported by the Duo library, by type, outcome and reason.',
      labelNames: ['type', 'outcome', 'reason'],
    });
    this.duoCalls = new Histogram({
      name: 'duo_nest_duo_call_duration_seconds',
      help: 'HTTP round trip of calls to Duo, by endpoint and result (success or DuoErrorCode).',
      labelNames: ['endpoint', 'result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });

    const gauge = (name: string, help: string, read: () => Promise<number | undefined>) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        async collect() {
          const value = await read().catch(() => undefined);
          if (value !== undefined) {
            this.set(value);
          }
        },
      });
    gauge('duo_nest_pending_logins', 'Sign-ons waiting for Duo to send the browser back.', () =>
      this.read(this.sources.pendingLogins),
    );
    gauge('duo_nest_sessions', 'Live MFA sessions in the session store.', () =>
      this.read(this.sources.sessions),
    );
    gauge('duo_nest_audit_spool_depth', "Audit events waiting in this instance's spool.", () =>
      this.read(this.sources.auditSpoolDepth),
    );

    const sources = () => this.sources;
    new Gauge({
      name: 'duo_nest_audit_events',
      help: 'Audit service counters since start: recorded, spooled, replayed, database_failures, denied, spool_failures.',
      labelNames: ['result'],
      registers: [this.registry],
      collect() {
        const audit = sources().audit?.();
        for (const key of AUDIT_RESULTS) {
          if (audit && typeof audit[key] === 'number') {
            this.set({ result: snake(key) }, audit[key]);
          }
        }
      },
    });
    new Gauge({
      name: 'duo_nest_duo_circuit_state',
      help: 'Duo circuit breaker: 1 for the current state (closed, open, half_open).',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const read = sources().circuitState;
        if (read) {
          const now = read();
          for (const state of ['closed', 'open', 'half_open']) {
            this.set({ state }, state === now ? 1 : 0);
          }
        }
      },
    });
    this.rateLimited = counter({
      name: 'duo_nest_rate_limited_total',
      help: 'Requests refused with 429 by the rate limiter, by route (login, callback, other).',
      labelNames: ['route'],
    });
  }

  /** Binds the gauges to the stores and services (replaces earlier bindings of the same names). */
  bindSources(sources: MetricsSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** Counts one auth event (called for every event DuoModule reports). */
  recordEvent(event: Pick<DuoAuthEvent, 'type' | 'outcome' | 'reason' | 'result'>): void {
    const type = boundedLabel(event.type, EVENT_TYPE_SET, 'other');
    const reason = boundedLabel(event.reason, REASONS);
    this.events.inc({
      type,
      outcome: boundedLabel(event.outcome, OUTCOMES, 'other'),
      reason,
    });
    if (type === 'mfa_started') {
      this.started.inc();
    }
    const finished = FINISHING[type];
    if (finished) {
      this.finished.inc({
        outcome: finished,
        reason,
        factor: boundedLabel(
          duoFactorName(event.result?.tokens?.auth_context?.factor) ??
            event.result?.tokens?.auth_context?.factor,
          FACTORS,
        ),
      });
    }
  }

  /**
   * Wraps a DuoModule `onEvent` sink so every event is also counted. The event is counted before
   * the sink runs: it happened even when the sink (the audit trail) refuses it.
   */
  countingSink(
    sink: (event: DuoAuthEvent) => Promise<void> | void,
  ): (event: DuoAuthEvent) => Promise<void> {
    return async (event) => {
      this.recordEvent(event);
      await sink(event);
    };
  }

  /**
   * Counts the app's 429 answers (the rate limiter is their only source) by route; `callbackPath`
   * is DuoModule's callback route.
   */
  countResponse(path: string, status: number, callbackPath: string): void {
    if (status === 429) {
      const route = path === '/login' ? 'login' : path === callbackPath ? 'callback' : 'other';
      this.rateLimited.inc({ route });
    }
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private async read(source: (() => Promise<number>) | undefined): Promise<number | undefined> {
    return source ? source() : undefined;
  }
}
