// The peer a user would otherwise write: a minimal Express app on Duo's official Node SDK
// (@duosecurity/duo_universal 3.0.0) with express-session, shaped like Duo's own example
// (duo_universal_nodejs, example/src/index.js): a login form; POST / → healthCheck() →
// generateState() → { state, username } in req.session → 302 to createAuthUrl(username, state);
// GET /redirect → the state checked against the session, the session destroyed,
// exchangeAuthorizationCodeFor2FAResult(duo_code, username) → the decoded token rendered.
// The example's defaults are kept: MemoryStore, saveUninitialized, the SDK's own axios instance and
// its https.Agent (no keep-alive: two fresh TLS connections per sign-on, health check + token).
//
// Two differences from the example, neither making it faster in a way that matters:
// - Trust: the SDK pins Duo's CA bundle (`new https.Agent({ ca: DUO_PINNED_CERT })`), which
//   NODE_EXTRA_CA_CERTS cannot extend (an explicit `ca` replaces the default store). The agent is
//   replaced by one of the same shape whose `ca` is that same bundle plus the bench's throw-away
//   certificate (the file NODE_EXTRA_CA_CERTS names), so each connection still parses the whole
//   pinned bundle as it would against the real Duo.
// - Pages: the example renders nunjucks templates (autoescape); here two template literals with
//   the same escaping render the same content, which costs less than nunjucks, not more.
//
// Config from env: PORT, DUO_CLIENT_ID, DUO_CLIENT_SECRET, DUO_API_HOST (host[:port]),
// DUO_REDIRECT_URL, PEER_CA (see below). Speaks bench/app-server.mjs's IPC: { ready } once listening; profile-start /
// profile-stop (a CPU profile into BENCH_PROFILE_DIR); other commands are acknowledged.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import express from 'express';
import session from 'express-session';
import { Client, constants } from '@duosecurity/duo_universal';
import { answerBenchIpc } from '../app-ipc.mjs';

const config = {
  port: Number(process.env.PORT ?? 3000),
  clientId: process.env.DUO_CLIENT_ID ?? '',
  clientSecret: process.env.DUO_CLIENT_SECRET ?? '',
  apiHost: process.env.DUO_API_HOST ?? '',
  redirectUrl: process.env.DUO_REDIRECT_URL ?? `http://127.0.0.1:${process.env.PORT}/redirect`,
};

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);

const head = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta http-equiv="X-UA-Compatible" content="IE=edge">
    <meta name="viewport" content="width=device-width,initial-scale=1.0">
    <link rel="stylesheet" href="/style.css">
    <title>Duo Security Universal prompt demo</title>
  </head>`;

/** The login form with a message above it (the example's index.html). */
function indexPage(message) {
  return `${head}
  <body>
    <div class="content">
      <div class="output">
        <pre><code id="message">${escapeHtml(message)}</code></pre>
      </div>
      <form class="input-form" action="/" method="POST">
        <label for="username"><b>Name:</b></label>
        <input name="username" type="text" placeholder="username" id="username">
        <label for="password"><b>Password:</b></label>
        <input name="password" type="password" placeholder="password" id="password">
        <button type="submit">Submit</button>
      </form>
    </div>
  </body>
</html>`;
}

/** The decoded token, pretty-printed (the example's success.html). */
function successPage(message) {
  return `${head}
  <body>
    <div class="content">
      <div class="auth-resp"><h3><b>Auth Response:</b></h3></div>
      <div class="success">
        <pre class="auth-token"><code class="auth-token" id="message">${escapeHtml(message)}</code></pre>
      </div>
    </div>
  </body>
</html>`;
}

const app = express();
app.use(express.json());
app.use(express.urlencoded({ extended: false }));
app.use(session({ secret: 'super-secret-phrase', resave: false, saveUninitialized: true }));
// As in the example; the folder holds nothing the bench asks for, so every GET costs one stat
// (ENOENT) here, as /redirect does in the example, whose public/ has no file of that name.
app.use(express.static(new URL('./public', import.meta.url).pathname, { index: false }));

const duoClient = new Client(config);
if (process.env.NODE_EXTRA_CA_CERTS) {
  const extra = readFileSync(process.env.NODE_EXTRA_CA_CERTS, 'utf8');
  // PEER_CA=own: the bench certificate alone, as test/simulator-sdk.e2e-spec.ts does; cheaper per
  // connection than what the SDK does against the real Duo (tls.createSecureContext parses `ca`
  // for every new connection, and the pinned bundle holds 15 certificates).
  duoClient.axios.defaults.httpsAgent = new Agent({
    ca: process.env.PEER_CA === 'own' ? extra : [constants.DUO_PINNED_CERT, extra],
  });
}

app.get('/', (req, res) => {
  res.send(indexPage('This is a demo'));
});

app.post('/', async (req, res) => {
  const { username, password } = req.body;
  if (!username || !password) {
    res.send(indexPage('Missing username or password'));
    return;
  }
  try {
    await duoClient.healthCheck();
    const state = duoClient.generateState();
    req.session.duo = { state, username };
    const url = await duoClient.createAuthUrl(username, state);
    res.redirect(302, url);
  } catch (err) {
    console.error(err);
    res.send(indexPage(err.message));
  }
});

app.get('/redirect', async (req, res) => {
  const { duo_code: code, state } = req.query;
  if (!code || typeof code !== 'string') {
    res.send(indexPage(`Missing 'duo_code' query parameters`));
    return;
  }
  if (!state || typeof state !== 'string') {
    res.send(indexPage(`Missing 'state' query parameters`));
    return;
  }
  const savedState = req.session.duo?.state;
  const savedUsername = req.session.duo?.username;
  req.session.destroy();
  if (
    !savedState ||
    typeof savedState !== 'string' ||
    !savedUsername ||
    typeof savedUsername !== 'string'
  ) {
    res.send(indexPage('Missing user session information'));
    return;
  }
  if (state !== savedState) {
    res.send(indexPage('Duo state does not match saved state'));
    return;
  }
  try {
    const token = await duoClient.exchangeAuthorizationCodeFor2FAResult(code, savedUsername);
    res.send(successPage(JSON.stringify(token, null, '\t')));
  } catch (err) {
    console.error(err);
    res.send(indexPage('Error decoding Duo result. Confirm device clock is correct.'));
  }
});

await new Promise((resolve) => app.listen(config.port, '127.0.0.1', resolve));

answerBenchIpc('peer');
