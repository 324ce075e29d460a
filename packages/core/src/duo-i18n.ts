import type { Request, Response } from 'express';
import type { DuoErrorCode, DuoMfaPolicyErrorReason } from './duo.errors.js';

/**
 * The texts of the library's own pages (button page, message and error pages) in one language.
 * Templates may hold `{name}` placeholders: the template is HTML-escaped first, then each
 * placeholder is replaced with an already escaped fragment, so no catalogue text and no user value
 * can inject markup.
 */
export interface DuoPageMessages {
  /** Writing direction of the language: `rtl` sets `dir="rtl"` on the page. */
  dir: 'ltr' | 'rtl';
  /** Button page: title, heading, explanation (`{username}`, `{signOnLink}`), link text. */
  buttonTitle: string;
  buttonHeading: string;
  buttonExplain: string;
  signOnLink: string;
  /** The button's text when the app set no `displayName`. */
  buttonText: string;
  poweredBy: string;
  /** Message pages: the restart link. */
  restart: string;
  /** Error page titles, per family of refusal. */
  titleTooMany: string;
  titleRefused: string;
  titleUnavailable: string;
  titleDenied: string;
  titleAgain: string;
  titleFailed: string;
  /**
   * Error page messages per code (`{seconds}` in rate_limited); a code without one uses
   * `errorGeneric`. Absent (English, partial catalogues): the error's own English public message.
   */
  errors?: Partial<Record<DuoErrorCode, string>>;
  errorGeneric: string;
  /** `forbidden` naming the route's Duo group(s): `{groups}` is the plain list (pages escape it). */
  forbiddenGroup: string;
  forbiddenGroups: string;
  /** `mfa_policy` per reason: why the factor and bypass policy refused the session. */
  policy: Record<DuoMfaPolicyErrorReason, string>;
  /** The step-up page: title, heading, explanation (`{application}`), button. */
  stepUpTitle: string;
  stepUpHeading: string;
  stepUpExplain: string;
  stepUpButton: string;
}

const EN: DuoPageMessages = {
  dir: 'ltr',
  buttonTitle: 'Sign on with Duo',
  buttonHeading: 'Two-factor authentication',
  buttonExplain:
    "Signing on as {username}. Next, Duo will ask you to approve this sign-on (for example with Duo Push). Duo's page has no way back here: if you cannot complete it, return to the {signOnLink} and start again.",
  signOnLink: 'sign-on page',
  buttonText: 'Sign on with Duo',
  poweredBy: 'Powered by Duo',
  restart: 'Start a new sign-on',
  titleTooMany: 'Too many attempts',
  titleRefused: 'Request refused',
  titleUnavailable: 'Two-factor service unavailable',
  titleDenied: 'Access denied',
  titleAgain: 'Please sign on again',
  titleFailed: 'Sign-on failed',
  // No `errors`: English pages show the error's own public message (duoPublicMessage).
  errorGeneric: 'The sign-on failed; start again',
  forbiddenGroup: 'This page needs membership in the Duo group {groups}',
  forbiddenGroups: 'This page needs membership in one of the Duo groups {groups}',
  policy: {
    bypass_not_allowed:
      'This page needs a two-factor authentication; Duo let this sign-on through without one (bypass)',
    factor_not_allowed:
      'This page needs another two-factor method than the one used; sign on again with an allowed one',
    factor_unknown:
      'This page needs a known two-factor method; Duo reported one this application does not know',
  },
  stepUpTitle: 'Two-factor sign-on',
  stepUpHeading: 'One more two-factor sign-on',
  stepUpExplain: 'This page needs a Duo sign-on with the {application} application.',
  stepUpButton: 'Continue with Duo',
};

