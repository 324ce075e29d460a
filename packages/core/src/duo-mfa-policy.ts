// How an MFA session was satisfied, and whether a route's factor and bypass policy accepts it.
import type { DuoMfaPolicyErrorReason } from './duo.errors.js';
import type { MfaSession } from './stores/session-store.interface.js';

/**
 * Duo's factor names (`auth_context.factor`) that a factor policy may list: the Admin API
 * authentication-log vocabulary, plus `webauthn`, which stands for every WebAuthn factor. Duo logs
 * WebAuthn as free text (a real 2023 id_token said `WebAuthn Chrome Touch ID`; other deployments
 * log `webauthn_credential`, `webauthn_roaming`, `webauthn_platform`): the spellings are not
 * confirmed, so `webauthn` matches exactly those three names and a value `WebAuthn <words>`.
 * Any other value is unknown and refused by every factor policy (`factor_unknown`).
 */
export const DUO_FACTORS = [
  'duo_push',
  'verified_duo_push',
  'phone_call',
  'passcode',
  'sms_passcode',
  'sms_refresh',
  'duo_mobile_passcode',
  'duo_mobile_passcode_hotp',
  'duo_mobile_passcode_totp',
  'yubikey_passcode',
  'yubikey_code',
  'hardware_token',
  'digipass_go_7_token',
  'u2f_token',
  'webauthn',
  'webauthn_credential',
  'webauthn_roaming',
  'webauthn_platform',
  'bypass_code',
  'remembered_device',
  'trusted_network',
  'not_available',
] as const;

/** One of Duo's factor names (see DUO_FACTORS). */
export type DuoFactor = (typeof DUO_FACTORS)[number];

const KNOWN: ReadonlySet<string> = new Set(DUO_FACTORS);
const WEBAUTHN_NAMES: ReadonlySet<string> = new Set([
  'webauthn_credential',
  'webauthn_roaming',
  'webauthn_platform',
]);
/** `WebAuthn` and one to six plain words (Duo's free-text spelling), nothing else. */
const WEBAUTHN_TEXT = /^WebAuthn(?: [A-Za-z0-9()._-]{1,32}){1,6}$/;

/**
 * Duo's `auth_context.reason` values that mean no second factor was checked: the user is in bypass
 * status (`bypass_user`), or a Duo policy let the user through without 2FA (new-user policy
 * `allow_unenrolled_user*`, authentication policy `allowed_by_policy`, an authorized network that
 * allows access without 2FA: `trusted_network`). Duo documents the reasons, not which ones a
 * Universal Prompt id_token carries; being strict, each counts as a bypass.
 */
export const DUO_BYPASS_REASONS: readonly string[] = [
  'bypass_user',
  'allow_unenrolled_user',
  'allow_unenrolled_user_on_trusted_network',
  'allowed_by_policy',
  'trusted_network',
];

/**
 * The policy name of a factor as Duo sent it: itself when it is one of DUO_FACTORS, `webauthn` for
 * a WebAuthn spelling, undefined when unknown.
 */
export function duoFactorName(raw: unknown): DuoFactor | undefined {
  if (typeof raw !== 'string') {
    return undefined;
  }
  if (WEBAUTHN_NAMES.has(raw) || WEBAUTHN_TEXT.test(raw)) {
    return 'webauthn';
  }
  return KNOWN.has(raw) ? (raw as DuoFactor) : undefined;
}

/**
 * True when Duo let an MFA session through without checking a second factor. Strict: a bypass
 * reason (DUO_BYPASS_REASONS), the factor `not_available`, no factor at all, or a result other than
 * `success` (Duo redirects only after success, so another value is not an MFA this library can
 * vouch for). A fail-open session is not a bypass: it is no MFA at all (`mfa: false`).
 */
export function isDuoBypass(
  session: Pick<MfaSession, 'mfa' | 'factor' | 'duoResult' | 'duoReason'>,
): boolean {
  if (!session.mfa) {
    return false;
  }
  return (
    session.duoResult !== 'success' ||
    session.factor === undefined ||
    session.factor === 'not_available' ||
    (session.duoReason !== undefined && DUO_BYPASS_REASONS.includes(session.duoReason))
  );
}

/** What a factor and bypass policy asks of an MFA session (route or module-wide). */
export interface DuoMfaPolicy {
  /**
   * The factors that may have satisfied MFA (DUO_FACTORS names; `webauthn` for every WebAuthn
   * spelling). A session whose factor is not listed is refused (`factor_not_allowed`), and one
   * whose factor is not a known name at all is refused too (`factor_unknown`). @default any factor
   */
  factors?: readonly string[];
  /** Accept a session Duo let through without a second factor (see isDuoBypass). */
  allowBypass?: boolean;
}

/** Why a factor and bypass policy refused a session (the `reason` of an `mfa_policy` refusal). */
export type DuoMfaPolicyReason = DuoMfaPolicyErrorReason;

/** Checks a policy's factor list: every name must be one of DUO_FACTORS; throws TypeError otherwise. */
export function checkPolicyFactors(factors: unknown, where: string): readonly DuoFactor[] {
  if (
    !Array.isArray(factors) ||
    factors.length === 0 ||
    !factors.every((f) => typeof f === 'string' && KNOWN.has(f))
  ) {
    throw new TypeError(
      `${where}: factors must be a non-empty list of Duo factor names (${DUO_FACTORS.join(', ')})`,
    );
  }
  return Object.freeze([...new Set(factors as DuoFactor[])]);
}

/**
 * Why `policy` refuses the MFA session, or undefined when it accepts it. The bypass check comes
 * first: a bypass is refused as a bypass even when its factor (`not_available`) is listed.
 */
export function mfaPolicyRefusal(
  session: Pick<MfaSession, 'mfa' | 'factor' | 'duoResult' | 'duoReason'>,
  policy: { factors?: readonly string[]; allowBypass: boolean },
): DuoMfaPolicyReason | undefined {
  if (!session.mfa) {
    return undefined;
  }
  const bypass = isDuoBypass(session);
  if (bypass && !policy.allowBypass) {
    return 'bypass_not_allowed';
  }
  if (policy.factors) {
    const name = duoFactorName(session.factor);
    if (name === undefined) {
      return 'factor_unknown';
    }
    if (!policy.factors.includes(name) && !policy.factors.includes(session.factor as string)) {
      return 'factor_not_allowed';
    }
  }
  return undefined;
}
