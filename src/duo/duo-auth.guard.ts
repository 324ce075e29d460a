import { DuoStartGuard } from './duo-start.guard.js';

/**
 * @deprecated Use DuoStartGuard after the first factor; DuoModule serves the callback route
 * itself. Kept one release as an alias: it starts a sign-on and answers the request.
 */
export const DuoAuthGuard = DuoStartGuard;
/** @deprecated Use DuoStartGuard. */
export type DuoAuthGuard = DuoStartGuard;