const DE: DuoPageMessages = {
  dir: 'ltr',
  buttonTitle: 'Mit Duo anmelden',
  buttonHeading: 'Zwei-Faktor-Authentifizierung',
  buttonExplain:
    'Anmeldung als {username}. Als Nächstes bittet Duo Sie, diese Anmeldung zu bestätigen (zum Beispiel mit Duo Push). Duos Seite führt nicht hierher zurück: Wenn Sie sie nicht abschließen können, kehren Sie zur {signOnLink} zurück und beginnen Sie neu.',
  signOnLink: 'Anmeldeseite',
  buttonText: 'Mit Duo anmelden',
  poweredBy: 'Bereitgestellt von Duo',
  restart: 'Neue Anmeldung beginnen',
  titleTooMany: 'Zu viele Versuche',
  titleRefused: 'Anfrage abgelehnt',
  titleUnavailable: 'Zwei-Faktor-Dienst nicht erreichbar',
  titleDenied: 'Zugriff verweigert',
  titleAgain: 'Bitte melden Sie sich erneut an',
  titleFailed: 'Anmeldung fehlgeschlagen',
  errors: {
    rate_limited: 'Zu viele Anmeldeversuche; versuchen Sie es in {seconds} Sekunden erneut',
    csrf_failed:
      'Dieses Formular ist abgelaufen oder kam von einer anderen Website; laden Sie die Seite neu und versuchen Sie es erneut',
    invalid_request: 'Die Anmeldeanfrage ist ungültig; beginnen Sie neu',
    state_unknown: 'Diese Anmeldung ist unbekannt oder wurde schon verwendet; beginnen Sie neu',
    state_expired: 'Diese Anmeldung hat zu lange gedauert und ist abgelaufen; beginnen Sie neu',
    binding_mismatch:
      'Diese Anmeldung wurde in einem anderen Browser begonnen; beginnen Sie hier neu',
    callback_error: 'Duo hat diese Anmeldung nicht bestätigt',
    unavailable: 'Der Zwei-Faktor-Dienst ist nicht erreichbar; versuchen Sie es später erneut',
    busy: 'Gerade laufen zu viele Anmeldungen; versuchen Sie es in einer Minute erneut',
    audit_unavailable:
      'Die Anmeldung konnte nicht protokolliert werden; versuchen Sie es später erneut',
    untrusted_certificate:
      'Die Zwei-Faktor-Authentifizierung erreicht Duo nicht sicher; wenden Sie sich an Ihre Administration',
    invalid_client:
      'Die Zwei-Faktor-Authentifizierung ist falsch eingerichtet; wenden Sie sich an Ihre Administration',
    invalid_grant: 'Diese Anmeldung konnte nicht abgeschlossen werden; beginnen Sie neu',
    duo_rejected: 'Duo hat diese Anmeldung abgelehnt; versuchen Sie es später erneut',
    mfa_not_performed: 'Diese Seite verlangt eine abgeschlossene Zwei-Faktor-Authentifizierung',
    forbidden: 'Sie gehören keiner Gruppe an, die diese Seite öffnen darf',
    mfa_policy:
      'Diese Seite verlangt eine andere Zwei-Faktor-Authentifizierung; melden Sie sich erneut an',
    mfa_step_up: 'Diese Seite verlangt eine Zwei-Faktor-Anmeldung mit einer anderen Duo-Anwendung',
    mfa_required: 'Melden Sie sich zuerst mit Duo an',
    session_expired: 'Ihre Sitzung ist abgelaufen; melden Sie sich erneut an',
    mfa_stale: 'Diese Seite verlangt eine frische Zwei-Faktor-Authentifizierung',
  },
  errorGeneric: 'Die Anmeldung ist fehlgeschlagen; beginnen Sie neu',
  forbiddenGroup: 'Diese Seite verlangt die Mitgliedschaft in der Duo-Gruppe {groups}',
  forbiddenGroups: 'Diese Seite verlangt die Mitgliedschaft in einer der Duo-Gruppen {groups}',
  policy: {
    bypass_not_allowed:
      'Diese Seite verlangt eine Zwei-Faktor-Authentifizierung; Duo hat diese Anmeldung ohne eine durchgelassen (Bypass)',
    factor_not_allowed:
      'Diese Seite verlangt eine andere Zwei-Faktor-Methode als die verwendete; melden Sie sich mit einer erlaubten erneut an',
    factor_unknown:
      'Diese Seite verlangt eine bekannte Zwei-Faktor-Methode; Duo meldete eine, die diese Anwendung nicht kennt',
  },
  stepUpTitle: 'Zwei-Faktor-Anmeldung',
  stepUpHeading: 'Noch eine Zwei-Faktor-Anmeldung',
  stepUpExplain: 'Diese Seite verlangt eine Duo-Anmeldung mit der Anwendung {application}.',
  stepUpButton: 'Weiter mit Duo',
};

/**
 * A partial Arabic catalogue: only a few texts, to show that pages stay right-to-left safe; every
 * other text falls back to English. Offered only when the app lists 'ar' in `locales`.
 */
const AR: Partial<DuoPageMessages> = {
  dir: 'rtl',
  buttonHeading: 'المصادقة الثنائية',
  restart: 'ابدأ تسجيل دخول جديد',
  titleFailed: 'فشل تسجيل الدخول',
};

/** The built-in catalogues. 'en' and 'de' are complete; 'ar' is partial (English fallback). */
export const DUO_PAGE_MESSAGES: Readonly<Record<string, Partial<DuoPageMessages>>> = {
  en: EN,
  de: DE,
  ar: AR,
};

/** The languages offered when the app names none; the first is the default. */
export const DUO_DEFAULT_LOCALES: readonly string[] = ['en', 'de'];

/** What the pages need from the module's options. */
export interface DuoLocaleSettings {
  /** Offered languages (lower-case primary tags); the first is the default. */
  locales: readonly string[];
  /** A fixed language (overrides Accept-Language), or a resolver tried first. */
  locale?: string | ((req: Request) => string | undefined);
}

/** The texts of one language, English filling any gap of a partial catalogue. */
export function duoPageMessages(locale: string): DuoPageMessages {
  return { ...EN, ...(DUO_PAGE_MESSAGES[locale] ?? {}) };
}

