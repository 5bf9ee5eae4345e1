// Two rtcroom nodes with [cluster] on a private Redis and one MariaDB database, behind a real
// HAProxy (round robin, no sticky sessions; its configuration is written by this test). Two
// pages call each other, each on another node; `kill -9` of the node the first page is on
// (the room's owner, since that page joined first): that page is back in the call, resumed,
// within 5 s, the other page never rebuilds its RTCPeerConnection, media flows, and the
// records of the call have every row exactly once.
// Needs redis-server and haproxy (scripts/deps/cluster.sh) and MariaDB on 127.0.0.1:3306.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  BIN, closePage, expectMediaFlowing, joinCall, launchBrowser, snapshotOf, startServer,
  tagPeerConnections, uidOf, uniqueRoom, waitForConnectedPeers,
} from './helpers.mjs';

/** @type {import('playwright-core').Browser} */
let browser;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

function freePort() {
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

async function until(what, check, timeout = 15000) {
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

/** HAProxy on `port` in front of `backends` (host:port), round robin, no stickiness. */
async function startHaproxy(dir, backends, port) {
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
`;
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, cfg);
  const p = child('haproxy', ['-db', '-f', file]);
  const origin = `http://127.0.0.1:${port}`;
  await until('haproxy to serve both nodes', async () => {
    const r = await fetch(`${origin}/readyz`);
    return r.status === 200;
  });
  return { origin, ws: `ws://127.0.0.1:${port}/ws`, stop: p.stop, log: () => p.log };
}

function mariadb(sql) {
  execFileSync('mariadb', ['-h', '127.0.0.1', '-u', 'root', '-e', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One series of `node`'s `/metrics` (0 when absent). */
async function metric(node, series) {
  const text = await (await fetch(`${node.binOrigin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** The sessions the records API of `node` has for `uid` in `room`. */
async function sessions(node, uid, room) {
  const r = await fetch(`${node.binOrigin}/api/records/member/10000/${encodeURIComponent(uid)}`, { headers: { authorization: `Bearer ${node.adminToken}` } });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).filter((s) => s.room_id === room);
}

test('kill -9 of a node behind HAProxy: its page resumes within 5 s, the other page never notices', { timeout: 180000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rtcroom-cluster-web-'));
  const db = `rtcroom_web_cluster_${process.pid}_${Date.now()}`;
  const stops = [];
  const pages = [];
  try {
    mariadb(`CREATE DATABASE \`${db}\``);
    stops.push(async () => mariadb(`DROP DATABASE IF EXISTS \`${db}\``));
    const redis = await startRedis(dir);
    stops.push(redis.stop);
    const lbPort = await freePort();
    // One configuration for every node, as in deploy/cluster: the app and its secret are
    // shared, so a token from one node's login joins on any node.
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
    for (const i of [0, 1]) {
      const node = await startServer({ env: env(i) });
      stops.push(node.stop);
      nodes.push(node);
    }
    // HAProxy on the port the nodes hand out at login.
    const lb = await startHaproxy(dir, nodes.map((n) => new URL(n.binOrigin).host), lbPort);
    stops.unshift(lb.stop);
    assert.equal(new URL(lb.origin).port, String(lbPort));

    const room = uniqueRoom('cluster');
    // The first page (its node owns the room); the second, reloaded until round robin puts
    // its signaling connection on the other node (the owner then serves it for that node).
    const first = await joinCall(browser, lb.origin, room, 'Ana', { init: tagPeerConnections });
    pages.push(first);
    assert.equal(await first.evaluate(() => document.body.dataset.state), 'in-call');
    const counts = await Promise.all(nodes.map((n) => metric(n, 'rtcroom_members')));
    const home = counts.findIndex((c) => c === 1);
    assert.ok(home >= 0 && counts[1 - home] === 0, `one node holds the room with the first page: ${counts}`);
    let second = null;
    for (let attempt = 0; attempt < 8 && !second; attempt++) {
      const page = await joinCall(browser, lb.origin, room, 'Ben', { init: tagPeerConnections });
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'in-call');
      // On the other node, the owner serves it for that node.
      if ((await metric(nodes[home], 'rtcroom_cluster_remote_members')) === 1) {
        second = page;
      } else {
        await page.click('#btn-leave');
        await page.waitForFunction(() => document.body.dataset.state === 'left');
        await closePage(page);
        // Another request through HAProxy moves its rotation on by one: a page makes a
        // fixed number of requests, so without it every page would land where the last did.
        await fetch(`${lb.origin}/healthz`);
      }
    }
    assert.ok(second, 'round robin never put the second page on the other node');
    pages.push(second);
    await Promise.all(pages.map((p) => waitForConnectedPeers(p, 1)));
    const uids = await Promise.all(pages.map(uidOf));
    await expectMediaFlowing(first, uids[1]);
    await expectMediaFlowing(second, uids[0]);
    await Promise.all(pages.map((p) => p.evaluate(() => {
      const r = [];
      Object.defineProperty(window, '__reconnects', { value: r });
      window.rtcroom.client.on('reconnected', (d) => r.push(d));
    })));
    const before = await Promise.all(pages.map(snapshotOf));

    const killedAt = Date.now();
    await nodes[home].kill();
    await first.waitForFunction(() => window.__reconnects.length >= 1 && window.rtcroom.client.state === 'joined', null, { timeout: 15000 });
    const back = Date.now() - killedAt;
    t.diagnostic(`the first page was back in the call ${back} ms after the kill`);
    assert.deepEqual(await first.evaluate(() => window.__reconnects), [{ resumed: true, sessionId: before[0].sessionId }]);
    assert.ok(back <= 5000, `back in the call ${back} ms after the kill`);
    assert.deepEqual(await second.evaluate(() => window.__reconnects), [], 'the second page never reconnected');

    // Both pages kept their peer connection, connected the whole time; media still flows.
    await sleep(1000);
    for (const [i, p] of pages.entries()) {
      const now = await snapshotOf(p);
      assert.equal(now.sessionId, before[i].sessionId);
      assert.equal(now.made, before[i].made, `no RTCPeerConnection was made: ${JSON.stringify(now)}`);
      const peer = now.peers[uids[1 - i]];
      assert.equal(peer.pc, before[i].peers[uids[1 - i]].pc, 'the same RTCPeerConnection');
      assert.equal(peer.state, 'connected', JSON.stringify(peer));
      assert.equal(peer.states.indexOf('connected'), peer.states.length - 1, JSON.stringify(peer.states));
      assert.equal(await p.evaluate(() => document.body.dataset.state), 'in-call');
    }
    await expectMediaFlowing(first, uids[1]);
    await expectMediaFlowing(second, uids[0]);

    await Promise.all(pages.map((p) => p.click('#btn-leave')));
    await Promise.all(pages.map((p) => p.waitForFunction(() => document.body.dataset.state === 'left')));
    for (const p of pages) assert.deepEqual(p.errors, []);
    // Every row once: one session per member (the resumed one is the same), one sub-session
    // per direction, connected and left (status 0).
    const survivor = nodes[1 - home];
    for (const [i, uid] of uids.entries()) {
      let mine = [];
      await until(`the records of ${uid}`, async () => {
        mine = await sessions(survivor, uid, room);
        return mine.length >= 1 && mine.every((s) => s.leave_time) && mine.flatMap((s) => s.sub_sessions).every((x) => x.status !== -1);
      }, 20000);
      assert.equal(mine.length, 1, `one session of ${uid}: ${JSON.stringify(mine)}`);
      assert.equal(mine[0].session_id, before[i].sessionId);
      assert.equal(mine[0].time_out, false, JSON.stringify(mine[0]));
      // (The pages that round robin put on the first page's node met it too, and left.)
      const own = mine[0].sub_sessions.filter((x) => x.user_id === uid && x.remote_user_id === uids[1 - i]);
      assert.equal(own.length, 1, `one sub-session per direction: ${JSON.stringify(own)}`);
      assert.equal(own[0].status, 0, JSON.stringify(own[0]));
    }
  } finally {
    await Promise.all(pages.map(closePage));
    for (const stop of stops) await stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
});
