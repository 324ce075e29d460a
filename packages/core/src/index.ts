// The public face of the Duo library: what a Nest app (or a framework-free caller) needs.
// Everything else (HTML helpers, request parsers, strict-input decoders, DI tokens, the flow
// service) is in ./internal.ts, for the reference app and the audit trail only: not an API.
export { DuoModule } from './duo.module.js';
export {
  DUO_ASYNC_OPTIONS_TYPE,
  DUO_OPTIONS_TYPE,
  type DuoModuleExtras,
} from './duo.module-definition.js';
export type {
  DuoCsrfOptions,
  DuoFrontEndOptions,
  DuoLimitsOptions,
  DuoModuleOptions,
} from './duo-module-options.interface.js';
export { sanitizeReturnTo } from './duo-module-options.js';

// Guards, the sign-on service and decorators.
export { DuoCsrfGuard, DuoRequestAnswered, DuoStartGuard } from './duo-start.guard.js';
export { MfaGuard, type MfaDenial } from './mfa.guard.js';
export {
  DuoApplications,
  DUO_DEFAULT_APPLICATION,
  MemoryDuoTenantStore,
  satisfiedApplications,
  type DuoApplication,
  type DuoApplicationConfig,
  type DuoTenantStore,
} from './duo-applications.js';
export { DuoSignOn } from './duo-sign-on.service.js';
export { DuoSessionControl, type DuoSessionControlActor } from './duo-session-control.service.js';
export { DuoFormFields } from './duo-form-fields.decorator.js';
export type { DuoFormFieldsValue } from './duo-csrf.service.js';
export {
  AllowFailOpen,
  CurrentMfa,
  DUO_SKIP_MFA,
  Public,
  RequireDuoGroups,
  RequireMfa,
  SkipMfa,
  type RequireMfaOptions,
} from './duo.decorators.js';
export {
  DUO_BYPASS_REASONS,
  DUO_FACTORS,
  duoFactorName,
  isDuoBypass,
  type DuoFactor,
  type DuoMfaPolicy,
  type DuoMfaPolicyReason,
} from './duo-mfa-policy.js';

// Errors.
export {
  DuoConfigError,
  DuoError,
  DuoMfaPolicyError,
  DuoStepUpError,
  DuoForbiddenError,
  DuoRateLimitError,
  type DuoConfigIssue,
  type DuoErrorCode,
} from './duo.errors.js';
export { DuoHttpException, type DuoHttpExceptionBody } from './duo-http.exception.js';

// Results and events.
export type * from './duo.types.js';
export { DUO_AUTH_EVENT_TYPES, type DuoAuthEvent, type DuoAuthEventType } from './duo-events.js';

// Stores: the interfaces with their memory and Redis implementations, and the record sealer.
export { MemoryPendingLoginStore } from './stores/memory-pending-login.store.js';
export { RedisPendingLoginStore } from './stores/redis-pending-login.store.js';
export type {
  PendingLogin,
  PendingLoginStore,
  TakeResult,
} from './stores/pending-login-store.interface.js';
export { MemorySessionStore } from './stores/memory-session.store.js';
export { RedisSessionStore } from './stores/redis-session.store.js';
export type {
  MfaSession,
  SessionLookup,
  SessionStore,
  SessionSummary,
} from './stores/session-store.interface.js';
export { MemoryRateLimitStore } from './stores/memory-rate-limit.store.js';
export { RedisRateLimitStore } from './stores/redis-rate-limit.store.js';
export type { RateLimitHit, RateLimitStore } from './stores/rate-limit-store.interface.js';
export type { DuoRedisConnection, DuoRedisNode } from './stores/redis-connection.js';
export {
  StoreRecordSealer,
  STORE_RECORD_KEY_INFO,
  type InvalidStoreRecord,
  type InvalidStoreRecordHandler,
} from './stores/record-seal.js';

// The Duo client, for framework-free use.
export { DuoClient } from './duo.client.js';
export type { DuoCallEndpoint, DuoCallObserver, DuoClientOptions } from './duo-client-options.js';
