// Calls between real headless Chromium pages through the real rtcroom binary.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  closePage, expectMediaFlowing, joinCall, launchBrowser, recordedSubSessions, startServer, tileState,
  uidOf, uniqueRoom, videoFramesGrow, waitForConnectedPeers, waitForTile,
} from './helpers.mjs';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** The same, with every pair forced through the embedded TURN (`iceTransportPolicy: "relay"`). */
/** @type {Awaited<ReturnType<typeof startServer>>} */
let relayServer;
/** @type {import('playwright-core').Browser} */
let browser;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  [server, relayServer, browser] = await Promise.all([
    startServer({ env: { RTCROOM_ROOM_REPORT_STATS_INTERVAL_SECS: '2' } }),
    startServer({ env: { RTCROOM_TURN_ICE_TRANSPORT_POLICY: 'relay' } }),
    launchBrowser(),
  ]);
});

after(async () => {
  await browser?.close();
  await Promise.all([server?.stop(), relayServer?.stop()]);
});

/** The one recorded direction `uid` → `remoteUid` in `room`, once `until(row)` holds. */
async function recordedDirection(srv, room, uid, remoteUid, until, timeout) {
  const rows = await recordedSubSessions(srv, uid, { roomId: room, remoteUid, until: (rows) => rows.length === 1 && until(rows[0]), timeout });
  return rows[0];
}

test('two pages join one room, receive each other\'s audio and video, and the records follow', { timeout: 60000 }, async (t) => {
  const room = uniqueRoom('two');
  const a = await joinCall(browser, server.origin, room, 'Ana');
  const b = await joinCall(browser, server.origin, room, 'Ben');
  try {
    await waitForConnectedPeers(a, 1);
    await waitForConnectedPeers(b, 1);
    const connectedAt = Date.now();
    const [ua, ub] = await Promise.all([uidOf(a), uidOf(b)]);
    await Promise.all([expectMediaFlowing(a, ub), expectMediaFlowing(b, ua)]);
    // Over loopback both sides connect directly and report it.
    assert.equal((await tileState(a, ub)).conn, 'p2p');
    assert.equal((await tileState(b, ua)).conn, 'p2p');
    assert.equal((await tileState(a, ub)).name, 'Ben');
    assert.equal((await tileState(b, ua)).name, 'Ana');

    await t.test('quality rows arrive every 2 s, with receive bitrates above zero', async () => {
      // reportStatsInterval is 2 s: the first tick takes the baseline, then one report per
      // tick, so about 7 s into the call each direction has at least two.
      await sleep(Math.max(0, connectedAt + 7000 - Date.now()));
      for (const [u, r] of [[ua, ub], [ub, ua]]) {
        const row = await recordedDirection(server, room, u, r, (s) => s.quality.reports >= 2, 3000);
        const q = row.quality;
        assert.ok(q.aud_rcv_bitrate.avg > 0 && q.vid_rcv_bitrate.avg > 0, `${u} <- ${r}: ${JSON.stringify(q)}`);
        assert.ok(q.aud_rcv_bitrate.min >= 0 && q.vid_rcv_lost_rate.avg >= 0, JSON.stringify(q));
      }
    });

    await t.test('after both leave, each direction is recorded as connected over STUN', async () => {
      await Promise.all([a, b].map((p) => p.click('#btn-leave')));
      await Promise.all([a, b].map((p) => p.waitForFunction(() => document.body.dataset.state === 'left')));
      for (const [u, r] of [[ua, ub], [ub, ua]]) {
        const row = await recordedDirection(server, room, u, r, (s) => s.status !== -1, 10000);
        assert.equal(row.status, 0, JSON.stringify(row));
        assert.equal(row.connect_type, 'STUN', JSON.stringify(row));
        assert.ok(row.connect_time, `no connect_time: ${JSON.stringify(row)}`);
        assert.ok(row.begin_time <= row.connect_time && row.connect_time <= row.finish_time, JSON.stringify(row));
      }
    });
    assert.deepEqual([...a.errors, ...b.errors], []);
  } finally {
    await Promise.all([closePage(a), closePage(b)]);
  }
});

