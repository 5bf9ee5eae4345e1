// Shared pieces of the end-to-end tests: the real rtcroom binary on 127.0.0.1 port 0,
// one headless Chromium per test file, one browser context per page.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(WEB_DIR, '..');
export const BIN = process.env.RTCROOM_BIN
  ? path.resolve(process.env.RTCROOM_BIN)
  : path.resolve(WEB_DIR, '../target/debug/rtcroom');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** The flags WebRTC needs in headless Chromium on a loopback-only machine. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  // Remote audio plays without a click in a page that joined from a link.
  '--autoplay-policy=no-user-gesture-required',
];

/** The files of web/ that the binary embeds, with their content types. */
export const WEB_FILES = {
  'index.html': 'text/html; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'rtc-client.js': 'text/javascript; charset=utf-8',
  'rtc-client.d.ts': 'text/plain; charset=utf-8',
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The operator token every test server gets (`RTCROOM_ADMIN_TOKEN`), unless a test sets its own. */
export const ADMIN_TOKEN = 'e2e-admin-token';

/**
 * Starts `rtcroom serve` on 127.0.0.1:0 with a temporary data dir and the given
 * `RTCROOM_*` overrides. Returns `{origin, binOrigin, adminToken, stop, logs, terminate, kill,
 * startAgain}`: `origin` serves the page.
 * If the binary does not serve the page yet, a small front server does (static files from
 * web/, everything else passed through to the binary, WebSocket upgrades included).
 * With `front: true` the front server is used anyway; its `dropWebSockets()` cuts every
 * signaling connection at the TCP level (no close frame), as a network drop would.
 * `terminate()` sends SIGTERM (what `systemctl restart` sends) and resolves with the exit code;
 * `kill()` sends SIGKILL;
 * `startAgain()` then starts the binary again on the same port with the same data dir and
 * settings, as a restart or an upgrade does.
 * @param {{env?: Record<string, string>, front?: boolean}} [opts]
 */
export async function startServer(opts = {}) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rtcroom-web-'));
  const log = { text: '' };
  let run = await spawnServer(dataDir, '127.0.0.1:0', opts.env || {}, log);
  const binOrigin = run.origin;

  let front = null;
  let origin = binOrigin;
  // RTCROOM_E2E_WEB_FROM_DISK=1 serves web/ from disk (no rebuild between page edits).
  if (opts.front || process.env.RTCROOM_E2E_WEB_FROM_DISK === '1' || !(await servesPage(binOrigin))) {
    front = await startFront(binOrigin);
    origin = front.origin;
  }
  const terminate = async () => {
    const { child } = run;
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const exited = new Promise((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(15000).then(() => 'timeout')]);
    if (code === 'timeout') {
      child.kill('SIGKILL');
      throw new Error(`rtcroom did not exit within 15 s of SIGTERM:\n${log.text}`);
    }
    return code;
  };
  const stop = async () => {
    if (front) await front.close();
    const { child } = run;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  return {
    origin, binOrigin, dataDir, viaFront: !!front, stop, terminate, logs: () => log.text,
    /** `kill -9`: the process dies at once, without any shutdown; resolves when it is gone. */
    kill: async () => {
      const { child } = run;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    startAgain: async () => {
      run = await spawnServer(dataDir, new URL(binOrigin).host, opts.env || {}, log);
    },
    adminToken: (opts.env && opts.env.RTCROOM_ADMIN_TOKEN) || ADMIN_TOKEN,
    dropWebSockets: () => {
      if (!front) throw new Error('dropWebSockets needs startServer({front: true})');
      return front.dropWebSockets();
    },
  };
}

/** `rtcroom serve` on `listen` with `dataDir`; its stderr is appended to `log.text`. */
async function spawnServer(dataDir, listen, env, log) {
  const child = spawn(BIN, ['serve'], {
    cwd: dataDir,
    env: {
      ...process.env,
      RTCROOM_SERVER_LISTEN: listen,
      RTCROOM_SERVER_DATA_DIR: dataDir,
      // Servers run side by side: each gets its own embedded TURN port.
      RTCROOM_TURN_LISTEN: '127.0.0.1:0',
      RTCROOM_LOG_LEVEL: process.env.RTCROOM_LOG_LEVEL || 'warn',
      // The records API (recordedSubSessions) and the operator API need it.
      RTCROOM_ADMIN_TOKEN: ADMIN_TOKEN,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.on('data', (d) => { log.text += d; });
  const origin = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`rtcroom printed no listening line in 20 s:\n${out}\n${log.text}`)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`rtcroom exited with ${code} before listening:\n${out}\n${log.text}`));
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${BIN}: ${e.message} (build it, or set RTCROOM_BIN)`));
    });
  });
  child.stdout.resume();
  return { child, origin };
}

async function servesPage(origin) {
  try {
    const r = await fetch(`${origin}/assets/rtc-client.js`);
    return r.ok && /javascript/.test(r.headers.get('content-type') || '');
  } catch {
    return false;
  }
}

/** Serves web/ as the binary will (`/` and `/assets/<file>`), passing the rest through. */
async function startFront(binOrigin) {
  const target = new URL(binOrigin);
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const name = url.pathname === '/' ? 'index.html' : url.pathname.startsWith('/assets/') ? url.pathname.slice(8) : null;
    if (name !== null && req.method === 'GET') {
      if (!WEB_FILES[name]) {
        res.writeHead(404).end('not found');
        return;
      }
      const body = await readFile(path.join(WEB_DIR, name));
      res.writeHead(200, { 'content-type': WEB_FILES[name], 'cache-control': 'no-cache' }).end(body);
      return;
    }
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode || 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end('bad gateway'));
    req.pipe(up);
  });
  const tunnels = new Set();
  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(Number(target.port), target.hostname, () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(`${raw}\r\n`);
      if (head && head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    const pair = { up, socket };
    tunnels.add(pair);
    const end = () => { tunnels.delete(pair); up.destroy(); socket.destroy(); };
    up.on('error', end);
    socket.on('error', end);
    up.on('close', end);
    socket.on('close', end);
  });
  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = /** @type {net.AddressInfo} */ (server.address());
  return {
    origin: `http://127.0.0.1:${port}`,
    dropWebSockets: () => {
      const n = tunnels.size;
      // resetAndDestroy sends a TCP RST: neither side gets a WebSocket close frame.
      for (const { up, socket } of [...tunnels]) {
        up.resetAndDestroy();
        socket.resetAndDestroy();
      }
      tunnels.clear();
      return n;
    },
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r(undefined));
    }),
  };
}

