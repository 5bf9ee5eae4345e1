// Shared pieces of the browser tests of the cluster (cluster.test.mjs): rtcroom nodes with
// [cluster] on a private Redis and one MariaDB database, behind a real HAProxy (round robin,
// no sticky sessions; its configuration is written here). Needs redis-server and haproxy
// (scripts/deps/cluster.sh) and MariaDB on 127.0.0.1:3306.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, startServer } from './helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/** A process of the test's, stopped by its pid. */
function child(cmd, args, opts = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
  p.log = '';
  p.stderr?.on('data', (d) => { p.log += d; });
  p.once('error', (e) => { p.log += `cannot start ${cmd}: ${e.message}`; });
  p.stop = async () => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  };
  return p;
}

/** Waits (bounded) until `check()` holds. */
export async function until(what, check, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      if (await check()) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A private redis-server on a free port (never the machine's shared one). */
async function startRedis(dir) {
  const port = await freePort();
  const p = child('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  await until('redis-server', () => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
    s.once('data', (d) => { s.destroy(); resolve(String(d).startsWith('+PONG')); });
    s.once('error', () => resolve(false));
  }));
  return { url: `redis://127.0.0.1:${port}/0`, stop: p.stop };
}

/**
 * HAProxy on `port` in front of `backends` (host:port), round robin, no stickiness, each
 * backend checked on /readyz; its stats page (CSV) on a port of its own says which
 * backends it sends clients to (`up()`).
 */
async function startHaproxy(dir, backends, port) {
  const statsPort = await freePort();
  const cfg = `global
  maxconn 2000

defaults
  mode http
  option forwardfor
  option redispatch
  retries 3
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  # A WebSocket is a tunnel once upgraded: idle for up to the heartbeat timeout and more.
  timeout tunnel 1h
  timeout client-fin 2s

frontend signaling
  bind 127.0.0.1:${port}
  default_backend rtcroom

backend rtcroom
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 300ms fall 2 rise 2
${backends.map((b, i) => `  server n${i} ${b} check`).join('\n')}

listen stats
  bind 127.0.0.1:${statsPort}
  stats enable
  stats uri /stats
`;
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, cfg);
  const p = child('haproxy', ['-db', '-f', file]);
  const origin = `http://127.0.0.1:${port}`;
  /** The status HAProxy gives each backend server now: {n0: 'UP', n1: 'DOWN', ...}. */
  const servers = async () => {
    const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
    const [head, ...rows] = csv.split('\n').filter((l) => l);
    const cols = head.replace(/^# /, '').split(',');
    const [px, sv, st] = ['pxname', 'svname', 'status'].map((c) => cols.indexOf(c));
    const out = {};
    for (const r of rows.map((l) => l.split(','))) {
      if (r[px] === 'rtcroom' && r[sv] !== 'BACKEND') out[r[sv]] = r[st];
    }
    return out;
  };
  await until('haproxy to serve every node', async () => {
    const all = await servers();
    return backends.every((_, i) => all[`n${i}`] === 'UP');
  });
  return {
    origin,
    ws: `ws://127.0.0.1:${port}/ws`,
    servers,
    /** Waits until HAProxy has taken backend `i` out of its rotation (`fall` checks failed). */
    down: (i) => until(`haproxy to take n${i} out`, async () => (await servers())[`n${i}`]?.startsWith('DOWN'), 20000),
    /** Waits until HAProxy sends clients to every backend again (`rise` checks passed). */
    allUp: () => until('haproxy to see every node up', async () => Object.values(await servers()).every((s) => s === 'UP'), 20000),
    stop: p.stop,
    log: () => p.log,
  };
}

