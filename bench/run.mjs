// `npm run bench`: builds (npm script), then runs every bench in turn, each in its own process, and
// writes bench/results.json with every figure and its ratio against the targets of the operate
// issue. Needs PostgreSQL and Redis on 127.0.0.1 (see bench/README.md).
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const started = Date.now();

/** [name, script, args, results file, time limit in s] */
const BENCHES = [
  ['client', 'client.mjs', [], 'results-client.json', 120],
  ['stores', 'pending-memory.mjs', [], 'results-stores.json', 180],
  ['simulator', 'simulator.mjs', [], 'results-simulator.json', 120],
  ['guarded', 'guarded.mjs', [], 'results-guarded.json', 300],
  ['peer', 'peer.mjs', [], 'results-peer.json', 300],
  ['signons', 'signons.mjs', [], 'results-signons.json', 480],
  ['audit', 'audit.mjs', [], 'results-audit.json', 240],
  ['limiter', 'limiter.mjs', [], 'results-limiter.json', 240],
  ['reconcile', 'reconcile.mjs', [], 'results-reconcile.json', 240],
  ['sharedWork', 'shared-work.mjs', [], 'results-shared-work.json', 420],
];

// `node bench/run.mjs guarded peer` runs only the named benches and takes every other figure from
// its last results file (marked `reused` with the file's time in `runs`), e.g. to measure one part
// again after a change without the whole 20 minutes.
const only = new Set(process.argv.slice(2));
const runs = {};
const figures = {};
for (const [name, script, args, file, limit] of BENCHES) {
  if (only.size > 0 && !only.has(name)) {
    try {
      figures[name] = JSON.parse(readFileSync(here(file), 'utf8'));
      runs[name] = { ok: true, reused: statSync(here(file)).mtime.toISOString() };
    } catch {
      runs[name] = { ok: false, reused: 'no results file' };
    }
    continue;
  }
  const t0 = Date.now();
  console.log(`\n=== ${name} (bench/${script}) ===`);
  const r = spawnSync(process.execPath, [here(script), ...args], {
    stdio: 'inherit',
    timeout: limit * 1000,
    killSignal: 'SIGKILL',
  });
  const seconds = Math.round((Date.now() - t0) / 100) / 10;
  const ok = r.status === 0;
  runs[name] = { ok, seconds, ...(ok ? {} : { exit: r.status, signal: r.signal }) };
  if (ok) {
    figures[name] = JSON.parse(readFileSync(here(file), 'utf8'));
  } else {
    console.error(
      `!! ${name} failed (exit ${r.status}, signal ${r.signal}); its figures are missing`,
    );
  }
}

const get = (path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), figures);
const round2 = (x) => Math.round(x * 100) / 100;
const ratio = (a, b) =>
  typeof a === 'number' && typeof b === 'number' && b !== 0 ? Number((a / b).toFixed(3)) : null;

const COMPARE = {
  '>=': (v, b) => v >= b,
  '<=': (v, b) => v <= b,
  '<': (v, b) => v < b,
  '==': (v, b) => v === b,
};
/** Each target: the measured value, the bound and whether it is met (null: not measured). */
function target(name, value, op, bound, unit, note) {
  const measured = typeof value === 'number' || typeof value === 'boolean';
  const met = measured ? COMPARE[op](value, bound) : null;
  return {
    name,
    value: value ?? null,
    target: `${op} ${bound}${unit}`,
    met,
    ...(note ? { note } : {}),
  };
}

const callbackOwn = [
  get('signons.sqlite.latency.callbackServerSide.ownMs.p99'),
  get('signons.postgres.latency.callbackServerSide.ownMs.p99'),
];
const scale2 = get('signons.scale')?.find((s) => s.instances === 2);
const scale3 = get('signons.scale')?.find((s) => s.instances === 3);
const paced = get('signons.scalePaced');
const paced2 = paced?.find((s) => s.instances === 2);
const perInstance = get('signons.scalePerInstance');
const perInstance2 = perInstance?.find((s) => s.instances === 2);
// The control: one instance alone, at the per-instance rate vs at the whole paced rate. Nothing is
// shared differently, only its load halves; what it loses per CPU-second is load, not shared state.
const oneAtLowerLoad = ratio(
  perInstance?.find((s) => s.instances === 1)?.signOnsPerAppCpuSecond,
  paced?.find((s) => s.instances === 1)?.signOnsPerAppCpuSecond,
);
const retries = get('sharedWork.retries') ?? [];
const retryNote = retries
  .filter((r) => r.instances > 1)
  .map(
    (r) =>
      `${r.instances} instances: ${r['lost tries / sign-on']} lost one-statement tries and ${round2(
        (r['lock-first after 2 lost / sign-on'] ?? 0) + (r['lock-first in backoff / sign-on'] ?? 0),
      )} lock-first appends per sign-on`,
  )
  .join('; ');