/** One headless Chromium for a whole test file. */
export function launchBrowser(extraArgs = []) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_FLAGS, ...extraArgs] });
}

/**
 * Opens the page in its own browser context (so each page is a separate user).
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 * @param {{viewport?: {width: number, height: number}, init?: Function, initArg?: any, deviceScaleFactor?: number, lightVideo?: boolean}} [opts]
 */
export async function openPage(browser, url, opts = {}) {
  const context = await browser.newContext({ viewport: opts.viewport || { width: 1280, height: 800 }, deviceScaleFactor: opts.deviceScaleFactor || 1 });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  page.errors = errors;
  // Small video keeps a two-core machine from spending the tests encoding pixels.
  if (opts.lightVideo !== false) await page.addInitScript(() => { window.rtcroomConfig = { video: { width: { ideal: 320 }, height: { ideal: 180 }, frameRate: { ideal: 15 } } }; });
  if (opts.init) await page.addInitScript(opts.init, opts.initArg);
  await page.goto(url);
  return page;
}

/** Joins `room` as `name` through the direct link; resolves once the page is in the call. */
export async function joinCall(browser, origin, room, name, opts = {}) {
  const page = await openPage(browser, `${origin}/?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`, opts);
  await page.waitForFunction(() => ['in-call', 'refused', 'ended'].includes(document.body.dataset.state || ''), null, { timeout: 20000 });
  return page;
}

export async function closePage(page) {
  if (!page) return;
  await page.context().close().catch(() => {});
}

/** The page's uid in the call. */
export function uidOf(page) {
  return page.evaluate(() => window.rtcroom.client?.uid);
}

/** Waits until the page shows `n` remote tiles, each connected (P2P or relayed). */
export async function waitForConnectedPeers(page, n, timeout = 20000) {
  await page.waitForFunction((n) => {
    const remote = [...document.querySelectorAll('#grid .tile:not(.local)')];
    return remote.length === n && remote.every((t) => t.dataset.conn === 'p2p' || t.dataset.conn === 'relayed');
  }, n, { timeout });
}

/** Total inbound RTP bytes (and decoded frames) from `uid`, by kind, from getStats. */
export function inbound(page, uid) {
  return page.evaluate(async (uid) => {
    const report = await window.rtcroom.client.getStats(uid);
    const out = { audio: 0, video: 0, frames: 0, width: 0 };
    if (!report) return out;
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      out[s.kind] += s.bytesReceived || 0;
      if (s.kind === 'video') {
        out.frames += s.framesDecoded || 0;
        out.width = Math.max(out.width, s.frameWidth || 0);
      }
    });
    return out;
  }, uid);
}

