// rtcroom nodes with [cluster] on a private Redis and one MariaDB database, behind a real
// HAProxy (round robin, no sticky sessions; cluster-helpers.mjs writes its configuration).
// Needs redis-server and haproxy (scripts/deps/cluster.sh) and MariaDB on 127.0.0.1:3306.
//
// kill -9: two pages call each other, each on another node; `kill -9` of the node the first
// page is on (the room's owner, since that page joined first): that page is back in the
// call, resumed, within 5 s, the other page never rebuilds its RTCPeerConnection, media
// flows, and the records of the call have every row exactly once.
//
// Rolling restart: three nodes, three pages in one call; each node in turn gets SIGTERM
// (it drains: hands its rooms over, closes its sockets with 1012), is started again and is
// back in HAProxy's rotation before the next one. No page ever leaves the call or rebuilds a
// peer connection, media from every member keeps arriving, and the records hold each
// session and sub-session once, open until the pages leave.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  closePage, expectMediaFlowing, expectUntouched, joinCall, joinWatched, launchBrowser,
  snapshotOf, tagPeerConnections, uidOf, uniqueRoom, waitForConnectedPeers,
} from './helpers.mjs';
import { metric, roomRows, sessions, startCluster, until } from './cluster-helpers.mjs';

/** @type {import('playwright-core').Browser} */
let browser;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

test('kill -9 of a node behind HAProxy: its page resumes within 5 s, the other page never notices', { timeout: 180000 }, async (t) => {
  const cluster = await startCluster(2);
  const { nodes, lb } = cluster;
  const pages = [];
  try {
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
    await cluster.stop();
  }
});

