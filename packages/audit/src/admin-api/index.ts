// Duo Admin API client for the authentication log (framework-free, like DuoClient).
export {
  DuoAdminClient,
  DUO_AUTH_LOG_LAG_MS,
  DUO_AUTH_LOG_MAX_LIMIT,
  DUO_AUTH_LOG_PATH,
  type DuoAdminCallObserver,
  type DuoAdminClientInternals,
} from './admin-api.client.js';
export {
  DUO_ADMIN_BOUNDS,
  DUO_ADMIN_DEFAULTS,
  DUO_ADMIN_ENV_VARIABLES,
  DUO_ADMIN_MESSAGES,
  isDuoAdminApiConfigured,
  isValidAdminIntegrationKey,
  isValidAdminSecretKey,
  normalizeDuoAdminClientOptions,
  parseAdminApiHost,
  validateDuoAdminClientOptions,
  type DuoAdminClientOptions,
  type NormalizedDuoAdminClientOptions,
} from './admin-api-options.js';
export {
  DuoAdminConfigError,
  DuoAdminError,
  type DuoAdminConfigIssue,
  type DuoAdminErrorCode,
} from './admin-api.errors.js';
export {
  canonicalParams,
  canonicalRequestV5,
  DuoSigningInputError,
  formatDuoDate,
  signRequestV5,
  type DuoSignedParams,
  type DuoSigningInput,
} from './admin-api-signing.js';
export type * from './admin-api.types.js';
