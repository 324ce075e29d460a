import type { ServerResponse } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { FakeDuoHttp, json } from '../../../test/fakes/fake-duo-http.js';
import { postForm, type DuoHttpOptions } from './duo-http-call.js';
import { DuoError } from './duo.errors.js';
import { DuoTransport, parseProxyUrl, type ParsedProxyUrl } from './duo-transport.js';

// Both paths of one call: undici's request (the default) and a caller's fetch (the tests' seam).
// Each must keep the total timeout (before and during the body), the size cap (declared and
// streamed) and the answer's text and headers exactly.

const duo = new FakeDuoHttp();
const CAP = 1_000;
const PATH = '/oauth/v1/health_check';

beforeAll(() => duo.start());
afterAll(() => duo.stop());
beforeEach(() => {
  duo.requests.length = 0;
});

type PathName = 'request' | 'fetch';

function options(path: PathName, timeoutMs = 1_000, fetchImpl?: typeof fetch): DuoHttpOptions {
  const injected = fetchImpl ?? (path === 'fetch' ? globalThis.fetch.bind(globalThis) : undefined);
  return {
    transport: new DuoTransport(undefined, {
      apiOrigin: duo.apiHost,
      timeoutMs,
      ...(injected ? { fetch: injected } : {}),
    }),
    timeoutMs,
    maxResponseBytes: CAP,
  };
}

function call(path: PathName, timeoutMs?: number): ReturnType<typeof postForm> {
  return postForm(
    options(path, timeoutMs),
    duo.apiHost + PATH,
    { a: '1', b: 'é &' },
    'health_response',
  );
}

async function failure(promise: Promise<unknown>): Promise<DuoError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DuoError);
  return err as DuoError;
}

/** Writes `parts` one after another with a pause, chunked (no Content-Length). */
function streamed(res: ServerResponse, parts: Buffer[], pauseMs = 5): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  let i = 0;
  const next = (): void => {
    if (i === parts.length) {
      res.end();
      return;
    }
    res.write(parts[i++]);
    setTimeout(next, pauseMs);
  };
  next();
}

