import { DuoError } from './duo.errors.js';
import { DuoStoreError } from './stores/store.errors.js';

/**
 * Runs one pending-login or session store call. A store that cannot be reached (Redis down: ioredis
 * connection, retry or timeout errors) becomes DuoError 'unavailable' (503), never a bare 500;
 * DuoStoreError (a full or misused store) and DuoError pass through unchanged.
 */
export async function storeCall<T>(what: 'pending-login' | 'session', call: () => Promise<T>) {
  try {
    return await call();
  } catch (err) {
    if (err instanceof DuoError || err instanceof DuoStoreError) {
      throw err;
    }
    throw new DuoError('unavailable', `The ${what} store is unavailable; try again shortly`, {
      cause: err,
    });
  }
}
