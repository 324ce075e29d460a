// An attacker's probe of the running reference app, from outside: its own cookie jar, raw HTTP, the
// Redis store edited by hand, and the audit trail read back from the SQLite file. It is not a test
// (tests live in test/): it prints one line per probe and a summary, and exits 1 on any finding.
//
//   npm run build && node scripts/probe.mjs            (needs Redis at 127.0.0.1:6379)
//
// It starts the simulator (auto allow) and the app (dist/) on free ports with a fresh Redis prefix,
// TRUST_PROXY=1 and low per-IP limits, and stops both at the end.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';

// The app's build and the simulator package's build, of this checkout (or another: PROBE_ROOT).
const ROOT = process.env.PROBE_ROOT ?? '.';
const findings = [];
const results = [];

function record(name, ok, detail = '') {
  results.push({ name, ok });
  if (!ok) {
    findings.push(`${name}: ${detail}`);
  }
  console.log(`${ok ? 'ok     ' : 'FINDING'} ${name}${detail ? ` (${detail})` : ''}`);
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer().once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function waitForPort(port) {
  for (let i = 0; i < 200; i++) {
    const open = await new Promise((r) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      }).once('error', () => r(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** fetch with its own cookie jar; never follows redirects. */
class Jar {
  cookies = new Map();
  async fetch(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size && !headers.has('cookie')) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    if (!headers.has('accept')) headers.set('accept', 'text/html');
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || attrs.some((a) => /max-age=0\b/i.test(a.trim()))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }
  async hidden(appUrl) {
    const html = await (await this.fetch(`${appUrl}/`)).text();
    const out = {};
    for (const input of html.match(/<input[^>]*type="hidden"[^>]*>/g) ?? []) {
      const name = /name="([^"]+)"/.exec(input)?.[1];
      const value = /value="([^"]*)"/.exec(input)?.[1];
      if (name && value !== undefined && name !== 'returnTo') out[name] = value;
    }
    return out;
  }
  /** POST /login with a raw urlencoded body (so malformed escapes reach the server as sent). */
  async postLogin(appUrl, rawBody, headers = {}) {
    const hidden = await this.hidden(appUrl);
    const csrf = Object.entries(hidden)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join('&');
    return this.fetch(`${appUrl}/login`, {
      method: 'POST',
      body: `${csrf}&${rawBody}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    });
  }
}

async function main() {
  const simPort = await freePort();
  const appPort = await freePort();
  const clientId = 'DI' + randomBytes(9).toString('hex').toUpperCase().slice(0, 18);
  const clientSecret = randomBytes(40).toString('hex').slice(0, 40);
  const prefix = `probe${randomBytes(4).toString('hex')}:`;
  const dataDir = mkdtempSync(join(tmpdir(), 'duo-probe-'));
  const appUrl = `http://127.0.0.1:${appPort}`;
  const sim = spawn(
    process.execPath,
    [`${ROOT}/packages/simulator/dist/main.js`, '--port', String(simPort), '--client-id', clientId,
      '--client-secret', clientSecret, '--auto', 'allow'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const appLog = [];
  const app = spawn(process.execPath, [`${ROOT}/dist/src/main.js`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'development',
      PORT: String(appPort),
      PUBLIC_URL: appUrl,
      DUO_CLIENT_ID: clientId,
      DUO_CLIENT_SECRET: clientSecret,
      DUO_API_HOST: `http://127.0.0.1:${simPort}`,
      DUO_REDIRECT_URI: `${appUrl}/auth/duo/callback`,
      SESSION_SECRET: randomBytes(32).toString('base64url'),
      AUDIT_CHAIN_KEY: randomBytes(32).toString('base64url'),
      AUDIT_SPOOL_DIR: join(dataDir, 'spool'),
      DATABASE_URL: `sqlite:${join(dataDir, 'audit.sqlite')}`,
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: prefix,
      TRUST_PROXY: '1',
      RATE_LIMIT_LOGIN_PER_IP: '8',
      RATE_LIMIT_LOGIN_PER_USER: '1000',
      RATE_LIMIT_CALLBACK_PER_IP: '1000',
      AUDIT_ADMIN_USERS: 'alice',
      LOG_LEVEL: 'info',
    },
  });
  app.stdout.on('data', (d) => appLog.push(String(d)));
  app.stderr.on('data', (d) => appLog.push(String(d)));
  const redis = new Redis('redis://127.0.0.1:6379');
  let ipCounter = 1;
  // Every probe comes from its own forwarded address, so the low per-IP cap only bites where meant.
  const fresh = () => ({ 'x-forwarded-for': `198.51.100.${ipCounter++ % 250}` });
  try {
    await waitForPort(simPort);
    await waitForPort(appPort);
    const db = () => new Database(join(dataDir, 'audit.sqlite'), { readonly: true });
    const auditCount = () => {
      const d = db();
      try {
        return d.prepare('SELECT count(*) AS n FROM audit_events').get().n;
      } finally {
        d.close();
      }
    };
    const statuses = [];
    const seen = (res) => (statuses.push(res.status), res);

    /** A whole sign-on through the simulator; returns the callback's answer. */
    async function signOn(jar, username, extra = '', headers = fresh()) {
      const start = seen(await jar.postLogin(appUrl, `username=${encodeURIComponent(username)}${extra}`, headers));
      if (start.status !== 303) return start;
      const duo = await jar.fetch(start.headers.get('location'));
      if (duo.status !== 302) return duo;
      return seen(await jar.fetch(duo.headers.get('location'), { headers }));
    }

    // 1. Return paths of every class: the final Location must stay on this origin.
    const returnPaths = [
      '/./', '/.//evil.example', '/x/..//evil.example', '/%2e%2e//evil.example', '/%252e%252e//evil.example',
      '/\\evil.example', '/\t/evil.example', '/\n/evil.example', '/\u2215\u2215evil.example',
      '/\uff0f\uff0fevil.example', '/@evil.example', '/:@evil.example', '/x:/\\evil', 'https://evil.example',
      '//evil.example', '/%5cevil.example', '/..%2f..%2f/evil.example', '/\u3002/evil', '/%E3%80%82//evil',
      '/result?next=//evil', '/ xn--e1afmkfd.xn--p1ai', '/%0d%0aLocation:%20//evil',
    ];
    for (const rt of returnPaths) {
      const jar = new Jar();
      const res = await signOn(jar, 'alice', `&returnTo=${encodeURIComponent(rt)}`);
      const loc = res.headers.get('location');
      const sameOrigin = loc === null || new URL(loc, appUrl).origin === new URL(appUrl).origin;
      record(`returnTo ${JSON.stringify(rt)} stays on-site`, sameOrigin && res.status < 500, `${res.status} ${loc}`);
    }

    // 2. Raw login input: malformed escapes and invalid UTF-8 never become a username.
    for (const raw of ['%ZZ', '%C0%AF', '%ED%A0%80', '%F4%90%80%80', '%E2%82', '%80', '%', 'a%2', '%FF%FE']) {
      const jar = new Jar();
      const before = auditCount();
      const res = seen(await jar.postLogin(appUrl, `username=${raw}`, fresh()));
      record(`username=${raw} refused and audited`, res.status === 400 && auditCount() > before, `${res.status}`);
    }

    // 3. Usernames that display as something else.
    for (const name of ['alice\u202egnp.exe', 'ali\u200bce', '\u2066alice', 'alice\u2028', '   ', ' alice', 'alice\ufeff',
      'a\u0301\u0301\u0301\u0301\u0301\u0301', '\u3164', 'alice\u{E0061}', 'alice\u00ad']) {
      const jar = new Jar();
      const before = auditCount();
      const res = seen(await jar.postLogin(appUrl, `username=${encodeURIComponent(name)}`, fresh()));
      record(`username ${JSON.stringify(name)} refused and audited`, res.status === 400 && auditCount() > before, `${res.status}`);
    }

    // 4. Body and content-type tricks.
    const tricks = [
      ['username twice', 'username=bob&username=alice'],
      ['nested key', 'username[a]=alice'],
      ['array key', 'username[]=alice'],
      ['__proto__ key', '__proto__[x]=1&username=alice'],
    ];
    for (const [what, body] of tricks) {
      const res = seen(await new Jar().postLogin(appUrl, body, fresh()));
      record(`${what} refused`, res.status === 400, `${res.status}`);
    }
    {
      const jar = new Jar();
      const hidden = await jar.hidden(appUrl);
      const res = seen(await jar.fetch(`${appUrl}/login`, {
        method: 'POST',
        body: JSON.stringify({ ...hidden, username: { toString: 'alice' } }),
        headers: { 'content-type': 'application/json', ...fresh() },
      }));
      record('JSON object as username refused', res.status === 400 || res.status === 403, `${res.status}`);
      const res2 = seen(await jar.fetch(`${appUrl}/login`, {
        method: 'POST',
        body: `_csrf=${hidden._csrf}&username=alice`,
        headers: { 'content-type': 'text/plain', ...fresh() },
      }));
      record('text/plain form refused', res2.status >= 400 && res2.status < 500, `${res2.status}`);
    }

    // 5. Host and forwarded-host headers never steer a redirect.
    {
      const jar = new Jar();
      const res = await signOn(jar, 'alice', '', { ...fresh(), 'x-forwarded-host': 'evil.example' });
      const loc = res.headers.get('location') ?? '';
      record('X-Forwarded-Host ignored', !loc.includes('evil'), `${res.status} ${loc}`);
    }

    // 6. A session for bob; then path, method and case tricks on /admin.
    const bob = new Jar();
    const bobRes = await signOn(bob, 'bob');
    record('bob signs on', bobRes.status === 303, `${bobRes.status}`);
    for (const path of ['/admin', '/ADMIN', '/admin/', '/%61dmin', '//admin', '/./admin', '/admin;x', '/admin%00',
      '/admin%2f', '/admin?x=%ZZ', '/admin#x', '/Admin']) {
      const res = seen(await bob.fetch(`${appUrl}${path}`, { headers: { accept: 'application/json' } }));
      record(`bob GET ${path} is not admin`, res.status !== 200 && res.status < 500, `${res.status}`);
    }
    for (const method of ['HEAD', 'OPTIONS', 'PATCH', 'PROPFIND']) {
      const res = seen(await bob.fetch(`${appUrl}/admin`, { method, headers: { accept: 'application/json' } }));
      record(`bob ${method} /admin is not admin`, res.status !== 200 && res.status < 500, `${res.status}`);
    }
    {
      const res = seen(await bob.fetch(`${appUrl}/admin`, { headers: { accept: 'application/json', 'x-http-method-override': 'GET' } }));
      record('method override header changes nothing', res.status === 403, `${res.status}`);
    }

    // 6b. The audit trail is for its admins only; its page never reflects markup; exports are
    // formula-guarded; the operations routes say nothing secret.
    for (const path of ['/audit', '/audit/events', '/audit/export?format=csv', '/audit/stats']) {
      const res = seen(await bob.fetch(`${appUrl}${path}`, { headers: { accept: 'application/json' } }));
      record(`bob GET ${path} refused`, res.status === 403, `${res.status}`);
    }
    const alice = new Jar();
    record('alice signs on', (await signOn(alice, 'alice')).status === 303, '');
    {
      const xss = '<script>alert(1)</script>';
      const res = seen(await alice.fetch(`${appUrl}/audit?actor=${encodeURIComponent(xss)}`));
      const html = await res.text();
      record('audit page does not reflect markup', !html.includes(xss), `${res.status}`);
      const csv = seen(await alice.fetch(`${appUrl}/audit/export?format=csv`));
      const text = await csv.text();
      record('audit CSV has no cell starting with = + - @', !/(^|,)"?[=+\-@]/m.test(text.split('\n').slice(1).join('\n')), `${csv.status}`);
      const id = seen(await alice.fetch(`${appUrl}/audit/events/..%2f..%2fetc%2fpasswd`, { headers: { accept: 'application/json' } }));
      record('audit event id traversal refused', id.status === 400 || id.status === 404, `${id.status}`);
    }
    for (const path of ['/health', '/metrics']) {
      const res = seen(await new Jar().fetch(`${appUrl}${path}`));
      const body = await res.text();
      record(`${path} leaks no secret or Redis URL`, !body.includes(clientSecret) && !body.includes('redis://'), `${res.status}`);
    }

    // 7. The store edited by hand: bob's Redis session becomes alice with the admins group.
    {
      const keys = await redis.keys(`${prefix}sess:*`);
      let edited = 0;
      for (const key of keys) {
        const type = await redis.type(key);
        if (type === 'hash') {
          const fields = await redis.hgetall(key);
          for (const [f, v] of Object.entries(fields)) {
            if (v.includes('"bob"')) {
              await redis.hset(key, f, v.replaceAll('"bob"', '"alice"').replaceAll('"staff"', '"admins"'));
              edited++;
            }
          }
        } else if (type === 'string') {
          const v = await redis.get(key);
          if (v?.includes('"bob"')) {
            await redis.set(key, v.replaceAll('"bob"', '"alice"'), 'KEEPTTL');
            edited++;
          }
        }
      }
      const before = auditCount();
      const res = seen(await bob.fetch(`${appUrl}/admin`, { headers: { accept: 'application/json' } }));
      record('edited Redis session gives no admin', edited > 0 && res.status !== 200, `edited ${edited}, ${res.status}`);
      record('edited Redis session is audited', auditCount() > before, '');
    }

    // 8. A pending login edited by hand: returnTo and expiry.
    {
      const jar = new Jar();
      const start = seen(await jar.postLogin(appUrl, 'username=alice', fresh()));
      const duo = await jar.fetch(start.headers.get('location'));
      const keys = await redis.keys(`${prefix}pending:*`);
      for (const key of keys) {
        const v = await redis.get(key).catch(() => null);
        if (v && v.includes('returnTo')) {
          const rec = JSON.parse(v);
          rec.returnTo = '/admin';
          rec.expiresAt = Date.now() + 10 * 86_400_000;
          await redis.set(key, JSON.stringify(rec), 'KEEPTTL');
        }
      }
      const res = seen(await jar.fetch(duo.headers.get('location'), { headers: fresh() }));
      record('edited pending login refused', res.status !== 303, `${res.status} ${res.headers.get('location')}`);
    }

    // 9. Cookie tricks: forged, duplicated and oversized session cookies, audited, never a 500.
    {
      const before = auditCount();
      for (const cookie of ['duo_session=abc.def', 'duo_session=a; duo_session=b', `duo_session=${'A'.repeat(5000)}.x`,
        'duo_session=%ZZ.%ZZ', 'duo_session="quoted".x']) {
        const res = seen(await new Jar().fetch(`${appUrl}/me`, { headers: { cookie, accept: 'application/json', ...fresh() } }));
        record(`cookie ${cookie.slice(0, 30)} refused`, res.status === 401 || res.status === 400, `${res.status}`);
      }
      record('forged cookies audited', auditCount() > before, '');
    }

    // 10. The callback: replay, extra and duplicate parameters, foreign state.
    {
      const jar = new Jar();
      const start = seen(await jar.postLogin(appUrl, 'username=alice', fresh()));
      const duo = await jar.fetch(start.headers.get('location'));
      const cb = duo.headers.get('location');
      const dup = seen(await jar.fetch(`${cb}&state=${new URL(cb).searchParams.get('state')}`, { headers: fresh() }));
      record('callback with state twice refused', dup.status === 400, `${dup.status}`);
      const ok = seen(await jar.fetch(cb, { headers: fresh() }));
      record('genuine callback still completes after a refused duplicate', ok.status === 303, `${ok.status}`);
      const replay = seen(await jar.fetch(cb, { headers: fresh() }));
      record('callback replay refused', replay.status === 400, `${replay.status}`);
      const other = new Jar();
      const stolen = seen(await other.fetch(cb, { headers: fresh() }));
      record('callback in another browser refused', stolen.status === 400, `${stolen.status}`);
    }

    // 11. Forwarded addresses: garbage falls back to the socket; an IPv6 /64 shares one counter.
    {
      const jar = new Jar();
      const res = seen(await jar.postLogin(appUrl, 'username=alice', { 'x-forwarded-for': 'x'.repeat(300) }));
      record('300-char X-Forwarded-For is no 5xx', res.status < 500, `${res.status}`);
      let limited = 0;
      for (let i = 0; i < 12; i++) {
        const r = seen(await new Jar().postLogin(appUrl, 'username=alice', { 'x-forwarded-for': `2001:db8:aa:bb::${(i + 1).toString(16)}` }));
        if (r.status === 429) limited++;
      }
      record('IPv6 /64 rotation hits the per-IP cap', limited > 0, `${limited} of 12 limited`);
    }

    // 12. Oversized and odd requests never give a 5xx.
    {
      const long = seen(await new Jar().fetch(`${appUrl}/?returnTo=${'a'.repeat(20000)}`));
      record('20 kB query is no 5xx', long.status < 500, `${long.status}`);
      const big = seen(await new Jar().postLogin(appUrl, `username=${'a'.repeat(40000)}`, fresh()));
      record('40 kB body is no 5xx', big.status < 500, `${big.status}`);
      const many = seen(await new Jar().postLogin(appUrl, Array.from({ length: 200 }, (_, i) => `k${i}=v`).join('&'), fresh()));
      record('200 fields is no 5xx', many.status < 500, `${many.status}`);
      const charset = seen(await new Jar().fetch(`${appUrl}/login`, {
        method: 'POST', body: 'username=alice', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-16', ...fresh() },
      }));
      record('utf-16 charset refused', charset.status >= 400 && charset.status < 500, `${charset.status}`);
    }

    record('no response was a 5xx', statuses.every((s) => s < 500), statuses.filter((s) => s >= 500).join(','));
    const leaks = appLog.join('').match(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g) ?? [];
    record('no JWT in the app log', leaks.length === 0, `${leaks.length}`);
    record('client secret not in the app log', !appLog.join('').includes(clientSecret), '');
  } finally {
    app.kill('SIGTERM');
    sim.kill('SIGTERM');
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  }
  const passed = results.filter((r) => r.ok).length;
  console.log(`\n${passed} of ${results.length} probes held; ${findings.length} findings`);
  for (const f of findings) console.log(`  - ${f}`);
  process.exit(findings.length ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
