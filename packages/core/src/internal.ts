// The library's internals, for the reference app (src/) and the audit trail only. NOT an API:
// anything here may change in any release. Users import from ./index.ts.
export {
  isValidClientId,
  isValidClientSecret,
  isValidRedirectUri,
  normalizeDuoClientOptions,
  parseApiHost,
  validateDuoClientOptions,
  type NormalizedDuoClientOptions,
} from './duo-client-options.js';
export { DUO_BOUNDS, DUO_DEFAULTS, DUO_MESSAGES } from './duo.constants.js';
export { DUO_ERROR_STATUS, duoErrorStatus } from './duo.errors.js';
export {
  normalizeDuoModuleOptions,
  type NormalizedDuoLimits,
  type NormalizedDuoModuleOptions,
} from './duo-module-options.js';
export {
  DuoFlowService,
  parseLoginParams,
  requestContext,
  type DuoCallbackOutcome,
  type DuoStartOutcome,
} from './duo-flow.service.js';
export { clientIpOf } from './duo-request-context.js';
export {
  DuoCircuitBreaker,
  type DuoCircuitBreakerOptions,
  type DuoCircuitState,
} from './duo-circuit-breaker.js';
export { DuoHealthService, type DuoHealth } from './duo-health.service.js';
export { DuoSessionService } from './duo-session.service.js';
export { DuoExceptionFilter } from './duo-exception.filter.js';
export type { DuoStrategyOutcome } from './passport-duo.strategy.js';
export {
  DUO_OPTIONS,
  DUO_PENDING_LOGIN_STORE,
  DUO_RATE_LIMIT_STORE,
  DUO_SESSION_STORE,
  DUO_STRATEGY,
  InjectDuoOptions,
} from './duo.tokens.js';
export { escapeHtml, messagePage, page, PAGE_CSP, pageCsp } from './duo-pages.js';
export {
  DUO_DEFAULT_LOCALES,
  DUO_PAGE_MESSAGES,
  duoPageMessages,
  fillTemplate,
  localizedErrorMessage,
  negotiateLocale,
  pageLanguage,
  resolveLocale,
  type DuoLocaleSettings,
  type DuoPageLanguage,
  type DuoPageMessages,
} from './duo-i18n.js';
export { EventAggregator } from './duo-event-aggregator.js';
export {
  describeStrictFailure,
  parseStrictForm,
  parseStrictParams,
  parseStrictQuery,
  readStrictCookie,
  type StrictInputFailure,
} from './duo-strict-input.js';
export { CSRF_FIELD, CSRF_HEADER, DuoCsrfService, type CsrfFailure } from './duo-csrf.service.js';
export { DuoSignOnProtection } from './duo-sign-on-protection.service.js';
export {
  DEFAULT_IPV6_SUBNET,
  ipRateLimitSubject,
  normalizeUsernameForLimit,
  RateLimiter,
  type RateLimitDecision,
  type RateLimitRule,
} from './duo-rate-limiter.js';
export { MEMORY_RATE_LIMIT_MAX_KEYS } from './stores/memory-rate-limit.store.js';
export { DuoFormFieldsPipe } from './duo-form-fields.decorator.js';
export { checkUsername, showUnsafe } from './duo-text-policy.js';
export { parseProxyUrl, readCaFile } from './duo-transport.js';
export { readBodyCapped } from './duo-http-call.js';
