import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express, { type Request, type Response } from 'express';
import {
  allowedRedirectOrigins,
  isAllowedLocation,
  redirectGuard,
  type RefusedRedirect,
} from './redirect-guard.js';

const PUBLIC_URL = 'https://app.example';
const DUO = 'https://api-123.duosecurity.com';

describe('isAllowedLocation', () => {
  const allowed = allowedRedirectOrigins(PUBLIC_URL, [DUO]);
  it.each([
    '/result',
    '/',
    'result',
    '?x=1',
    '/a//b',
    '/x/..//y', // resolves to https://app.example//y: the path is odd but the origin is ours
    'https://app.example/x',
    'HTTPS://APP.EXAMPLE:443/x',
    `${DUO}/oauth/v1/authorize?x=1`,
  ])('should allow %j', (loc) => {
    expect(isAllowedLocation(loc, PUBLIC_URL, allowed)).toBe(true);
  });
  it.each([
    '//evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    '/\t/evil.example',
    '\t//evil.example',
    'https://evil.example',
    'http://app.example/x', // another scheme is another origin
    'https://app.example:8443/',
    'https://app.example.evil.example/',
    'https://app.example@evil.example/',
    'https://api-123.duosecurity.com.evil.example/',
    'http://api-123.duosecurity.com/',
    'javascript:alert(1)',
    'data:text/html,x',
    'https://[::1',
    '',
    ['/a', '/b'],
    42,
  ])('should refuse %j', (loc) => {
    expect(isAllowedLocation(loc, PUBLIC_URL, allowed)).toBe(false);
  });
  it('should refuse to be configured with an opaque origin', () => {
    expect(() => allowedRedirectOrigins(PUBLIC_URL, ['javascript:x'])).toThrow();
  });
});

describe('redirectGuard on a real Express server', () => {
  let server: Server;
  let base: string;
  const refused: RefusedRedirect[] = [];

  beforeAll(async () => {
    const app = express();
    app.use(
      redirectGuard({
        publicUrl: PUBLIC_URL,
        allowedOrigins: [DUO],
        onRefused: (info) => refused.push(info),
      }),
    );
    const to = (req: Request) => (typeof req.query.to === 'string' ? req.query.to : '');
    app.get('/redirect', (req: Request, res: Response) => {
      res.cookie('kept', '1');
      res.redirect(303, to(req));
    });
    app.get('/location', (req: Request, res: Response) => {
      res.location(to(req)).status(302).end();
    });
    app.get('/location-send', (req: Request, res: Response) => {
      res
        .location(to(req))
        .status(301)
        .send(`moved to ${to(req)}`);
    });
    app.get('/raw', (req: Request, res: Response) => {
      res.setHeader('Location', to(req));
      res.writeHead(302);
      res.end(`go to ${to(req)}`);
    });
    app.get('/raw-object', (req: Request, res: Response) => {
      res.writeHead(307, { Location: to(req), 'X-Kept': 'yes' });
      res.write(`go to ${to(req)}`);
      res.end();
    });
    app.get('/raw-array', (req: Request, res: Response) => {
      res.writeHead(308, 'Moved', ['location', to(req), 'x-kept', 'yes']);
      res.end();
    });
    app.get('/flush', (req: Request, res: Response) => {
      res.statusCode = 302;
      res.setHeader('location', to(req));
      res.flushHeaders();
      res.end(`go to ${to(req)}`);
    });
    app.get('/created', (req: Request, res: Response) => {
      res.status(201).location(to(req)).json({ ok: true });
    });
    await new Promise<void>((resolve) => {
      server = app.listen(0, '127.0.0.1', () => resolve());
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const get = (path: string, to: string, method = 'GET') =>
    fetch(`${base}${path}?to=${encodeURIComponent(to)}`, { redirect: 'manual', method });

  const ROUTES = [
    '/redirect',
    '/location',
    '/location-send',
    '/raw',
    '/raw-object',
    '/raw-array',
    '/flush',
  ];

  it.each(ROUTES)(
    '%s should refuse an off-site Location with a 400 page that does not repeat it',
    async (path) => {
      refused.length = 0;
      const res = await get(path, '//evil.example/x');
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      const body = await res.text();
      expect(body).toContain('Redirect refused');
      expect(body).not.toContain('evil');
      expect(refused).toEqual([{ status: expect.any(Number), method: 'GET', path }]);
      expect(JSON.stringify(refused)).not.toContain('evil');
    },
  );

  it.each(ROUTES)('%s should let a same-origin or Duo Location through unchanged', async (path) => {
    for (const to of ['/result?x=1', `${DUO}/oauth/v1/authorize?request=abc`]) {
      const res = await get(path, to);
      expect(res.status).toBeGreaterThanOrEqual(300);
      expect(res.status).toBeLessThan(400);
      expect(res.headers.get('location')).toBe(to);
      await res.arrayBuffer();
    }
  });

  it.each([
    '/\\evil.example',
    'https://evil.example/',
    `${DUO}.evil.example/`,
    'javascript:alert(1)',
  ])('should refuse %j through res.redirect', async (to) => {
    const res = await get('/redirect', to);
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    await res.arrayBuffer();
  });

  it('should keep the other headers of a refused redirect (cookies, custom headers)', async () => {
    const viaRedirect = await get('/redirect', '//evil.example');
    expect(viaRedirect.headers.getSetCookie().some((c) => c.startsWith('kept=1'))).toBe(true);
    await viaRedirect.arrayBuffer();
    const viaObject = await get('/raw-object', '//evil.example');
    expect(viaObject.headers.get('x-kept')).toBe('yes');
    await viaObject.arrayBuffer();
  });

  it('should refuse on HEAD too', async () => {
    const res = await get('/redirect', '//evil.example', 'HEAD');
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });

  it('should leave a Location on a non-3xx answer alone', async () => {
    const res = await get('/created', '//elsewhere.example/x');
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ ok: true });
  });
});

describe('redirectGuard: the refusal page in the pages languages', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    const app = express();
    app.use(redirectGuard({ publicUrl: PUBLIC_URL, languages: { locales: ['en', 'de', 'ar'] } }));
    app.get('/redirect', (_req: Request, res: Response) => {
      res.redirect(302, 'https://evil.example/');
    });
    await new Promise<void>((resolve) => {
      server = app.listen(0, '127.0.0.1', () => resolve());
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it.each([
    ['de-DE,de;q=0.9', 'de', '<html lang="de">', 'Weiterleitung abgelehnt'],
    ['en-US', 'en', '<html lang="en">', 'Redirect refused'],
    // Arabic has no refusal texts: English, laid out right to left as the other pages.
    ['ar', 'ar', '<html lang="ar" dir="rtl">', 'Redirect refused'],
    ['fr', 'en', '<html lang="en">', 'Redirect refused'],
  ])('Accept-Language %s: a %s page', async (header, lang, htmlTag, title) => {
    const res = await fetch(`${base}/redirect`, {
      redirect: 'manual',
      headers: { 'accept-language': header },
    });
    const body = await res.text();
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-language')).toBe(lang);
    expect(res.headers.get('vary')).toMatch(/Accept-Language/);
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(body));
    expect(body).toContain(htmlTag);
    expect(body).toContain(`<h1>${title}</h1>`);
    expect(body).not.toContain('evil');
  });
});