const targets = [
  // Issue ops-2, item 3.
  target(
    '(f) adopting duo-nest: guarded route / bare Nest app, app CPU per request, memory sessions',
    get('guarded.adoption.memory.guardedOverBare'),
    '<=',
    1.25,
    'x',
    `public route ${get('guarded.adoption.memory.publicOverBare') ?? '?'}x; the reference app (headers, access log, CSRF, metrics): guarded ${get('guarded.memory.cpuOverBare.guarded') ?? '?'}x`,
  ),
  target(
    '(f) the same with Redis sessions',
    get('guarded.adoption.redis.guardedOverBare'),
    '<=',
    1.4,
    'x',
    `the reference app: guarded ${get('guarded.redis.cpuOverBare.guarded') ?? '?'}x`,
  ),
  target(
    '(g) app CPU per full sign-on, ours / the official SDK with express-session (as shipped: its pinned CA bundle)',
    get('peer.ratio'),
    '<=',
    0.5,
    'x',
    `median of rounds ${get('peer.ratioMedianOfRounds') ?? '?'}x`,
  ),
  target(
    "(g) the same against the SDK trusting the simulator's certificate alone (cheaper than it is against Duo)",
    get('peer.ratioVsOwnCa'),
    '<=',
    0.5,
    'x',
    `median of rounds ${get('peer.ratioVsOwnCaMedianOfRounds') ?? '?'}x`,
  ),
  target(
    '(h) shared work per sign-on the same at 1, 2 and 3 instances (Redis commands, SQL statements, transactions, round trips; ±2%, chain-head retries apart)',
    get('sharedWork.sameWorkAtEveryN'),
    '==',
    true,
    '',
    retryNote || undefined,
  ),
  target(
    '(i) audit appends/s on PostgreSQL, 16 writers / 1 writer',
    get('audit.writers.ratio16over1'),
    '>=',
    3,
    'x',
    `appends/s at 1, 4, 16, 64 writers: ${['1', '4', '16', '64'].map((n) => get(`audit.writers.${n}.perSec`) ?? '?').join(', ')}`,
  ),
  // Earlier issues.
  target(
    'reconcile: Duo log entries per second (100,000 entries, SQLite)',
    get('reconcile.entriesPerSecond'),
    '>=',
    1667,
    '/s',
  ),
  target('authorize URL, ours / official SDK', get('client.authUrl.ratio'), '>=', 1.5, 'x'),
  target('id_token verification, ours / official SDK', get('client.verify.ratio'), '>=', 1.5, 'x'),
  target('guarded / public route, memory sessions', get('guarded.memory.ratio'), '>=', 0.85, 'x'),
  target('guarded / public route, Redis sessions', get('guarded.redis.ratio'), '>=', 0.6, 'x'),
  target('callback handling p99 without the simulator, SQLite', callbackOwn[0], '<', 25, ' ms'),
  target('callback handling p99 without the simulator, PostgreSQL', callbackOwn[1], '<', 25, ' ms'),
  target(
    'sign-ons per app CPU-second, 2 instances / 1, same load on each (shared-state cost)',
    perInstance2?.perCpuRatioVsOne,
    '>=',
    0.9,
    'x',
  ),
  target(
    'the same, same load in all (each of 2 instances at half load)',
    paced2?.perCpuRatioVsOne,
    '>=',
    0.9,
    'x',
    `one instance alone at that half load: ${oneAtLowerLoad ?? '?'}x its per-CPU figure (see bench/README.md)`,
  ),
  target(
    'the same, saturated (2 cores shared by every process)',
    scale2?.perCpuRatioVsOne,
    '>=',
    0.9,
    'x',
  ),
  target(
    '100,000 pending logins in memory',
    get('stores.heap.pendingLoginsMemory.mb'),
    '<',
    100,
    ' MB',
  ),
  target(
    'rate limiter cost per hit, 1,000,000 / 1,000 live keys (memory store at its cap)',
    get('limiter.flat.checkRatio'),
    '<',
    3,
    'x',
    `a bare Map of the same sizes: ${get('limiter.flat.bareMapRatio') ?? '?'}x (the runtime's floor; see bench/README.md)`,
  ),
  target(
    'memory limiter store / bare Map set+delete, at 1,000,000 keys',
    get('limiter.flat.storeOverBareMap.1000000'),
    '<',
    1.5,
    'x',
  ),
];