test('relay only: two pages talk through the embedded TURN, and the records say TURN', { timeout: 60000 }, async () => {
  const room = uniqueRoom('relay');
  const a = await joinCall(browser, relayServer.origin, room, 'Ana');
  const b = await joinCall(browser, relayServer.origin, room, 'Ben');
  try {
    await Promise.all([waitForConnectedPeers(a, 1), waitForConnectedPeers(b, 1)]);
    const [ua, ub] = await Promise.all([uidOf(a), uidOf(b)]);
    assert.equal(await a.evaluate(() => [...window.rtcroom.client.peers.values()][0].pc.getConfiguration().iceTransportPolicy), 'relay');
    await Promise.all([expectMediaFlowing(a, ub), expectMediaFlowing(b, ua)]);
    assert.equal((await tileState(a, ub)).conn, 'relayed');
    assert.equal((await tileState(b, ua)).conn, 'relayed');
    for (const [u, r] of [[ua, ub], [ub, ua]]) {
      const row = await recordedDirection(relayServer, room, u, r, (s) => s.connect_type !== '', 10000);
      assert.equal(row.connect_type, 'TURN', JSON.stringify(row));
      assert.equal(row.ice_ip, '127.0.0.1', JSON.stringify(row));
      assert.ok(row.connect_time, JSON.stringify(row));
    }
    assert.deepEqual([...a.errors, ...b.errors], []);
  } finally {
    await Promise.all([closePage(a), closePage(b)]);
  }
});

/** Keeps only the `turn:...?transport=tcp` URLs of every RTCPeerConnection's config, relay only. */
function turnTcpOnly() {
  const Native = window.RTCPeerConnection;
  function TcpOnly(cfg, ...rest) {
    const iceServers = (cfg?.iceServers || [])
      .map((s) => ({ ...s, urls: [].concat(s.urls).filter((u) => u.startsWith('turn:') && u.endsWith('?transport=tcp')) }))
      .filter((s) => s.urls.length > 0);
    window.__iceUrls = iceServers.flatMap((s) => s.urls);
    return new Native({ ...cfg, iceServers, iceTransportPolicy: 'relay' }, ...rest);
  }
  TcpOnly.prototype = Native.prototype;
  Object.setPrototypeOf(TcpOnly, Native);
  window.RTCPeerConnection = TcpOnly;
}

/** The selected candidate pair's local candidate towards `uid`: its type and relay protocol. */
function selectedLocal(page, uid) {
  return page.evaluate(async (uid) => {
    const report = await window.rtcroom.client.getStats(uid);
    let pairId;
    report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
    const local = pairId && report.get(report.get(pairId).localCandidateId);
    return { type: local?.candidateType, relayProtocol: local?.relayProtocol };
  }, uid);
}

test('relay only over TURN/TCP: with only the ?transport=tcp URL the pages talk, and the records say TURN', { timeout: 60000 }, async () => {
  const room = uniqueRoom('relay-tcp');
  const a = await joinCall(browser, relayServer.origin, room, 'Ana', { init: turnTcpOnly });
  const b = await joinCall(browser, relayServer.origin, room, 'Ben', { init: turnTcpOnly });
  try {
    await Promise.all([waitForConnectedPeers(a, 1), waitForConnectedPeers(b, 1)]);
    const [ua, ub] = await Promise.all([uidOf(a), uidOf(b)]);
    for (const p of [a, b]) {
      const urls = await p.evaluate(() => window.__iceUrls);
      assert.equal(urls.length, 1, JSON.stringify(urls));
      assert.match(urls[0], /^turn:127\.0\.0\.1:\d+\?transport=tcp$/);
    }
    await Promise.all([expectMediaFlowing(a, ub), expectMediaFlowing(b, ua)]);
    assert.deepEqual(await selectedLocal(a, ub), { type: 'relay', relayProtocol: 'tcp' });
    assert.deepEqual(await selectedLocal(b, ua), { type: 'relay', relayProtocol: 'tcp' });
    for (const [u, r] of [[ua, ub], [ub, ua]]) {
      const row = await recordedDirection(relayServer, room, u, r, (s) => s.connect_type !== '', 10000);
      assert.equal(row.connect_type, 'TURN', JSON.stringify(row));
      assert.ok(row.connect_time, JSON.stringify(row));
    }
    assert.deepEqual([...a.errors, ...b.errors], []);
  } finally {
    await Promise.all([closePage(a), closePage(b)]);
  }
});