/** Asserts that audio and video bytes from `uid` keep arriving at `page`. */
export async function expectMediaFlowing(page, uid, kinds = ['audio', 'video']) {
  const a = await inbound(page, uid);
  const deadline = Date.now() + 10000;
  for (;;) {
    await sleep(700);
    const b = await inbound(page, uid);
    const grown = kinds.filter((k) => b[k] > a[k]);
    if (grown.length === kinds.length) return b;
    if (Date.now() > deadline) throw new Error(`no inbound ${kinds.filter((k) => !(b[k] > a[k])).join('+')} from ${uid}: ${JSON.stringify({ before: a, after: b })}`);
  }
}

/** Waits until decoded video frames from `uid` grow (true) or stay still for 1.5 s (false). */
export async function videoFramesGrow(page, uid, want, timeout = 15000) {
  const deadline = Date.now() + timeout;
  let last = (await inbound(page, uid)).frames;
  let stillSince = Date.now();
  while (Date.now() < deadline) {
    await sleep(500);
    const f = (await inbound(page, uid)).frames;
    if (f > last) {
      if (want) return true;
      stillSince = Date.now();
    } else if (!want && Date.now() - stillSince >= 1500) {
      return true;
    }
    last = f;
  }
  throw new Error(`video frames from ${uid} did not ${want ? 'grow' : 'stop'} within ${timeout} ms`);
}

/** The tile of `uid` on `page` as data attributes. */
export function tileState(page, uid) {
  return page.evaluate((uid) => {
    const t = document.querySelector(`#grid .tile[data-uid="${uid}"]`);
    return t ? { ...t.dataset } : null;
  }, uid);
}

export function waitForTile(page, uid, attrs, timeout = 15000) {
  return page.waitForFunction(([uid, attrs]) => {
    const t = document.querySelector(`#grid .tile[data-uid="${uid}"]`);
    return !!t && Object.entries(attrs).every(([k, v]) => t.dataset[k] === v);
  }, [uid, attrs], { timeout });
}

/**
 * The sub-sessions the server recorded for `uid` (app "10000"), from
 * `GET /api/records/member/10000/{uid}` with the server's admin token: the member's own
 * directions (`user_id` = uid), newest session first, optionally only those in `roomId` and
 * towards `remoteUid`. Records are written in batches, so it polls until `until(rows)` holds
 * (default: at least one row) and throws with the last rows after `timeout` ms.
 * @param {{adminToken: string, binOrigin: string}} server
 * @param {string} uid
 * @param {{roomId?: string, remoteUid?: string, until?: (rows: any[]) => boolean, timeout?: number}} [opts]
 */
export async function recordedSubSessions(server, uid, opts = {}) {
  const { roomId, remoteUid, until = (rows) => rows.length > 0, timeout = 10000 } = opts;
  const url = `${server.binOrigin}/api/records/member/10000/${encodeURIComponent(uid)}`;
  const deadline = Date.now() + timeout;
  let rows = [];
  for (;;) {
    const r = await fetch(url, { headers: { authorization: `Bearer ${server.adminToken}` } });
    if (!r.ok) throw new Error(`GET ${url} answered ${r.status}: ${await r.text()}`);
    const sessions = await r.json();
    rows = sessions
      .filter((s) => !roomId || s.room_id === roomId)
      .flatMap((s) => s.sub_sessions)
      .filter((sub) => sub.user_id === String(uid) && (!remoteUid || sub.remote_user_id === String(remoteUid)));
    if (until(rows)) return rows;
    if (Date.now() > deadline) throw new Error(`the records of ${uid} did not reach the expected state in ${timeout} ms: ${JSON.stringify(rows)}`);
    await sleep(250);
  }
}