const MAX_ACCEPT_LANGUAGE = 1024;
const MAX_RANGES = 32;
const RANGE_RE = /^([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)$/;
const Q_RE = /^q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/i;

/**
 * The best of `supported` for an Accept-Language header (RFC 9110 q-values; `de-CH` matches
 * `de`; `*` and no match give `fallback`). Malformed ranges are skipped; an oversized header is
 * ignored: this header is attacker-controlled and never reaches a page.
 */
export function negotiateLocale(
  header: unknown,
  supported: readonly string[],
  fallback: string,
): string {
  if (typeof header !== 'string' || header.length === 0 || header.length > MAX_ACCEPT_LANGUAGE) {
    return fallback;
  }
  const ranges: { tag: string; q: number; order: number }[] = [];
  for (const [order, part] of header.split(',').slice(0, MAX_RANGES).entries()) {
    const [rawTag, ...params] = part.split(';').map((s) => s.trim());
    if (!RANGE_RE.test(rawTag)) {
      continue;
    }
    let q = 1;
    for (const p of params) {
      const m = Q_RE.exec(p);
      if (m) {
        q = Number(m[1]);
      }
    }
    if (q > 0) {
      ranges.push({ tag: rawTag.toLowerCase(), q, order });
    }
  }
  ranges.sort((a, b) => b.q - a.q || a.order - b.order);
  for (const { tag } of ranges) {
    if (tag === '*') {
      return fallback;
    }
    const primary = tag.split('-', 1)[0];
    const hit = supported.find((s) => s === tag) ?? supported.find((s) => s === primary);
    if (hit) {
      return hit;
    }
  }
  return fallback;
}

/** The language of this request's page: the fixed locale, the resolver's, else Accept-Language. */
export function resolveLocale(req: Request, settings: DuoLocaleSettings): string {
  const fallback = settings.locales[0] ?? 'en';
  const { locale } = settings;
  if (typeof locale === 'string') {
    return locale;
  }
  if (typeof locale === 'function') {
    const chosen = locale(req);
    if (typeof chosen === 'string' && settings.locales.includes(chosen)) {
      return chosen;
    }
  }
  return negotiateLocale(req.headers['accept-language'], settings.locales, fallback);
}

/** What a page is written in: the `lang` and `dir` of its `<html>`. */
export interface DuoPageLanguage {
  lang: string;
  dir: 'ltr' | 'rtl';
}

/**
 * Resolves the page language and sets its headers: Content-Language, and Vary: Accept-Language
 * (unless the locale is fixed, the answer depends on that header).
 */
export function pageLanguage(
  req: Request,
  res: Response,
  settings: DuoLocaleSettings,
): DuoPageLanguage {
  const lang = resolveLocale(req, settings);
  if (!res.headersSent) {
    res.setHeader('Content-Language', lang);
    if (typeof settings.locale !== 'string') {
      res.vary('Accept-Language');
    }
  }
  return { lang, dir: duoPageMessages(lang).dir };
}

/**
 * What an error page says in `lang`: the catalogue's text for the code (the seconds of a cap's
 * refusal filled in), or, for a language without error texts, the English public message.
 */
export function localizedErrorMessage(
  lang: string,
  code: DuoErrorCode,
  englishMessage: string,
  retryAfterSec?: number,
  /** What the refusal names: the route's Duo groups (forbidden), the policy's reason (mfa_policy). */
  facts: { groups?: readonly string[]; reason?: DuoMfaPolicyErrorReason } = {},
): string {
  const own = DUO_PAGE_MESSAGES[lang]?.errors;
  if (!own) {
    return englishMessage;
  }
  const t = duoPageMessages(lang);
  const generic = t.errorGeneric;
  if (code === 'forbidden' && facts.groups && facts.groups.length > 0) {
    // Plain text: the page escapes the whole message (the names are the route's, not the user's).
    const template = facts.groups.length === 1 ? t.forbiddenGroup : t.forbiddenGroups;
    return template.replace('{groups}', () => facts.groups!.join(', '));
  }
  if (code === 'mfa_policy' && facts.reason && Object.hasOwn(t.policy, facts.reason)) {
    return t.policy[facts.reason];
  }
  if (code === 'rate_limited') {
    // Duo's own 429 (no seconds known) reads as the service being unavailable.
    return retryAfterSec === undefined
      ? (own.unavailable ?? generic)
      : (own.rate_limited ?? generic).replace('{seconds}', String(retryAfterSec));
  }
  return own[code] ?? generic;
}

/** Fills a catalogue template: the template is escaped, each `{name}` gets its escaped fragment. */
export function fillTemplate(
  template: string,
  fragments: Record<string, string>,
  escape: (v: unknown) => string,
): string {
  return escape(template).replace(/\{([a-zA-Z]+)\}/g, (whole, name: string) =>
    Object.prototype.hasOwnProperty.call(fragments, name) ? fragments[name] : whole,
  );
}
