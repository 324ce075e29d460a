/** The texts of the reference app's own pages (sign-on form, result page) per language. */
export interface AuthPageMessages {
  signOnTitle: string;
  usernameLabel: string;
  submit: string;
  noCancel: string;
  notices: Record<'mfa_required' | 'session_expired' | 'mfa_stale' | 'signed_out', string>;
  resultTitle: string;
  /** `{username}` and `{status}` are replaced with escaped fragments. */
  signedOnAs: string;
  rawResponse: string;
  claims: string;
  signOut: string;
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
    signed_out: 'You are signed out.',
  },
  resultTitle: 'Sign on complete',
  signedOnAs: 'Signed on as {username} (Duo answered {status}).',
  rawResponse: 'rawResponse',
  claims: 'Verified id_token claims',
  signOut: 'Sign out',
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
    signed_out: 'Sie sind abgemeldet.',
  },
  resultTitle: 'Anmeldung abgeschlossen',
  signedOnAs: 'Angemeldet als {username} (Duo antwortete {status}).',
  rawResponse: 'rawResponse (Duos Antwort)',
  claims: 'Geprüfte Angaben des id_token',
  signOut: 'Abmelden',
};

/** Partial, to show right-to-left safety: the rest is English. */
const AR: Partial<AuthPageMessages> = {
  signOnTitle: 'تسجيل الدخول',
  usernameLabel: 'اسم المستخدم',
  submit: 'تسجيل الدخول',
};

const CATALOGUE: Record<string, Partial<AuthPageMessages>> = { en: EN, de: DE, ar: AR };

/** The app's texts in `lang`, English filling the gaps of a partial catalogue. */
export function authMessages(lang: string): AuthPageMessages {
  return { ...EN, ...(CATALOGUE[lang] ?? {}) };
}
