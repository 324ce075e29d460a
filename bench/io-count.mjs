// Client-side counts of an app process's shared work, for bench/shared-work.mjs: PostgreSQL
// statements by kind and round trips (node-postgres Client.prototype.query), Redis commands by name
// and keyspace and round trips (ioredis). Loaded by bench/app-server.mjs only with BENCH_COUNT_IO=1,
// so the other benches measure the unwrapped clients.
// One Client.query is one round trip (the extended protocol sends Parse/Bind/Execute/Sync at once);
// one ioredis command is one round trip, except the commands of a pipeline or MULTI, which go
// out together (sendCommand is then given the pipeline's stream) and cost one round trip per exec.
import pg from 'pg';
import { Pipeline, Redis } from 'ioredis';

// The audit's append statement, named (per-connection prepared) `duo_nest_audit_append…` or
// `duo_nest_audit_batch_<hash>` as the appender evolved: one statement that moves the chain head
// and inserts the row(s), answering `inserted`; alone it is a one-statement try (it inserts
// nothing when another writer moved the head first), inside a lock-first transaction it cannot lose.
const AUDIT_APPEND = /^duo_nest_audit/;
const LOCK_FIRST = /^SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE/;
const HEAD_READ = /^SELECT seq, hash FROM audit_chain_head WHERE id = 1$/;
const ID_CHECK = /^SELECT id FROM audit_events WHERE id = ANY/;
// appendMany's insert (lock-first, ids looked up first): VALUES tuples, then the head's 5 params
const BATCH_INSERT = /^WITH ins AS \(INSERT INTO audit_events \(([^)]*)\) VALUES/;
const INSERTS_EVENTS = /INSERT INTO audit_events/;

function fresh() {
  return {
    pg: {
      roundTrips: 0,
      connects: 0,
      // statements outside BEGIN..COMMIT: each its own (implicit) transaction on the server
      implicitTransactions: 0,
      byKind: {},
      // the audit's one-statement appends (named statement, one row or a batch): tries, tries that
      // inserted nothing because another writer had moved the head (then retried), commits, rows
      oneStatement: { tries: 0, lost: 0, commits: 0, rows: 0, batches: 0 },
      // lock-first transactions (BEGIN, SELECT ... FOR UPDATE on the head, the insert, COMMIT):
      // those right after two lost tries (the others ran in the 1 s backoff after such a loss, or
      // after a replayed id), their round trips, rows, and those of several rows
      lockFirst: { transactions: 0, afterLost: 0, roundTrips: 0, rows: 0, batches: 0 },
      other: {},
      // failed statements by SQLSTATE (or message)
      errors: {},
    },
    redis: {
      roundTrips: 0,
      commands: 0,
      pipelines: 0,
      byCommand: {},
      byKeyspace: {},
      byKeyspaceCommand: {},
      // work on timers, not per sign-on: the Duo health probe's lease and shared answer (keys
      // `<prefix>health:*`) and the abandoned-login sweep (a script on `<prefix>pending:exp` alone)
      background: { healthProbe: {}, pendingSweep: {} },
    },
  };
}

let counts = fresh();
// One-statement appends lost in a row (an instance's appends go one at a time, in order).
let lostInARow = 0;
// The open transaction of each connection: its round trips, and whether it locked the chain head.
const transactions = new WeakMap();
const bump = (map, key, n = 1) => (map[key] = (map[key] ?? 0) + n);

/** A statement's kind; the audit chain's statements by name, the rest by their first words. */
function kindOf(text, name) {
  if (typeof name === 'string' && AUDIT_APPEND.test(name)) {
    return 'auditAppendStatement';
  }
  const t = text.trim();
  if (/^(BEGIN|START TRANSACTION)\b/i.test(t)) {
    return 'begin';
  }
  if (/^COMMIT\b/i.test(t)) {
    return 'commit';
  }
  if (/^ROLLBACK\b/i.test(t)) {
    return 'rollback';
  }
  if (LOCK_FIRST.test(t)) {
    return 'auditLockFirstSelectForUpdate';
  }
  if (HEAD_READ.test(t)) {
    return 'auditHeadRead';
  }
  if (ID_CHECK.test(t)) {
    return 'auditLockFirstIdCheck';
  }
  if (BATCH_INSERT.test(t)) {
    return 'auditLockFirstInsert';
  }
  if (INSERTS_EVENTS.test(t)) {
    return 'auditAppendStatement';
  }
  return 'other';
}