export function mariadb(sql, db) {
  const args = ['-h', '127.0.0.1', '-u', 'root', '-N', '-B'];
  if (db) args.push(db);
  return execFileSync('mariadb', [...args, '-e', sql], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** One series of `node`'s `/metrics` (0 when absent). */
export async function metric(node, series) {
  const text = await (await fetch(`${node.binOrigin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** The sessions the records API of `node` has for `uid` in `room`. */
export async function sessions(node, uid, room) {
  const r = await fetch(`${node.binOrigin}/api/records/member/10000/${encodeURIComponent(uid)}`, { headers: { authorization: `Bearer ${node.adminToken}` } });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).filter((s) => s.room_id === room);
}

/**
 * `n` nodes `n0`, `n1`, ... sharing one configuration file (the app and its secret, so a
 * token from one node's login joins on any node), a private Redis and a MariaDB database of
 * their own, behind HAProxy on the port the nodes hand out at login. `stop()` stops
 * everything and drops the database.
 * Returns `{nodes, lb, db, stop}`; each node is a `startServer` node (`terminate`,
 * `startAgain` on the same port, `kill`).
 */
export async function startCluster(n) {
  const dir = await mkdtemp(path.join(tmpdir(), 'rtcroom-cluster-web-'));
  const db = `rtcroom_web_cluster_${process.pid}_${Date.now()}`;
  const stops = [async () => rm(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const s of stops) await s().catch(() => {});
  };
  try {
    mariadb(`CREATE DATABASE \`${db}\``);
    stops.unshift(async () => mariadb(`DROP DATABASE IF EXISTS \`${db}\``));
    const redis = await startRedis(dir);
    stops.unshift(redis.stop);
    const lbPort = await freePort();
    const config = path.join(dir, 'rtcroom.toml');
    await writeFile(config, `[[apps]]\nid = "10000"\nsecret = "cluster-web-secret"\ndomains = ["127.0.0.1", "localhost"]\n`);
    const dbUrl = `mysql://root@127.0.0.1:3306/${db}`;
    execFileSync(BIN, ['migrate'], { cwd: dir, env: { ...process.env, RTCROOM_CONFIG: config, RTCROOM_DATABASE_URL: dbUrl }, stdio: 'ignore' });
    const env = (i) => ({
      RTCROOM_CONFIG: config,
      RTCROOM_DATABASE_URL: dbUrl,
      RTCROOM_CLUSTER_REDIS: redis.url,
      RTCROOM_CLUSTER_NODE_ID: `n${i}`,
      RTCROOM_CLUSTER_HEARTBEAT_MS: '200',
      RTCROOM_CLUSTER_DEAD_AFTER_MS: '1000',
      RTCROOM_CLUSTER_SIGNALING_URL: `ws://127.0.0.1:${lbPort}/ws`,
      RTCROOM_SERVER_TRUSTED_PROXIES: '["127.0.0.1"]',
    });
    const nodes = [];
    for (let i = 0; i < n; i++) {
      const node = await startServer({ env: env(i) });
      stops.unshift(node.stop);
      nodes.push(node);
    }
    const lb = await startHaproxy(dir, nodes.map((x) => new URL(x.binOrigin).host), lbPort);
    stops.unshift(lb.stop);
    assert.equal(new URL(lb.origin).port, String(lbPort));
    return { nodes, lb, db, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `2026-12-03 13:00:00.123` (DATETIME, UTC) as Unix ms; null stays null. */
const utc = (s) => (s === 'NULL' || s === '' ? null : Date.parse(`${s.replace(' ', 'T')}Z`));

/**
 * Every session and sub-session row of `room` in database `db`, as stored (one entry per
 * row, so a doubled row shows twice).
 */
export function roomRows(db, room) {
  const q = (sql) => mariadb(sql, db).split('\n').filter((l) => l).map((l) => l.split('\t'));
  const esc = room.replace(/[^A-Za-z0-9_-]/g, '');
  assert.equal(esc, room, 'a room id the query can hold as it is');
  const sessions = q(`SELECT session_id, user_id, CAST(leave_time AS CHAR), time_out, sub_session_ids FROM rtc_talk_sessions WHERE room_id = '${room}' ORDER BY id`)
    .map(([id, uid, left, timeOut, subs]) => ({ id, uid, left: utc(left), timeOut: timeOut !== '0', subIds: subs.split(',').filter((x) => x) }));
  const subs = q(`SELECT sub_session_id, session_id, user_id, remote_user_id, status, CAST(connect_time AS CHAR), CAST(finish_time AS CHAR) FROM rtc_talk_subsessions WHERE room_id = '${room}' ORDER BY id`)
    .map(([id, session, uid, remote, status, connected, finished]) => ({ id, session, uid, remote, status: Number(status), connected: utc(connected), finished: utc(finished) }));
  return { sessions, subs };
}
