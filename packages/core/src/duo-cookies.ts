import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Request, Response } from 'express';
import { readStrictCookie } from './duo-strict-input.js';
import { VerifiedMemo } from './verified-memo.js';

/** Signed cookies whose last check is remembered: the sessions and bindings in active use. */
const VERIFIED_MEMO_ENTRIES = 4096;

/** A signed cookie as read: absent, valid, or invalid with the reason. */
export type SignedCookie =
  | { status: 'absent' }
  | { status: 'ok'; value: string }
  | { status: 'invalid'; why: 'duplicate' | 'malformed' | 'forged' };

/** Cookie names and attributes: HttpOnly, SameSite=Lax (Duo returns by top-level GET), Secure + __Host- when secure. */
export class DuoCookies {
  readonly session: string;
  readonly binding: string;
  /** Made once: an HMAC over a ready key object costs about a third less than one over a string. */
  readonly #key: KeyObject;
  /** The secret before the last rotation: verifies cookies it signed, never signs. */
  readonly #previousKey: KeyObject | undefined;
  /** A signed value seen again skips the HMAC (see VerifiedMemo); the tag is the whole cookie. */
  readonly #memo = new VerifiedMemo<true>(VERIFIED_MEMO_ENTRIES);

  constructor(
    secret: string,
    private readonly secure: boolean,
    previousSecret?: string,
  ) {
    this.#key = createSecretKey(Buffer.from(secret, 'utf8'));
    this.#previousKey =
      previousSecret === undefined
        ? undefined
        : createSecretKey(Buffer.from(previousSecret, 'utf8'));
    this.session = secure ? '__Host-duo_session' : 'duo_session';
    this.binding = secure ? '__Host-duo_binding' : 'duo_binding';
  }

  /** `value.mac`: a cookie whose MAC fails is ignored before any store lookup. */
  sign(value: string): string {
    return `${value}.${this.mac(value)}`;
  }

  /** The signed cookie's value, or undefined when absent, duplicated, malformed or forged. */
  read(req: Request, name: string): string | undefined {
    const cookie = this.inspect(req, name);
    return cookie.status === 'ok' ? cookie.value : undefined;
  }

  /**
   * The signed cookie, read by the strict cookie decoder: absent, valid (its value), or invalid and
   * why (`duplicate`, `malformed`: not one clean `value.mac`, `forged`: the MAC does not match).
   */
  inspect(req: Request, name: string): SignedCookie {
    const cookie = readStrictCookie(req.headers.cookie, name);
    if (cookie.status !== 'ok') {
      return cookie;
    }
    const signed = cookie.value;
    const dot = signed.lastIndexOf('.');
    if (dot <= 0 || signed.length > 256) {
      return { status: 'invalid', why: 'malformed' };
    }
    const value = signed.slice(0, dot);
    if (this.#memo.get(signed, '') === true) {
      return { status: 'ok', value };
    }
    const given = Buffer.from(signed.slice(dot + 1));
    // Signed with the current secret, or (during a rotation) with the previous one.
    for (const key of this.#previousKey ? [this.#key, this.#previousKey] : [this.#key]) {
      const expected = Buffer.from(this.mac(value, key));
      if (given.length === expected.length && timingSafeEqual(given, expected)) {
        this.#memo.remember(signed, '', true);
        return { status: 'ok', value };
      }
    }
    return { status: 'invalid', why: 'forged' };
  }

  set(res: Response, name: string, value: string, maxAgeMs: number): void {
    res.append('Set-Cookie', this.serialize(name, this.sign(value), Math.floor(maxAgeMs / 1000)));
  }

  clear(res: Response, name: string): void {
    // A cookie set earlier in this same response (a session opened, then discarded because its
    // audit write failed) is withdrawn, so its value is never sent.
    const earlier = res.getHeader('Set-Cookie');
    if (earlier !== undefined) {
      const kept = (Array.isArray(earlier) ? earlier : [String(earlier)]).filter(
        (c) => !c.startsWith(`${name}=`),
      );
      res.setHeader('Set-Cookie', kept);
    }
    res.append('Set-Cookie', this.serialize(name, '', 0));
  }

  private serialize(name: string, value: string, maxAgeSec: number): string {
    return `${name}=${value}; Path=/; Max-Age=${maxAgeSec}; HttpOnly; SameSite=Lax${this.secure ? '; Secure' : ''}`;
  }

  private mac(value: string, key: KeyObject = this.#key): string {
    return createHmac('sha256', key).update(value).digest('base64url');
  }
}
