import { Inject } from '@nestjs/common';

/** DI tokens of DuoModule. */
export const DUO_OPTIONS = Symbol('DUO_OPTIONS');
export const DUO_PENDING_LOGIN_STORE = Symbol('DUO_PENDING_LOGIN_STORE');
export const DUO_SESSION_STORE = Symbol('DUO_SESSION_STORE');
/** The Passport strategy name shared by the strategy and its guard. */
export const DUO_STRATEGY = 'duo';

export const InjectDuoOptions = () => Inject(DUO_OPTIONS);
export const InjectPendingLoginStore = () => Inject(DUO_PENDING_LOGIN_STORE);
export const InjectSessionStore = () => Inject(DUO_SESSION_STORE);
/** The counters of the sign-on caps (a RateLimitStore: memory, or Redis under `<prefix>rl:`). */
export const DUO_RATE_LIMIT_STORE = Symbol('DUO_RATE_LIMIT_STORE');