const results = {
  when: new Date().toISOString(),
  node: process.version,
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2))),
  },
  totalSeconds: Math.round((Date.now() - started) / 1000),
  runs,
  targets,
  summary: {
    client: { authUrlPerSec: get('client.authUrl'), verifyPerSec: get('client.verify') },
    guarded: { memory: get('guarded.memory'), redis: get('guarded.redis') },
    adoption: get('guarded.adoption') ?? null,
    peer: figures.peer
      ? {
          oursUsPerSignOn: get('peer.ours.appCpuUsPerSignOn'),
          theirsUsPerSignOn: get('peer.theirs.appCpuUsPerSignOn'),
          theirsOwnCaUsPerSignOn: get('peer.theirsOwnCa.appCpuUsPerSignOn'),
          ratio: get('peer.ratio'),
          ratioVsOwnCa: get('peer.ratioVsOwnCa'),
        }
      : null,
    sharedWork: figures.sharedWork
      ? {
          sameWorkAtEveryN: get('sharedWork.sameWorkAtEveryN'),
          differing: get('sharedWork.differing'),
          perSignOn: get('sharedWork.perSignOn'),
          retries,
        }
      : null,
    auditWriters: get('audit.writers') ?? null,
    signOns: {
      sqlite: get('signons.sqlite'),
      postgres: get('signons.postgres'),
      postgresOverSqlite: ratio(
        get('signons.postgres.throughput.perSecond'),
        get('signons.sqlite.throughput.perSecond'),
      ),
    },
    scale: {
      instances: get('signons.scale'),
      paced,
      perInstance,
      twoOverOnePerCpuSameLoadEach: perInstance2?.perCpuRatioVsOne ?? null,
      twoOverOnePerCpuPaced: paced2?.perCpuRatioVsOne ?? null,
      oneInstanceAtLowerLoadPerCpu: oneAtLowerLoad,
      twoOverOnePerCpu: scale2?.perCpuRatioVsOne ?? null,
      threeOverOnePerCpu: scale3?.perCpuRatioVsOne ?? null,
      twoOverOneThroughput: scale2?.throughputRatioVsOne ?? null,
      threeOverOneThroughput: scale3?.throughputRatioVsOne ?? null,
    },
    pendingLogins100k: get('stores.heap'),
    storesOpsPerSec: get('stores.opsPerSec'),
    simulator: figures.simulator
      ? {
          tokenExchangesPerSecond: get('simulator.tokenExchangesPerSecond'),
          workers: get('simulator.workers'),
        }
      : null,
    audit: figures.audit
      ? { query: get('audit.query'), append: get('audit.append'), targets: get('audit.targets') }
      : null,
    limiter: figures.limiter
      ? { memory: get('limiter.memory'), redis: get('limiter.redis'), flat: get('limiter.flat') }
      : null,
    reconcile: figures.reconcile
      ? {
          entries: get('reconcile.entries'),
          seconds: get('reconcile.seconds'),
          entriesPerSecond: get('reconcile.entriesPerSecond'),
          correct: get('reconcile.correct'),
          target: get('reconcile.target'),
        }
      : null,
  },
  raw: figures,
};
writeFileSync(here('results.json'), `${JSON.stringify(results, null, 2)}\n`);