describe.each<PathName>(['request', 'fetch'])('postForm via %s', (path) => {
  it('should send the form with its headers and return status, headers and text', async () => {
    duo.handler = (_req, res) => {
      res.setHeader('x-multi', ['a', 'b']);
      res.setHeader('set-cookie', 'k=v');
      json(res, 200, { stat: 'OK', text: 'ünï' });
    };
    const res = await call(path);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ stat: 'OK', text: 'ünï' });
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['x-multi']).toBe('a, b');
    expect(res.headers).not.toHaveProperty('set-cookie');
    const [req] = duo.requests;
    expect(req.method).toBe('POST');
    expect(req.path).toBe(PATH);
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req.headers.accept).toBe('application/json');
    expect(req.headers['user-agent']).toMatch(/^duo-nest\//);
    expect(Object.fromEntries(req.form)).toEqual({ a: '1', b: 'é &' });
  });

  it('should return a redirect as it is, never following it', async () => {
    duo.handler = (_req, res) => {
      res.writeHead(302, { location: '/elsewhere' });
      res.end();
    };
    const res = await call(path);
    expect(res.status).toBe(302);
    expect(res.body).toBe('');
    expect(duo.requests).toHaveLength(1);
  });

  it('should accept a streamed body of exactly the cap, decoding characters split across chunks', async () => {
    const text = 'é'.repeat(CAP / 2);
    const bytes = Buffer.from(text, 'utf8');
    duo.handler = (_req, res) => streamed(res, [bytes.subarray(0, 301), bytes.subarray(301)]);
    expect((await call(path)).body).toBe(text);
  });

  it('should refuse a body whose Content-Length is over the cap before reading it', async () => {
    // The body never comes: only the declared length can refuse it (the timeout is far off).
    duo.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': CAP + 1 });
      res.flushHeaders();
    };
    const err = await failure(call(path, 10_000));
    expect(err.code).toBe('health_response');
    expect(err.message).toContain(`larger than ${CAP} bytes`);
  });

  it('should give up a streamed body as soon as it passes the cap', async () => {
    let written = 0;
    let closed = false;
    duo.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.on('close', () => (closed = true));
      // Without the cap, this never ends (and the timeout is far off).
      const timer = setInterval(() => {
        if (res.destroyed || closed) {
          clearInterval(timer);
          return;
        }
        res.write('x'.repeat(400));
        written += 400;
      }, 5);
    };
    const err = await failure(call(path, 10_000));
    expect(err.code).toBe('health_response');
    expect(written).toBeLessThan(CAP + 2_000);
  });

  it('should time out when no answer comes', async () => {
    duo.handler = () => undefined;
    const started = Date.now();
    const err = await failure(call(path, 150));
    expect(err.code).toBe('unavailable');
    expect(err.message).toContain('did not answer within 150 ms');
    expect((err.cause as Error).name).toBe('TimeoutError');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('should time out when the body stalls after the headers', async () => {
    duo.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"stat":');
    };
    const err = await failure(call(path, 150));
    expect(err.code).toBe('unavailable');
    expect(err.message).toContain('did not answer within 150 ms');
  });

  it('should not abort a call that ended before its timeout', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      duo.handler = (_req, res) => json(res, 200, { stat: 'OK' });
      const res = await call(path, 100);
      expect(jest.getTimerCount()).toBe(0);
      expect(res.status).toBe(200);
    } finally {
      jest.useRealTimers();
    }
  });

  it('should report a refused connection as unavailable, not as a timeout', async () => {
    const err = await failure(
      postForm(options(path), 'http://127.0.0.1:1/oauth/v1/health_check', {}, 'health_response'),
    );
    expect(err.code).toBe('unavailable');
    expect(err.message).toContain('could not be reached');
  });
});

describe('postForm paths', () => {
  it('should go through a fetch the caller injects, and only then', async () => {
    duo.handler = (_req, res) => json(res, 200, { stat: 'OK' });
    const injected = jest.fn<typeof fetch>((url, init) => globalThis.fetch(url, init));
    await postForm(options('fetch', 1_000, injected), duo.apiHost + PATH, {}, 'health_response');
    expect(injected).toHaveBeenCalledTimes(1);
    const spy = jest.spyOn(globalThis, 'fetch');
    try {
      await postForm(options('request'), duo.apiHost + PATH, {}, 'health_response');
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});

describe.each<PathName>(['request', 'fetch'])('postForm via %s through a proxy', (path) => {
  const sockets: Socket[] = [];
  // Accepts the connection and never answers CONNECT: the call waits for a tunnel that never comes.
  const silent = createServer((socket) => sockets.push(socket));
  beforeAll(() => new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve)));
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((resolve) => silent.close(resolve));
  });

  it('should time out while the proxy does not answer CONNECT', async () => {
    const origin = 'https://api-12345678.duosecurity.com';
    const { port } = silent.address() as AddressInfo;
    const transport = new DuoTransport(
      parseProxyUrl(`http://127.0.0.1:${port}`) as ParsedProxyUrl,
      {
        apiOrigin: origin,
        timeoutMs: 150,
        ...(path === 'fetch' ? { fetch: undiciFetch as unknown as typeof fetch } : {}),
      },
    );
    try {
      const started = Date.now();
      const err = await failure(
        postForm(
          { transport, timeoutMs: 150, maxResponseBytes: CAP },
          origin + PATH,
          {},
          'health_response',
        ),
      );
      expect(err.code).toBe('unavailable');
      expect(err.message).toContain('did not answer within 150 ms');
      expect(err.message).toContain(`through the proxy http://127.0.0.1:${port}`);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await transport.close(100);
    }
  });
});
