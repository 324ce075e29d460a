import type { StrictInputFailure } from '@duo-nest/core/internal';

/**
 * What the app's own refusals before any route say (strict input, body limits, method, CSRF,
 * redirect guard), per language. JSON answers keep the English text (a stable code carries the
 * meaning); HTML pages are in the request's language. `{where}` is the address or the form,
 * `{name}` a parameter name the strict decoder found quotable, `{times}` a count.
 */
export interface RefusalMessages {
  where: Record<'address' | 'form', string>;
  strict: Record<StrictInputFailure, string>;
  /** duplicate_key when the name can be quoted (`{name}`, `{times}`). */
  duplicateNamed: string;
  unsupportedCharset: string;
  tooLarge: string;
  unreadable: string;
  methodNotAllowed: string;
  csrf: string;
  tooMany: string;
  /** The redirect guard's page. */
  redirectTitle: string;
  redirectMessage: string;
  startAgain: string;
}

const EN: RefusalMessages = {
  where: { address: 'The address', form: 'The form' },
  strict: {
    duplicate_key: '{where} gives one parameter more than once',
    empty_key: '{where} has a parameter without a name',
    too_many_params: '{where} has too many parameters',
    malformed_escape: '{where} has a % that is not followed by two hex digits',
    invalid_utf8: '{where} has percent-escapes that are not valid UTF-8',
    invalid_char: '{where} has a character that must be percent-encoded',
    invalid_cookie: '{where} has a malformed cookie',
  },
  duplicateNamed: '{name} is given {times} times; give it once',
  unsupportedCharset: 'Send the form in UTF-8 (charset=utf-8)',
  tooLarge: 'The request is too large',
  unreadable: 'The request body could not be read',
  methodNotAllowed: 'Only GET is allowed here',
  csrf: 'This form expired or came from another site; reload the page and try again',
  tooMany: 'Too many requests; try again later',
  redirectTitle: 'Redirect refused',
  redirectMessage: 'The page tried to send you to another site.',
  startAgain: 'Start again',
};

const DE: RefusalMessages = {
  where: { address: 'Die Adresse', form: 'Das Formular' },
  strict: {
    duplicate_key: '{where} enthält einen Parameter mehr als einmal',
    empty_key: '{where} enthält einen Parameter ohne Namen',
    too_many_params: '{where} enthält zu viele Parameter',
    malformed_escape: '{where} enthält ein %, auf das keine zwei Hexadezimalziffern folgen',
    invalid_utf8: '{where} enthält Prozent-Kodierungen, die kein gültiges UTF-8 sind',
    invalid_char: '{where} enthält ein Zeichen, das prozent-kodiert sein muss',
    invalid_cookie: '{where} enthält ein fehlerhaftes Cookie',
  },
  duplicateNamed: '{name} wird {times}-mal angegeben; geben Sie es einmal an',
  unsupportedCharset: 'Senden Sie das Formular in UTF-8 (charset=utf-8)',
  tooLarge: 'Die Anfrage ist zu groß',
  unreadable: 'Der Inhalt der Anfrage konnte nicht gelesen werden',
  methodNotAllowed: 'Hier ist nur GET erlaubt',
  csrf: 'Dieses Formular ist abgelaufen oder kam von einer anderen Website; laden Sie die Seite neu und versuchen Sie es erneut',
  tooMany: 'Zu viele Anfragen; versuchen Sie es später erneut',
  redirectTitle: 'Weiterleitung abgelehnt',
  redirectMessage: 'Die Seite wollte Sie auf eine andere Website schicken.',
  startAgain: 'Neu beginnen',
};

/** English and German are complete; any other language (ar) falls back to English. */
const CATALOGUE: Record<string, RefusalMessages> = { en: EN, de: DE };

export function refusalMessages(lang: string): RefusalMessages {
  return CATALOGUE[lang] ?? EN;
}

/** One refusal's text, named by key so that each language can say it. */
export type RefusalText =
  | {
      key: 'strict';
      failure: StrictInputFailure;
      where: 'address' | 'form';
      name?: string;
      times?: number;
    }
  | {
      key:
        'unsupportedCharset' | 'tooLarge' | 'unreadable' | 'methodNotAllowed' | 'csrf' | 'tooMany';
    };

/** Parameter names the English text quotes (the strict decoder's own rule): never markup. */
const QUOTABLE_NAME_RE = /^[A-Za-z0-9_.-]{1,40}$/;

/** The text of a refusal in `lang` (plain text: the page escapes it). */
export function refusalText(lang: string, text: RefusalText): string {
  const t = refusalMessages(lang);
  if (text.key !== 'strict') {
    return t[text.key];
  }
  if (
    text.failure === 'duplicate_key' &&
    text.name !== undefined &&
    QUOTABLE_NAME_RE.test(text.name)
  ) {
    return t.duplicateNamed
      .replace('{name}', () => text.name!)
      .replace('{times}', String(text.times ?? 2));
  }
  return t.strict[text.failure].replace('{where}', t.where[text.where]);
}