function countPg(client, config, values) {
  const text = typeof config === 'string' ? config : (config?.text ?? '');
  const name = typeof config === 'object' ? config?.name : undefined;
  const kind = kindOf(text, name);
  const c = counts.pg;
  c.roundTrips++;
  bump(c.byKind, kind);
  if (kind === 'begin') {
    transactions.set(client, { roundTrips: 0, lockFirst: false });
  }
  const tx = transactions.get(client);
  if (tx) {
    tx.roundTrips++;
  } else {
    c.implicitTransactions++;
  }
  if (kind === 'commit' || kind === 'rollback') {
    transactions.delete(client);
    if (tx?.lockFirst) {
      c.lockFirst.roundTrips += tx.roundTrips;
    }
  } else if (kind === 'auditLockFirstSelectForUpdate') {
    if (tx) {
      tx.lockFirst = true;
    }
    c.lockFirst.transactions++;
    if (lostInARow >= 2) {
      c.lockFirst.afterLost++;
    }
    lostInARow = 0;
  } else if (kind === 'auditAppendStatement' && !tx?.lockFirst) {
    c.oneStatement.tries++;
  } else if (kind === 'other') {
    bump(c.other, text.replace(/\s+/g, ' ').replace(/\$\d+/g, '$').slice(0, 90));
  } else if (kind === 'auditLockFirstInsert') {
    const columns = BATCH_INSERT.exec(text.trim())[1].split(',').length;
    const params = (Array.isArray(values) ? values : (config.values ?? [])).length;
    // the head's seq, hash, updated_at, mac and the row count follow the rows' values
    addLockFirstRows(Math.round((params - 5) / columns));
  }
  return { kind, inLockFirst: tx?.lockFirst === true };
}

function addLockFirstRows(rows) {
  counts.pg.lockFirst.rows += rows;
  counts.pg.lockFirst.batches += rows > 1 ? 1 : 0;
}

/** The result of the audit's named append: alone, a commit or a lost try; in a lock-first, rows. */
function countAppendResult(r, inLockFirst) {
  const inserted = Number(r?.rows?.[0]?.inserted);
  if (inLockFirst) {
    addLockFirstRows(inserted);
    return;
  }
  const o = counts.pg.oneStatement;
  if (inserted === 0) {
    o.lost++;
    lostInARow++;
  } else if (inserted > 0) {
    o.commits++;
    o.rows += inserted;
    o.batches += inserted > 1 ? 1 : 0;
    lostInARow = 0;
  }
}

function wrapPg() {
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function countedQuery(config, values, callback) {
    const { kind, inLockFirst } = countPg(this, config, values);
    const result = query.call(this, config, values, callback);
    if (typeof result?.then === 'function') {
      result.then(
        (r) => kind === 'auditAppendStatement' && countAppendResult(r, inLockFirst),
        (err) =>
          bump(counts.pg.errors, `${kind}: ${err?.code ?? String(err?.message).slice(0, 80)}`),
      );
    }
    return result;
  };
  const connect = pg.Client.prototype.connect;
  pg.Client.prototype.connect = function countedConnect(...args) {
    counts.pg.connects++;
    return connect.apply(this, args);
  };
}

/** The first key of a command, without the app's REDIS_KEY_PREFIX: `sess`, `pending`, `rl`, `health`. */
function keyspaceOf(name, args, prefix) {
  const first = name === 'evalsha' || name === 'eval' ? args[2] : args[0];
  let key = first === undefined ? '' : String(first);
  if (prefix && key.startsWith(prefix)) {
    key = key.slice(prefix.length);
  } else if (name === 'evalsha' || name === 'eval' || args.length === 0) {
    key = key || '(none)';
  }
  return key.split(':')[0] || '(none)';
}

function backgroundJob(name, args, keyspace, prefix) {
  if (keyspace === 'health') {
    return 'healthProbe';
  }
  const script = name === 'evalsha' || name === 'eval';
  if (script && Number(args[1]) === 1 && String(args[2]) === `${prefix}pending:exp`) {
    return 'pendingSweep';
  }
  return undefined;
}

function wrapRedis(prefix) {
  const send = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function countedSendCommand(command, stream, node) {
    const c = counts.redis;
    const name = String(command?.name ?? '').toLowerCase();
    c.commands++;
    bump(c.byCommand, name);
    const keyspace = keyspaceOf(name, command?.args ?? [], prefix);
    bump(c.byKeyspace, keyspace);
    bump(c.byKeyspaceCommand, `${keyspace} ${name}`);
    const job = backgroundJob(name, command?.args ?? [], keyspace, prefix);
    if (job) {
      bump(c.background[job], name);
    }
    if (stream === undefined) {
      c.roundTrips++;
    }
    return send.call(this, command, stream, node);
  };
  const exec = Pipeline.prototype.exec;
  Pipeline.prototype.exec = function countedExec(...args) {
    counts.redis.pipelines++;
    counts.redis.roundTrips++;
    return exec.apply(this, args);
  };
}

function diffMetrics(now, base) {
  return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (base?.[k] ?? 0)]));
}

/**
 * Wraps the clients' prototypes (before the app creates its clients); returns snapshot and reset,
 * and `watch(app)`, after which snapshots carry the AuditService's metrics (events spooled
 * instead of written: a failed or slow database write).
 */
export function installIoCounters(env = process.env) {
  wrapPg();
  wrapRedis(env.REDIS_KEY_PREFIX ?? 'duo:');
  let audit;
  let auditBase;
  return {
    watch: async (app) => {
      const { AuditService } = await import('@duo-nest/audit');
      audit = app.get(AuditService);
      auditBase = { ...audit.metrics };
    },
    snapshot: () => ({
      ...structuredClone(counts),
      ...(audit ? { audit: diffMetrics(audit.metrics, auditBase) } : {}),
    }),
    reset: () => {
      counts = fresh();
      auditBase = audit ? { ...audit.metrics } : undefined;
    },
  };
}
