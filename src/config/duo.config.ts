import type { DuoModuleOptions } from '@duo-nest/core';
import type { AppEnv } from './env.validation.js';

/** Maps the validated environment to DuoModule options (the module validates them again). */
export function duoOptionsFromEnv(env: AppEnv): DuoModuleOptions {
  const insecure = env.NODE_ENV !== 'production' && /^http:\/\//i.test(env.DUO_API_HOST);
  return {
    clientId: env.DUO_CLIENT_ID,
    clientSecret: env.DUO_CLIENT_SECRET,
    apiHost: env.DUO_API_HOST,
    redirectUri: env.DUO_REDIRECT_URI,
    allowInsecureHttp: insecure,
    secureCookies: env.PUBLIC_URL.startsWith('https://'),
    timeoutMs: env.DUO_TIMEOUT_MS,
    clockToleranceMs: env.DUO_CLOCK_TOLERANCE_MS,
    // Duo calls through DUO_HTTPS_PROXY, else HTTPS_PROXY (this env, never process.env), minus NO_PROXY.
    proxy: env.DUO_HTTPS_PROXY ?? env.HTTPS_PROXY ?? false,
    noProxy: env.NO_PROXY ?? '',
    ...(env.DUO_CA_FILE ? { caFile: env.DUO_CA_FILE } : {}),
    failmode: env.DUO_FAILMODE,
    healthCacheMs: env.DUO_HEALTH_CACHE_MS,
    healthProbe: env.DUO_HEALTH_PROBE,
    breakerFailureThreshold: env.DUO_BREAKER_THRESHOLD,
    breakerCooldownMs: env.DUO_BREAKER_COOLDOWN_MS,
    maxConcurrentDuoCalls: env.DUO_MAX_CONCURRENCY,
    pendingTtlMs: env.DUO_PENDING_TTL_MS,
    skipButtonPress: env.DUO_SKIP_BUTTON_PRESS,
    // Unset: the catalogue's button text, in the page's language.
    ...(env.DUO_BUTTON_DISPLAY_NAME ? { displayName: env.DUO_BUTTON_DISPLAY_NAME } : {}),
    css: env.DUO_BUTTON_CSS,
    showPoweredBy: env.DUO_SHOW_POWERED_BY,
    sessionSecret: env.SESSION_SECRET,
    ...(env.SESSION_SECRET_PREVIOUS ? { sessionSecretPrevious: env.SESSION_SECRET_PREVIOUS } : {}),
    sessionIdleTimeoutMs: env.SESSION_IDLE_TIMEOUT_MS,
    sessionAbsoluteTimeoutMs: env.SESSION_ABSOLUTE_TIMEOUT_MS,
    locales: env.APP_LOCALES,
    ...(env.APP_LOCALE ? { locale: env.APP_LOCALE } : {}),
    ...(env.DUO_FRONTEND_URL ? { frontEnd: { successUrl: env.DUO_FRONTEND_URL } } : {}),
    defaultReturnTo: '/result',
    signOnPath: '/',
    // The sign-on caps (the library's; 0 turns one off) and the start's CSRF check.
    limits: {
      windowMs: env.RATE_LIMIT_WINDOW_MS,
      startsPerIp: env.RATE_LIMIT_LOGIN_PER_IP,
      startsPerUser: env.RATE_LIMIT_LOGIN_PER_USER,
      callbacksPerIp: env.RATE_LIMIT_CALLBACK_PER_IP,
      ipv6Subnet: env.RATE_LIMIT_IPV6_SUBNET,
    },
    csrf: { allowedOrigins: [new URL(env.PUBLIC_URL).origin] },
    // /admin's Duo application: its own (stricter Duo-side policy) when configured, else the main one.
    applications: {
      admin:
        env.DUO_ADMIN_APP_CLIENT_ID && env.DUO_ADMIN_APP_CLIENT_SECRET
          ? { clientId: env.DUO_ADMIN_APP_CLIENT_ID, clientSecret: env.DUO_ADMIN_APP_CLIENT_SECRET }
          : 'default',
    },
  };
}
