/** The texts of the reference app's own pages (sign-on form, result page) per language. */
export interface AuthPageMessages {
  signOnTitle: string;
  usernameLabel: string;
  submit: string;
  noCancel: string;
  notices: Record<
    'mfa_required' | 'session_expired' | 'mfa_stale' | 'mfa_policy' | 'signed_out',
    string
  >;
  resultTitle: string;
  /** `{username}` and `{status}` are replaced with escaped fragments. */
  signedOnAs: string;
  /** Heading over Duo's token answer (status, headers, expires_in, token_type, redacted tokens). */
  tokenResponse: string;
  /** Heading over the claims of the verified id_token only. */
  claims: string;
  signOut: string;
  /** The demo's other pages, linked from the result page. */
  demoPages: string;
  links: Record<'me' | 'status' | 'stepUp' | 'admin' | 'audit', string>;
}

const EN: AuthPageMessages = {
  signOnTitle: 'Sign On',
  usernameLabel: 'Username',
  submit: 'Sign On',
  noCancel:
    "Duo's prompt has no Cancel button: if you cannot finish there, come back to this page and sign on again.",
  notices: {
    mfa_required: 'Please sign on to open that page.',
    session_expired: 'Your session expired. Please sign on again.',
    mfa_stale: 'That page needs a fresh two-factor authentication. Please sign on again.',
    mfa_policy:
      'That page does not accept the two-factor method of your last sign-on. Please sign on again.',
    signed_out: 'You are signed out.',
  },
  resultTitle: 'Sign on complete',
  signedOnAs: 'Signed on as {username} (Duo answered {status}).',
  tokenResponse: "Duo's token response (tokens redacted)",
  claims: 'Verified id_token claims',
  signOut: 'Sign out',
  demoPages: 'Other demo pages',
  links: {
    me: 'Your session (/me)',
    status: 'Status, fail-open included (/status)',
    stepUp: 'Step-up: MFA at most one minute old (/step-up)',
    admin: 'Admins only (/admin)',
    audit: 'Audit trail (/audit)',
  },
};

const DE: AuthPageMessages = {
  signOnTitle: 'Anmelden',
  usernameLabel: 'Benutzername',
  submit: 'Anmelden',
  noCancel:
    'Duos Abfrage hat keine Abbrechen-Schaltfläche: Wenn Sie dort nicht weiterkommen, kehren Sie zu dieser Seite zurück und melden Sie sich erneut an.',
  notices: {
    mfa_required: 'Bitte melden Sie sich an, um diese Seite zu öffnen.',
    session_expired: 'Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an.',
    mfa_stale:
      'Diese Seite verlangt eine frische Zwei-Faktor-Authentifizierung. Bitte melden Sie sich erneut an.',
    mfa_policy:
      'Diese Seite akzeptiert die Zwei-Faktor-Methode Ihrer letzten Anmeldung nicht. Bitte melden Sie sich erneut an.',
    signed_out: 'Sie sind abgemeldet.',
  },
  resultTitle: 'Anmeldung abgeschlossen',
  signedOnAs: 'Angemeldet als {username} (Duo antwortete {status}).',
  tokenResponse: 'Duos Token-Antwort (Token geschwärzt)',
  claims: 'Geprüfte Angaben (Claims) des id_token',
  signOut: 'Abmelden',
  demoPages: 'Weitere Demo-Seiten',
  links: {
    me: 'Ihre Sitzung (/me)',
    status: 'Status, auch bei Fail-open (/status)',
    stepUp: 'Step-up: MFA höchstens eine Minute alt (/step-up)',
    admin: 'Nur für Admins (/admin)',
    audit: 'Audit-Protokoll (/audit)',
  },
};

/** Partial, to show right-to-left safety: the rest is English. */
const AR: Partial<AuthPageMessages> = {
  signOnTitle: 'تسجيل الدخول',
  usernameLabel: 'اسم المستخدم',
  submit: 'تسجيل الدخول',
  tokenResponse: 'استجابة Duo للرموز (الرموز مخفية)',
  claims: 'ادعاءات id_token التي تم التحقق منها',
};

const CATALOGUE: Record<string, Partial<AuthPageMessages>> = { en: EN, de: DE, ar: AR };

/** The app's texts in `lang`, English filling the gaps of a partial catalogue. */
export function authMessages(lang: string): AuthPageMessages {
  return { ...EN, ...(CATALOGUE[lang] ?? {}) };
}