console.log(
  `\n=== summary (${results.totalSeconds} s; load average at end ${results.machine.loadAverageAtEnd.join(' ')}) ===`,
);
const fmt = (v) => (typeof v === 'number' ? v : '—');
const rows = [
  [
    'authorize URLs/s ours | SDK',
    `${fmt(get('client.authUrl.ours'))} | ${fmt(get('client.authUrl.sdk'))}`,
  ],
  [
    'id_token verifies/s ours | SDK',
    `${fmt(get('client.verify.ours'))} | ${fmt(get('client.verify.sdk'))}`,
  ],
  [
    'route req/s public | guarded (memory)',
    `${fmt(get('guarded.memory.publicRps'))} | ${fmt(get('guarded.memory.guardedRps'))}`,
  ],
  [
    'route req/s public | guarded (Redis)',
    `${fmt(get('guarded.redis.publicRps'))} | ${fmt(get('guarded.redis.guardedRps'))}`,
  ],
  [
    'sign-ons/s SQLite | PostgreSQL',
    `${fmt(get('signons.sqlite.throughput.perSecond'))} | ${fmt(get('signons.postgres.throughput.perSecond'))}`,
  ],
  [
    'sign-on p50/p99 ms SQLite',
    `${fmt(get('signons.sqlite.throughput.signOnMs.p50'))} / ${fmt(get('signons.sqlite.throughput.signOnMs.p99'))}`,
  ],
  [
    'sign-on p50/p99 ms PostgreSQL',
    `${fmt(get('signons.postgres.throughput.signOnMs.p50'))} / ${fmt(get('signons.postgres.throughput.signOnMs.p99'))}`,
  ],
  ...(get('signons.scale') ?? []).map((s) => [
    `${s.instances} instance(s): sign-ons/s | per app CPU-s`,
    `${s.perSecond} | ${s.signOnsPerAppCpuSecond} (${s.perCpuRatioVsOne}x of one)`,
  ]),
  ...(perInstance ?? []).map((s) => [
    `${s.instances} instance(s) at ${s.offeredPerSecond}/s: per app CPU-s`,
    `${s.signOnsPerAppCpuSecond} (${s.perCpuRatioVsOne}x of one)`,
  ]),
  [
    'app CPU µs/request: bare Nest | adopter public | guarded (memory) | guarded (Redis)',
    [
      get('guarded.adoption.bareUs'),
      get('guarded.adoption.memory.publicUs'),
      get('guarded.adoption.memory.guardedUs'),
      get('guarded.adoption.redis.guardedUs'),
    ]
      .map(fmt)
      .join(' | '),
  ],
  [
    'app CPU µs/sign-on: ours | SDK as shipped | SDK, own CA',
    [
      get('peer.ours.appCpuUsPerSignOn'),
      get('peer.theirs.appCpuUsPerSignOn'),
      get('peer.theirsOwnCa.appCpuUsPerSignOn'),
    ]
      .map(fmt)
      .join(' | '),
  ],
  [
    'audit appends/s at 1 | 4 | 16 | 64 writers',
    ['1', '4', '16', '64'].map((n) => fmt(get(`audit.writers.${n}.perSec`))).join(' | '),
  ],
  ['simulator token exchanges/s', fmt(get('simulator.tokenExchangesPerSecond'))],
  ['audit appends/s (1 writer, 16 in flight)', fmt(get('audit.append.oneWriter16InFlightPerSec'))],
  ['audit filtered query p95 ms (1M events)', fmt(get('audit.query.filteredP95Ms'))],
  [
    'rate limiter µs/hit at 1k | 100k | 1M keys',
    ['1000', '100000', '1000000'].map((n) => fmt(get(`limiter.memory.${n}.checkUs`))).join(' | '),
  ],
];
console.table(Object.fromEntries(rows.map(([k, v]) => [k, { value: v }])));
console.table(
  Object.fromEntries(
    targets.map((t) => [
      t.name,
      {
        value: t.value,
        target: t.target,
        met: t.met === null ? 'not measured' : t.met ? 'yes' : 'NO',
      },
    ]),
  ),
);
console.log('wrote bench/results.json');
process.exit(Object.values(runs).every((r) => r.ok) ? 0 : 1);