test('a rolling restart of three nodes behind HAProxy during a three-party call: no page leaves the call', { timeout: 240000 }, async (t) => {
  const cluster = await startCluster(3);
  const { nodes, lb } = cluster;
  const pages = [];
  try {
    const room = uniqueRoom('rolling');
    // One page's socket on each node: a page that round robin put where another page is
    // leaves, and joins again after one more request through HAProxy (which moves its
    // rotation on by one).
    const sockets = () => Promise.all(nodes.map((n) => metric(n, 'rtcroom_open_connections')));
    for (const name of ['Ana', 'Ben', 'Chloé']) {
      for (let attempt = 0; ; attempt++) {
        const page = await joinWatched(browser, lb.origin, room, name);
        if ((await sockets()).every((c) => c <= 1)) {
          pages.push(page);
          break;
        }
        assert.ok(attempt < 8, 'round robin never put a page on a node of its own');
        await page.click('#btn-leave');
        await page.waitForFunction(() => document.body.dataset.state === 'left');
        await closePage(page);
        await until('the page to be gone', async () => (await sockets()).reduce((a, b) => a + b, 0) === pages.length);
        await fetch(`${lb.origin}/healthz`);
      }
    }
    await Promise.all(pages.map((p) => waitForConnectedPeers(p, 2)));
    const uids = await Promise.all(pages.map(uidOf));
    await Promise.all(pages.flatMap((p, i) => uids.filter((_, j) => j !== i).map((u) => expectMediaFlowing(p, u))));
    t.diagnostic(`sockets per node before: ${await sockets()}`);
    const before = await Promise.all(pages.map(snapshotOf));

    const firstTerm = Date.now();
    for (const [i, node] of nodes.entries()) {
      const at = Date.now();
      assert.equal(await node.terminate(), 0, node.logs());
      const exited = Date.now();
      // As a rolling upgrade goes: the load balancer has seen it go before it comes back.
      await lb.down(i);
      await node.startAgain();
      await until(`n${i} to be ready again`, async () => (await fetch(`${node.binOrigin}/readyz`)).status === 200, 30000);
      await lb.allUp();
      const ready = Date.now();
      // Every page is in the call on a live socket again before the next node goes.
      await until('every page back in the call', async () => {
        const joined = await Promise.all(pages.map((p) => p.evaluate(() => window.rtcroom.client.state === 'joined')));
        return joined.every((j) => j) && (await sockets()).reduce((a, b) => a + b, 0) === pages.length;
      }, 30000);
      t.diagnostic(`n${i}: drained and exited in ${exited - at} ms, ready in HAProxy ${ready - at} ms, every page back ${Date.now() - at} ms after SIGTERM; sockets per node: ${await sockets()}`);
    }
    t.diagnostic(`the rolling restart took ${Date.now() - firstTerm} ms`);

    // Every page resumed its own session each time its socket was closed (at least once:
    // every node it sat on went away in turn), and kept everything else.
    for (const [i, p] of pages.entries()) {
      const r = await p.evaluate(() => window.__reconnects);
      assert.ok(r.length >= 1, `page ${i} never reconnected`);
      assert.deepEqual(r, r.map(() => ({ resumed: true, sessionId: before[i].sessionId })), JSON.stringify(r));
    }
    await expectUntouched(pages, uids, before);

    // The records: each member's session and each direction's sub-session once, all open.
    // (Pages that round robin put on a node taken already met the call too, and left: only
    // the rows of the three members and between them count here.)
    const pairs = uids.flatMap((u) => uids.filter((r) => r !== u).map((r) => [u, r]));
    const ours = (r) => ({
      sessions: r.sessions.filter((x) => uids.includes(x.uid)),
      subs: r.subs.filter((x) => uids.includes(x.uid) && uids.includes(x.remote)),
    });
    let rows = await (async () => {
      let r;
      await until('the rows of the call', () => {
        r = ours(roomRows(cluster.db, room));
        return r.sessions.length >= uids.length && r.subs.length >= pairs.length && r.subs.every((s) => s.connected);
      }, 20000);
      return r;
    })();
    assert.equal(rows.sessions.length, uids.length, JSON.stringify(rows.sessions));
    assert.equal(rows.subs.length, pairs.length, JSON.stringify(rows.subs));
    assert.ok(rows.sessions.every((s) => s.left === null), `a session was closed during the call: ${JSON.stringify(rows.sessions)}`);
    assert.ok(rows.subs.every((s) => s.finished === null && s.status === -1), `a sub-session was closed during the call: ${JSON.stringify(rows.subs)}`);

    const leftAt = Date.now();
    await Promise.all(pages.map((p) => p.click('#btn-leave')));
    await Promise.all(pages.map((p) => p.waitForFunction(() => document.body.dataset.state === 'left')));
    for (const p of pages) assert.deepEqual(p.errors, []);
    await until('every row closed', () => {
      rows = ours(roomRows(cluster.db, room));
      return rows.sessions.every((s) => s.left !== null) && rows.subs.every((s) => s.finished !== null && s.status !== -1);
    }, 20000);
    assert.equal(rows.sessions.length, uids.length, JSON.stringify(rows.sessions));
    assert.equal(rows.subs.length, pairs.length, JSON.stringify(rows.subs));
    // Stored times have milliseconds; the test's and the server's clocks are the machine's.
    for (const [i, uid] of uids.entries()) {
      const mine = rows.sessions.filter((s) => s.uid === uid);
      assert.equal(mine.length, 1, `one session of ${uid}: ${JSON.stringify(rows.sessions)}`);
      assert.equal(mine[0].id, before[i].sessionId);
      assert.equal(mine[0].timeOut, false, JSON.stringify(mine[0]));
      assert.ok(mine[0].left >= leftAt, `${uid}'s session closed at the leave, not before: ${JSON.stringify(mine[0])}`);
      for (const remote of uids.filter((r) => r !== uid)) {
        const sub = rows.subs.filter((s) => s.uid === uid && s.remote === remote);
        assert.equal(sub.length, 1, `one sub-session ${uid}->${remote}: ${JSON.stringify(rows.subs)}`);
        assert.equal(sub[0].session, mine[0].id, JSON.stringify(sub[0]));
        assert.equal(mine[0].subIds.filter((id) => id === sub[0].id).length, 1, `the session lists its sub-session once: ${JSON.stringify(mine[0])}`);
        assert.equal(sub[0].status, 0, `connected and left: ${JSON.stringify(sub[0])}`);
        assert.ok(sub[0].connected < firstTerm, `connected before the rolling restart: ${JSON.stringify(sub[0])}`);
        assert.ok(sub[0].finished >= leftAt, `finished at the leave, not before: ${JSON.stringify(sub[0])}`);
      }
    }
  } finally {
    await Promise.all(pages.map(closePage));
    await cluster.stop();
  }
});