test('three pages connect in a mesh, a fourth is told the room is full, one leaves', { timeout: 90000 }, async (t) => {
  const room = uniqueRoom('three');
  const pages = [];
  try {
    // All at once: who offers to whom depends on the order the server saw the joins.
    pages.push(...(await Promise.all(['Ana', 'Ben', 'Chloé'].map((name) => joinCall(browser, server.origin, room, name)))));
    const uids = await Promise.all(pages.map(uidOf));

    await t.test('each page has two connected peers with media', async () => {
      await Promise.all(pages.map((p) => waitForConnectedPeers(p, 2)));
      await Promise.all(pages.map((p, i) => expectMediaFlowing(p, uids[(i + 1) % 3], ['video'])));
    });

    await t.test('a fourth page sees the full-room message', async () => {
      const d = await joinCall(browser, server.origin, room, 'Dan');
      try {
        assert.equal(await d.evaluate(() => document.body.dataset.state), 'refused');
        const alert = await d.evaluate(() => {
          const el = document.querySelector('#lobby-error');
          return { hidden: el.hidden, code: el.dataset.code, text: el.textContent };
        });
        assert.equal(alert.hidden, false);
        assert.equal(alert.code, '1');
        assert.match(alert.text, /room is full/i);
        assert.match(alert.text, /up to 3 people/);
      } finally {
        await closePage(d);
      }
      // The three are undisturbed.
      await Promise.all(pages.map((p) => waitForConnectedPeers(p, 2)));
    });

    await t.test('one leaves and the others see it go', async () => {
      await pages[2].click('#btn-leave');
      await pages[2].waitForFunction(() => document.body.dataset.state === 'left');
      await Promise.all(pages.slice(0, 2).map((p) => p.waitForFunction((gone) => !document.querySelector(`#grid .tile[data-uid="${gone}"]`), uids[2], { timeout: 10000 })));
      await waitForConnectedPeers(pages[0], 1);
      await waitForConnectedPeers(pages[1], 1);
      assert.equal(await pages[0].locator('#people-count').textContent(), '2 people');
    });
  } finally {
    await Promise.all(pages.map(closePage));
  }
});

test('camera off, microphone off and screen share show on the other side', { timeout: 60000 }, async () => {
  const room = uniqueRoom('devices');
  const [a, b] = await Promise.all([joinCall(browser, server.origin, room, 'Ana'), joinCall(browser, server.origin, room, 'Ben')]);
  try {
    await waitForConnectedPeers(a, 1);
    await waitForConnectedPeers(b, 1);
    const ua = await uidOf(a);
    await waitForTile(b, ua, { camera: 'on', mic: 'on', screen: 'off' });
    await videoFramesGrow(b, ua, true);

    await a.click('#btn-cam');
    await waitForTile(b, ua, { camera: 'off' });
    assert.equal(await a.getAttribute('#btn-cam', 'aria-pressed'), 'false');
    assert.equal(await b.locator(`.tile[data-uid="${ua}"] .avatar`).isVisible(), true);
    await videoFramesGrow(b, ua, false);

    await a.click('#btn-mic');
    await waitForTile(b, ua, { mic: 'off' });
    assert.equal(await b.locator(`.tile[data-uid="${ua}"] .badge.mic-off`).isVisible(), true);

    // The fake capture of Chromium answers getDisplayMedia without a picker.
    await a.click('#btn-screen');
    await waitForTile(b, ua, { screen: 'on' });
    assert.equal(await b.locator(`.tile[data-uid="${ua}"] .badge.sharing`).isVisible(), true);
    await videoFramesGrow(b, ua, true);

    await a.click('#btn-screen');
    await waitForTile(b, ua, { screen: 'off', camera: 'off' });
    await a.click('#btn-cam');
    await a.click('#btn-mic');
    await waitForTile(b, ua, { camera: 'on', mic: 'on' });
    await videoFramesGrow(b, ua, true);
  } finally {
    await Promise.all([closePage(a), closePage(b)]);
  }
});

test('without a camera, or with camera and microphone refused, the page joins with what there is', { timeout: 60000 }, async () => {
  const room = uniqueRoom('nocam');
  // getUserMedia as on a machine without a camera, and as after the user said no.
  const noCamera = () => {
    const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = (c) => (c && c.video ? Promise.reject(new DOMException('Requested device not found', 'NotFoundError')) : real(c));
  };
  const refused = () => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
  };
  const [a, b, c] = await Promise.all([
    joinCall(browser, server.origin, room, 'Ana', { init: noCamera }),
    joinCall(browser, server.origin, room, 'Ben'),
    joinCall(browser, server.origin, room, 'Cai', { init: refused }),
  ]);
  try {
    for (const p of [a, b, c]) assert.equal(await p.evaluate(() => document.body.dataset.state), 'in-call');
    assert.equal(await a.evaluate(() => window.rtcroom.client.talkType), 0);
    assert.match(await a.locator('#toasts').textContent(), /No camera found — you are in the call with audio only/);
    // One message for both devices, not two that contradict each other.
    const warnings = await c.$$eval('#toasts .toast.warn', (els) => els.map((e) => e.textContent));
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0], /Permission for the camera and microphone was denied/);
    const [ua, uc] = await Promise.all([uidOf(a), uidOf(c)]);
    await waitForConnectedPeers(b, 2);
    await waitForTile(b, ua, { camera: 'off' });
    await waitForTile(b, uc, { camera: 'off', mic: 'off' });
    await expectMediaFlowing(b, ua, ['audio']);
    // The one without devices still receives the others.
    await waitForConnectedPeers(c, 2);
    await expectMediaFlowing(c, await uidOf(b), ['audio', 'video']);
  } finally {
    await Promise.all([closePage(a), closePage(b), closePage(c)]);
  }
});
