// The public face of the Duo library: the app, the audit trail and users import only from here.
export { DuoClient } from './duo.client.js';
export {
  isValidClientId,
  isValidClientSecret,
  isValidRedirectUri,
  normalizeDuoClientOptions,
  parseApiHost,
  validateDuoClientOptions,
  type DuoClientOptions,
  type NormalizedDuoClientOptions,
} from './duo-client-options.js';
export { DUO_BOUNDS, DUO_DEFAULTS, DUO_MESSAGES } from './duo.constants.js';
export { DuoConfigError, DuoError, type DuoConfigIssue, type DuoErrorCode } from './duo.errors.js';
export type * from './duo.types.js';
