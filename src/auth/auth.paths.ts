/**
 * The route where the reference app starts Duo (POST, DuoStartGuard). The Duo library checks that
 * route's CSRF token itself; the app's own CSRF middleware checks every other state-changing route.
 */
export const SIGN_ON_START_PATH = '/login';
