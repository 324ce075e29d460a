// @duo-nest/testing: what a user's own integration tests need to sign a test user on through a
// real (simulated) Duo, script Duo's failures, and open real MFA sessions for controller tests.
export {
  startDuoSimulator,
  type DuoSimulatorOptions,
  type DuoTestFactor,
  type DuoTestOutcome,
  type DuoTestSimulator,
  type DuoTestUser,
} from './simulator.js';
export {
  duoTestOptions,
  type DuoTestOptionsOverrides,
  type DuoTestSimulatorCredentials,
} from './options.js';
export {
  DuoSignInError,
  signInWithDuo,
  type DuoSignIn,
  type DuoSignInStage,
  type SignInWithDuoOptions,
} from './sign-in.js';
export type { DuoTestServer } from './target.js';
export {
  mfaSession,
  type DuoTestModuleRef,
  type MfaSessionInput,
  type TestMfaSession,
} from './session.js';
export type { HealthFault, TokenFault } from '@duo-nest/simulator';
