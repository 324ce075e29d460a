import { describe, expect, it } from '@jest/globals';
import { DuoForbiddenError } from './duo.errors.js';
import { duoErrorBody } from './duo-http.exception.js';
import { localizedErrorMessage } from './duo-i18n.js';
import { messagePage } from './duo-pages.js';

// A @RequireDuoGroups refusal names the groups the route needs, in JSON and on the page, in every
// language with error texts; the names are the app's (decorator), and still escaped on the page.
describe('DuoForbiddenError', () => {
  it('should name one group, several groups, or none', () => {
    expect(new DuoForbiddenError(['admins']).message).toBe(
      'This page needs membership in the Duo group admins',
    );
    expect(new DuoForbiddenError(['admins', 'auditors']).message).toBe(
      'This page needs membership in one of the Duo groups admins, auditors',
    );
    expect(new DuoForbiddenError([]).message).toBe('You are not allowed to open this page');
    expect(duoErrorBody(new DuoForbiddenError([]), 403)).not.toHaveProperty('groups');
  });

  it('should put the groups in the JSON body', () => {
    expect(duoErrorBody(new DuoForbiddenError(['admins', 'ops']), 403)).toEqual({
      statusCode: 403,
      error: 'forbidden',
      message: 'This page needs membership in one of the Duo groups admins, ops',
      groups: ['admins', 'ops'],
    });
  });

  it.each([
    ['en', 'This page needs membership in the Duo group '],
    ['de', 'Diese Seite verlangt die Mitgliedschaft in der Duo-Gruppe '],
  ])('should escape a group name with markup on the %s page', (lang, sentence) => {
    const error = new DuoForbiddenError(['<img src=x onerror=alert(1)>$&']);
    const text = localizedErrorMessage(lang, 'forbidden', error.message, undefined, {
      groups: error.groups,
    });
    const html = messagePage('Access denied', text, '/', { lang, dir: 'ltr' });
    expect(html).toContain(`${sentence}&#60;img src=x onerror=alert(1)&#62;$&#38;`);
    expect(html).not.toContain('<img');
  });
});
