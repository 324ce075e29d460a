/** What the module's callback route needs of `redirectUri` (checked at boot, with the other options). */
export const CALLBACK_ROUTE_PATH_MESSAGE =
  'must be an absolute http(s) URL whose path holds only letters, digits, "-", ".", "_", "~" and ' +
  '"/", with no query string: DuoModule serves its callback route at that path, and Duo adds ' +
  'its own query parameters';

/** Route-syntax-free path characters (Express would read `:`, `*`, `(`, `{`... as patterns). */
const PLAIN_PATH = /^\/[A-Za-z0-9._~\/-]*$/;

/**
 * True when the module can serve its callback route at the path of `redirectUri`: a plain path
 * (no route syntax, no percent-encoding) and no query string (Duo appends `duo_code` and `state`,
 * and the callback refuses any other parameter). A URI that does not parse at all is reported by
 * the client options' own check, not twice here.
 */
export function callbackRoutePathOk(redirectUri: unknown): boolean {
  if (typeof redirectUri !== 'string') {
    return true;
  }
  let url: URL;
  try {
    url = new URL(redirectUri);
  } catch {
    return true;
  }
  return url.search === '' && !redirectUri.includes('?') && PLAIN_PATH.test(url.pathname);
}
