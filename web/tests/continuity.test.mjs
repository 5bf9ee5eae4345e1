// A restart of the room server in the middle of a call, with real pages: SIGTERM (what
// `systemctl restart` sends), then the same binary again on the same port and data dir.
// Back within the heartbeat timeout, nothing on the pages changes: the same peer
// connections stay connected, media keeps flowing, the page stays in the call with the same
// session, and the records show one row per direction across the restarts. Away for longer,
// every page says that the call ended, once, and stays there.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  closePage, expectMediaFlowing, expectUntouched, joinWatched, launchBrowser,
  recordedSubSessions, snapshotOf, startServer, uidOf, uniqueRoom, waitForConnectedPeers,
  waitResumed,
} from './helpers.mjs';

/** @type {import('playwright-core').Browser} */
let browser;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The only console errors a page may log while the server is away: the browser's own lines
 * for a connection that was refused or reset (the SDK's reconnect attempts and logins).
 */
const REFUSED = /^WebSocket connection to .* failed|^Failed to load resource: net::ERR_CONNECTION_(REFUSED|RESET)/;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/**
 * SIGTERM, then the same binary on the same port and data dir at once; when SIGTERM was sent.
 * @param {import('node:test').TestContext} t
 */
async function restart(t, server) {
  const at = Date.now();
  assert.equal(await server.terminate(), 0, server.logs());
  await server.startAgain();
  t.diagnostic(`the server was away for ${Date.now() - at} ms`);
  return at;
}

test('two, then three pages: SIGTERM and an immediate start keep every call and its records', { timeout: 180000 }, async (t) => {
  const server = await startServer();
  const room = uniqueRoom('restart');
  const pages = [];
  try {
    pages.push(...(await Promise.all(['Ana', 'Ben'].map((n) => joinWatched(browser, server.origin, room, n)))));
    await Promise.all(pages.map((p) => waitForConnectedPeers(p, 1)));
    const uids = await Promise.all(pages.map(uidOf));
    await Promise.all([expectMediaFlowing(pages[0], uids[1]), expectMediaFlowing(pages[1], uids[0])]);

    let before = await Promise.all(pages.map(snapshotOf));
    const firstRestart = await restart(t, server);
    await waitResumed(pages, [1, 1]);
    await expectUntouched(pages, uids, before);

    pages.push(await joinWatched(browser, server.origin, room, 'Chloé'));
    uids.push(await uidOf(pages[2]));
    await Promise.all(pages.map((p) => waitForConnectedPeers(p, 2)));
    await expectMediaFlowing(pages[2], uids[0]);
    before = await Promise.all(pages.map(snapshotOf));
    const secondRestart = await restart(t, server);
    await waitResumed(pages, [2, 2, 1]);
    await expectUntouched(pages, uids, before);
    const restartedAt = Date.now();

    await Promise.all(pages.map((p) => p.click('#btn-leave')));
    await Promise.all(pages.map((p) => p.waitForFunction(() => document.body.dataset.state === 'left')));
    for (const [i, p] of pages.entries()) {
      assert.deepEqual(p.errors, []);
      const noisy = p.consoleErrors.filter((e) => !REFUSED.test(e.text));
      assert.deepEqual(noisy, [], uids[i]);
    }

    // One row per direction, each from before the restart(s) it lived through to the leave.
    for (const [i, uid] of uids.entries()) {
      const others = uids.filter((u) => u !== uid);
      const rows = await recordedSubSessions(server, uid, {
        roomId: room,
        until: (rows) => rows.length >= others.length && rows.every((r) => r.status !== -1),
      });
      assert.deepEqual(rows.map((r) => r.remote_user_id).sort(), [...others].sort(), `one row per direction: ${JSON.stringify(rows)}`);
      for (const row of rows) {
        const withC = i === 2 || row.remote_user_id === uids[2];
        const restartAt = withC ? secondRestart : firstRestart;
        const connected = Date.parse(row.connect_time);
        const finished = Date.parse(row.finish_time);
        assert.equal(row.status, 0, `connected and left: ${JSON.stringify(row)}`);
        assert.ok(connected < restartAt, `connected before the restart: ${JSON.stringify(row)}`);
        // The stored times have whole seconds.
        assert.ok(finished >= Math.floor(restartedAt / 1000) * 1000, `finished at the leave after the restart: ${JSON.stringify(row)}`);
        assert.ok(row.duration >= Math.floor((restartedAt - restartAt) / 1000), `the duration covers the whole call: ${JSON.stringify(row)}`);
      }
    }
  } finally {
    await Promise.all(pages.map(closePage));
    await server.stop();
  }
});

test('away for longer than the heartbeat timeout: every page says the call ended, once', { timeout: 120000 }, async () => {
  // The smallest timeout the server takes is 5 s; 8 s leaves the 5 s heartbeat room.
  const server = await startServer({ env: { RTCROOM_ROOM_HEARTBEAT_TIMEOUT_SECS: '8' } });
  const room = uniqueRoom('outage');
  const pages = [];
  try {
    pages.push(...(await Promise.all(['Ana', 'Ben'].map((n) => joinWatched(browser, server.origin, room, n)))));
    await Promise.all(pages.map((p) => waitForConnectedPeers(p, 1)));
    const uids = await Promise.all(pages.map(uidOf));
    await expectMediaFlowing(pages[0], uids[1]);

    const stoppedAt = Date.now();
    assert.equal(await server.terminate(), 0, server.logs());
    await Promise.all(pages.map((p) => p.waitForFunction(() => document.body.dataset.state === 'ended', null, { timeout: 30000 })));
    const endedAt = Date.now();
    // Back after the pages gave up and after the heartbeat timeout: the rooms it kept are
    // too old to restore.
    await sleep(Math.max(0, stoppedAt + 9000 - Date.now()));
    await server.startAgain();
    await sleep(3000);

    for (const p of pages) {
      assert.equal(await p.locator('#left-title').textContent(), 'The call ended');
      assert.match(await p.locator('#left-detail').textContent(), /could not be reached for too long.*Rejoin to call again/);
      assert.equal(await p.isVisible('#rejoin-button'), true);
      // Straight from the call (through "reconnecting") to the ended screen: no lobby, no
      // attempt to join again by itself.
      const seen = await p.evaluate(() => window.__seen);
      assert.deepEqual(seen, ['in-call||', 'in-call|reconnecting|', 'ended||'], JSON.stringify(seen));
      assert.equal(await p.evaluate(() => window.rtcroom.client), null);
      assert.equal(await p.evaluate(() => window.__pcs.every((e) => e.pc.connectionState === 'closed')), true);
      assert.deepEqual(p.errors, []);
      // A bounded number of the browser's lines for refused connections, none after the end.
      const noisy = p.consoleErrors.filter((e) => !REFUSED.test(e.text));
      assert.deepEqual(noisy, []);
      assert.ok(p.consoleErrors.length <= 20, JSON.stringify(p.consoleErrors));
      assert.ok(p.consoleErrors.every((e) => e.at <= endedAt), JSON.stringify(p.consoleErrors));
    }
    assert.match(server.logs(), /rooms snapshot is ignored .*longer than the heartbeat timeout/, 'the stale rooms snapshot is logged as ignored');

    // The restarted server closed the call's rows as timed out (status 1: had connected).
    for (const [i, uid] of uids.entries()) {
      const rows = await recordedSubSessions(server, uid, { roomId: room, until: (rows) => rows.length === 1 && rows[0].status !== -1 });
      assert.equal(rows[0].remote_user_id, uids[1 - i]);
      assert.equal(rows[0].status, 1, JSON.stringify(rows[0]));
    }
  } finally {
    await Promise.all(pages.map(closePage));
    await server.stop();
  }
});
