// The public face of the Duo library: the app, the audit trail and users import only from here.
export { DuoClient } from './duo.client.js';
export {
  isValidClientId,
  isValidClientSecret,
  isValidRedirectUri,
  normalizeDuoClientOptions,
  parseApiHost,
  validateDuoClientOptions,
  type DuoCallEndpoint,
  type DuoCallObserver,
  type DuoClientOptions,
  type NormalizedDuoClientOptions,
} from './duo-client-options.js';
export { DUO_BOUNDS, DUO_DEFAULTS, DUO_MESSAGES } from './duo.constants.js';
export {
  DUO_ERROR_STATUS,
  DuoConfigError,
  DuoError,
  type DuoConfigIssue,
  type DuoErrorCode,
} from './duo.errors.js';
export type * from './duo.types.js';
export { DuoModule } from './duo.module.js';
export { DUO_ASYNC_OPTIONS_TYPE, DUO_OPTIONS_TYPE } from './duo.module-definition.js';
export type { DuoModuleOptions } from './duo-module-options.interface.js';
export {
  normalizeDuoModuleOptions,
  sanitizeReturnTo,
  type NormalizedDuoModuleOptions,
} from './duo-module-options.js';
export { DuoAuthGuard } from './duo-auth.guard.js';
export { MfaGuard, type MfaDenial } from './mfa.guard.js';
export { DuoRequestAnswered, DuoStartGuard } from './duo-start.guard.js';
export { DuoSignOn } from './duo-sign-on.service.js';
export { DuoHttpException, type DuoHttpExceptionBody } from './duo-http.exception.js';
export type { DuoModuleExtras } from './duo.module-definition.js';
export {
  AllowFailOpen,
  CurrentMfa,
  Public,
  DUO_SKIP_MFA,
  SkipMfa,
  RequireDuoGroups,
  RequireMfa,
  type RequireMfaOptions,
} from './duo.decorators.js';
export {
  DuoFlowService,
  parseLoginParams,
  requestContext,
  type DuoCallbackOutcome,
  type DuoStartOutcome,
} from './duo-flow.service.js';
export {
  DuoCircuitBreaker,
  type DuoCircuitBreakerOptions,
  type DuoCircuitState,
} from './duo-circuit-breaker.js';
export { DuoHealthService, type DuoHealth } from './duo-health.service.js';
export { DuoSessionService } from './duo-session.service.js';
export { DuoExceptionFilter } from './duo-exception.filter.js';
export type { DuoStrategyOutcome } from './passport-duo.strategy.js';
export { DUO_AUTH_EVENT_TYPES, type DuoAuthEvent, type DuoAuthEventType } from './duo-events.js';
export {
  DUO_OPTIONS,
  DUO_PENDING_LOGIN_STORE,
  DUO_SESSION_STORE,
  DUO_STRATEGY,
  InjectDuoOptions,
} from './duo.tokens.js';
export { escapeHtml, messagePage, page, PAGE_CSP, pageCsp } from './duo-pages.js';
export {
  MemoryPendingLoginStore,
  RedisPendingLoginStore,
  type PendingLogin,
  type PendingLoginStore,
  type TakeResult,
} from './stores/pending-login.store.js';
export {
  StoreRecordSealer,
  STORE_RECORD_KEY_INFO,
  type InvalidStoreRecord,
  type InvalidStoreRecordHandler,
} from './stores/record-seal.js';
export {
  MemorySessionStore,
  RedisSessionStore,
  type MfaSession,
  type SessionLookup,
  type SessionStore,
} from './stores/session.store.js';
