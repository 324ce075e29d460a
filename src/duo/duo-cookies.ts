import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Request, Response } from 'express';

/** Cookie names and attributes: HttpOnly, SameSite=Lax (Duo returns by top-level GET), Secure + __Host- when secure. */
export class DuoCookies {
  readonly session: string;
  readonly binding: string;
  /** Made once: an HMAC over a ready key object costs about a third less than one over a string. */
  readonly #key: KeyObject;

  constructor(
    secret: string,
    private readonly secure: boolean,
  ) {
    this.#key = createSecretKey(Buffer.from(secret, 'utf8'));
    this.session = secure ? '__Host-duo_session' : 'duo_session';
    this.binding = secure ? '__Host-duo_binding' : 'duo_binding';
  }

  /** `value.mac`: a cookie whose MAC fails is ignored before any store lookup. */
  sign(value: string): string {
    return `${value}.${this.mac(value)}`;
  }

  /** The signed cookie's value, or undefined when absent, duplicated, malformed or forged. */
  read(req: Request, name: string): string | undefined {
    const values = readCookieValues(req.headers.cookie, name);
    if (values.length !== 1) {
      return undefined;
    }
    const signed = values[0];
    const dot = signed.lastIndexOf('.');
    if (dot <= 0 || signed.length > 256) {
      return undefined;
    }
    const value = signed.slice(0, dot);
    const given = Buffer.from(signed.slice(dot + 1));
    const expected = Buffer.from(this.mac(value));
    return given.length === expected.length && timingSafeEqual(given, expected) ? value : undefined;
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

  private mac(value: string): string {
    return createHmac('sha256', this.#key).update(value).digest('base64url');
  }
}

/** Every value of one cookie in a Cookie header (several means someone is tossing cookies). */
export function readCookieValues(header: string | undefined, name: string): string[] {
  if (!header) {
    return [];
  }
  const out: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      out.push(part.slice(eq + 1).trim());
    }
  }
  return out;
}