export function uniqueRoom(prefix) {
  return `${prefix}-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
}

/**
 * An init script that keeps every signaling frame of the page in `window.__frames`
 * (`{dir: 'out' | 'in', at, m}`), for tests that check the wire.
 */
export function recordFrames() {
  const frames = [];
  Object.defineProperty(window, '__frames', { value: frames });
  const Native = window.WebSocket;
  const send = Native.prototype.send;
  Native.prototype.send = function (data) {
    try { frames.push({ dir: 'out', at: Date.now(), m: JSON.parse(String(data)) }); } catch { /* not JSON */ }
    return send.call(this, data);
  };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (ev) => {
        try { frames.push({ dir: 'in', at: Date.now(), m: JSON.parse(ev.data) }); } catch { /* not JSON */ }
      });
    }
  };
}

/** The recorded frames of a page (see recordFrames), optionally only one direction/cmd. */
export function frames(page, dir, cmd) {
  return page.evaluate(([dir, cmd]) => window.__frames.filter((f) => (!dir || f.dir === dir) && (!cmd || f.m.cmd === cmd)), [dir, cmd]);
}

/**
 * An init script: keeps every RTCPeerConnection the page makes in `window.__pcs` (creation
 * order), each with every `connectionState` it changed to. The test tells the connections
 * apart by their index there, so no hook in the page or the SDK is needed.
 */
export function tagPeerConnections() {
  const pcs = [];
  Object.defineProperty(window, '__pcs', { value: pcs });
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      const entry = { pc: this, states: [] };
      pcs.push(entry);
      this.addEventListener('connectionstatechange', () => entry.states.push(this.connectionState));
    }
  };
}

/**
 * What a page has now: its session, and for each remote uid the index of its peer connection
 * in `__pcs`, that connection's state and every state it went through.
 */
export function snapshotOf(page) {
  return page.evaluate(() => {
    const c = window.rtcroom.client;
    const peers = {};
    for (const [uid, p] of c.peers) {
      const i = window.__pcs.findIndex((e) => e.pc === p.pc);
      peers[uid] = { pc: i, state: p.pc.connectionState, states: i < 0 ? [] : [...window.__pcs[i].states] };
    }
    return { sessionId: c.sessionId, uid: c.uid, made: window.__pcs.length, peers };
  });
}

/**
 * Joins and, from the moment the page is in the call, records what it shows: every change of
 * the page state (`body[data-state]`), the signaling state (`body[data-signal]`), whether the
 * lobby is visible, and the SDK's `reconnected` events. Also keeps the console's errors.
 * @param {import('playwright-core').Browser} browser
 */
export async function joinWatched(browser, origin, room, name) {
  const page = await joinCall(browser, origin, room, name, { init: tagPeerConnections });
  page.consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') page.consoleErrors.push({ at: Date.now(), text: m.text() }); });
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'in-call');
  await page.evaluate(() => {
    const seen = [];
    const reconnects = [];
    Object.defineProperty(window, '__seen', { value: seen });
    Object.defineProperty(window, '__reconnects', { value: reconnects });
    const note = () => {
      const now = `${document.body.dataset.state}|${document.body.dataset.signal || ''}|${document.querySelector('#lobby').hidden ? '' : 'lobby'}`;
      if (seen[seen.length - 1] !== now) seen.push(now);
    };
    note();
    new MutationObserver(note).observe(document.body, { attributes: true, subtree: true, attributeFilter: ['data-state', 'data-signal', 'hidden'] });
    window.rtcroom.client.on('reconnected', (d) => reconnects.push(d));
  });
  return page;
}

/** Page `i` resumed `times[i]` times in all (`reconnected` with `resumed: true`). */
export async function waitResumed(pages, times) {
  await Promise.all(pages.map((p, i) => p.waitForFunction((n) => window.__reconnects.length >= n && window.rtcroom.client.state === 'joined', times[i], { timeout: 30000 })));
  for (const [i, p] of pages.entries()) {
    const r = await p.evaluate(() => window.__reconnects);
    assert.equal(r.length, times[i], JSON.stringify(r));
    assert.ok(r.every((x) => x.resumed === true), `not resumed: ${JSON.stringify(r)}`);
  }
}

/**
 * Across a restart each page kept everything: the same session and peer connections (no new
 * one made), each `connected` the whole time, never the lobby, and media from everyone still
 * arriving. `before` holds each page's `snapshotOf` from before the restart.
 */
export async function expectUntouched(pages, uids, before) {
  for (const [i, p] of pages.entries()) {
    const now = await snapshotOf(p);
    const was = before[i];
    assert.equal(now.sessionId, was.sessionId, 'same session');
    assert.equal(now.made, was.made, `no peer connection was made: ${JSON.stringify(now)}`);
    assert.deepEqual(Object.keys(now.peers).sort(), Object.keys(was.peers).sort());
    for (const [uid, peer] of Object.entries(now.peers)) {
      assert.equal(peer.pc, was.peers[uid].pc, `the same RTCPeerConnection for ${uid}`);
      assert.equal(peer.state, 'connected', `${uid}: ${JSON.stringify(peer)}`);
      // The first `connected` is the last change: it never left that state.
      assert.equal(peer.states.indexOf('connected'), peer.states.length - 1, `${uid}: ${JSON.stringify(peer.states)}`);
    }
    const seen = await p.evaluate(() => window.__seen);
    assert.ok(seen.every((s) => s.startsWith('in-call|') && !s.endsWith('|lobby')), `the page left the call: ${JSON.stringify(seen)}`);
    assert.ok(seen.includes('in-call|reconnecting|'), `the page showed no reconnecting state: ${JSON.stringify(seen)}`);
    assert.equal(seen[seen.length - 1], 'in-call||');
  }
  await Promise.all(pages.flatMap((p, i) => uids.filter((_, j) => j !== i).map((u) => expectMediaFlowing(p, u))));
}
