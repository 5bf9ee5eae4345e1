// The SDK on the wire: what it sends and when, reconnects, ICE restarts, kicks and refusals.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  closePage, expectMediaFlowing, frames, joinCall, launchBrowser, openPage, recordFrames, startServer,
  uidOf, uniqueRoom, waitForConnectedPeers, waitForTile,
} from './helpers.mjs';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  [server, browser] = await Promise.all([
    startServer({ front: true, env: { RTCROOM_ROOM_REPORT_STATS_INTERVAL_SECS: '1' } }),
    launchBrowser(),
  ]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const rec = { init: recordFrames };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('the SDK speaks the protocol: keepLive, who offers, candidates, peerConnected, reportStats', { timeout: 60000 }, async () => {
  const room = uniqueRoom('wire');
  const a = await joinCall(browser, server.origin, room, 'Ana', rec);
  const b = await joinCall(browser, server.origin, room, 'Ben', rec);
  try {
    await Promise.all([waitForConnectedPeers(a, 1), waitForConnectedPeers(b, 1)]);
    const [ua, ub] = await Promise.all([uidOf(a), uidOf(b)]);
    // Stats go out every reportStatsInterval (1 s here) once a pair is connected.
    await b.waitForFunction(() => window.__frames.some((f) => f.dir === 'out' && f.m.cmd === 'reportStats'), null, { timeout: 10000 });
    await a.waitForFunction(() => window.__frames.filter((f) => f.dir === 'out' && f.m.cmd === 'reportStats').length >= 2, null, { timeout: 10000 });

    const outA = await frames(a, 'out');
    const outB = await frames(b, 'out');
    const inA = await frames(a, 'in');
    const inB = await frames(b, 'in');

    // join first, keepLive right after respJoin.
    assert.equal(outA[0].m.cmd, 'join');
    assert.equal(outA[0].m.appId, '10000');
    assert.equal(outA[0].m.token.split('.').length, 3, 'the token from /api/login');
    assert.equal(outA[0].m.talkType, 1);
    assert.equal(outA[1].m.cmd, 'keepLive');
    const respJoinB = inB.find((f) => f.m.cmd === 'respJoin').m;
    assert.equal(respJoinB.result, 0);
    assert.deepEqual(respJoinB.userList.map((u) => String(u.uid)), [ua]);

    // The member already there offers; the newcomer only answers.
    const offers = outA.filter((f) => f.m.cmd === 'offer');
    assert.equal(offers.length, 1);
    assert.equal(offers[0].m.remoteUid, ub);
    assert.equal(offers[0].m.isIceReset, false);
    assert.equal(JSON.parse(offers[0].m.msg).type, 'offer');
    assert.equal(outB.filter((f) => f.m.cmd === 'offer').length, 0);
    const answer = outB.find((f) => f.m.cmd === 'answer');
    assert.equal(answer.m.remoteUid, ua);
    assert.equal(JSON.parse(answer.m.msg).type, 'answer');

    // Candidates in the browser's form, as a JSON string.
    const cand = outB.find((f) => f.m.cmd === 'candidate');
    const c = JSON.parse(cand.m.msg);
    assert.deepEqual(Object.keys(c).sort(), ['candidate', 'sdpMLineIndex', 'sdpMid', 'usernameFragment']);
    assert.match(c.candidate, /^candidate:/);

    // Each side says it connected, and how (direct over loopback).
    for (const [out, remote] of [[outA, ub], [outB, ua]]) {
      const pc = out.filter((f) => f.m.cmd === 'peerConnected');
      assert.equal(pc.length, 1);
      assert.equal(pc[0].m.remoteUid, remote);
      assert.equal(pc[0].m.connectType, 'STUN');
    }

    // reportStats names the remote and the sender's own sub-session.
    const subAB = inA.find((f) => f.m.cmd === 'respOffer').m.subSessionId;
    const subBA = inB.find((f) => f.m.cmd === 'relayOffer').m.subSessionId;
    assert.match(subAB, /^[0-9A-Z]{26}$/);
    const statsA = outA.filter((f) => f.m.cmd === 'reportStats').map((f) => f.m);
    const statsB = outB.filter((f) => f.m.cmd === 'reportStats').map((f) => f.m);
    assert.equal(statsA[0].remoteUid, ub);
    assert.equal(statsA[0].subSessionId, subAB);
    assert.equal(statsB[0].subSessionId, subBA);
    const s = statsA[statsA.length - 1];
    assert.ok(s.audio.send.bitRate > 0 && s.audio.recv.bitRate > 0, JSON.stringify(s.audio));
    assert.ok(s.video.send.bitRate > 0 && s.video.recv.bitRate > 0, JSON.stringify(s.video));
    assert.ok(s.video.recv.width > 0 && s.video.recv.height > 0);
    assert.ok(s.video.send.frameRateSent > 0);
    assert.match(s.video.recv.codecName, /^(VP8|VP9|H264|AV1)$/);
    assert.match(s.audio.recv.packetsLostRate, /^\d+\.\d\d$/);

    // No error answers came back to anything the SDK sent.
    const errors = [...inA, ...inB].filter((f) => typeof f.m.result === 'number' && f.m.result !== 0);
    assert.deepEqual(errors, []);
  } finally {
    await Promise.all([closePage(a), closePage(b)]);
  }
});

test('after a network drop both pages resume with their resume keys and the call goes on', { timeout: 60000 }, async () => {
  const room = uniqueRoom('drop');
  const [a, b] = await Promise.all([joinCall(browser, server.origin, room, 'Ana', rec), joinCall(browser, server.origin, room, 'Ben', rec)]);
  try {
    await Promise.all([waitForConnectedPeers(a, 1), waitForConnectedPeers(b, 1)]);
    const [ua, ub] = await Promise.all([uidOf(a), uidOf(b)]);
    await a.click('#btn-mic');
    await waitForTile(b, ua, { mic: 'off' });
    assert.ok(server.dropWebSockets() >= 2);
    // Each page resumes (a second join with its uid and resume key) and keeps its peer
    // connection: the server tells nobody, so nobody offers again.
    for (const p of [a, b]) {
      await p.waitForFunction(() => window.__frames.filter((f) => f.dir === 'in' && f.m.cmd === 'respJoin' && f.m.result === 0).length === 2, null, { timeout: 15000 });
      const resumed = (await frames(p, 'in', 'respJoin')).map((f) => f.m.resumed);
      assert.deepEqual(resumed, [false, true]);
      const keys = (await frames(p, 'out', 'join')).map((f) => typeof f.m.resumeKey);
      assert.deepEqual(keys, ['undefined', 'string']);
    }
    await Promise.all([waitForConnectedPeers(a, 1), waitForConnectedPeers(b, 1)]);
    assert.equal(await uidOf(a), ua);
    assert.equal(await uidOf(b), ub);
    const joins = (await frames(a, 'out', 'join')).map((f) => f.m.uid);
    assert.deepEqual(joins, [ua, ua]);
    await Promise.all([expectMediaFlowing(a, ub), expectMediaFlowing(b, ua)]);
    assert.equal(await a.evaluate(() => document.body.dataset.state), 'in-call');
    // What the others knew about the devices survives the drop.
    await waitForTile(b, ua, { mic: 'off', camera: 'on' });
  } finally {
    await Promise.all([closePage(a), closePage(b)]);
  }
});

test('the initiator restarts ICE with isIceReset and the call stays up', { timeout: 60000 }, async () => {
  const room = uniqueRoom('ice');
  const a = await joinCall(browser, server.origin, room, 'Ana', rec);
  const b = await joinCall(browser, server.origin, room, 'Ben', rec);
  try {
    await Promise.all([waitForConnectedPeers(a, 1), waitForConnectedPeers(b, 1)]);
    const [ua, ub] = await Promise.all([uidOf(a), uidOf(b)]);
    // What a failed connection triggers; the newcomer (b) never restarts.
    const restartedByB = await b.evaluate((ua) => {
      const c = window.rtcroom.client;
      const p = c.peers.get(ua);
      c.restartIce(p, p.pc);
      return window.__frames.some((f) => f.dir === 'out' && f.m.cmd === 'offer');
    }, ua);
    assert.equal(restartedByB, false);
    await a.evaluate((ub) => {
      const c = window.rtcroom.client;
      const p = c.peers.get(ub);
      c.restartIce(p, p.pc);
    }, ub);
    await b.waitForFunction(() => window.__frames.filter((f) => f.dir === 'out' && f.m.cmd === 'answer').length === 2, null, { timeout: 10000 });
    const reset = (await frames(b, 'in', 'relayOffer')).map((f) => f.m.isIceReset);
    assert.deepEqual(reset, [false, true]);
    await sleep(500);
    await Promise.all([waitForConnectedPeers(a, 1), waitForConnectedPeers(b, 1)]);
    await Promise.all([expectMediaFlowing(a, ub), expectMediaFlowing(b, ua)]);
  } finally {
    await Promise.all([closePage(a), closePage(b)]);
  }
});

test('a kicked page says so, and the others see it leave', { timeout: 60000 }, async () => {
  const room = uniqueRoom('kick');
  const [a, b] = await Promise.all([joinCall(browser, server.origin, room, 'Ana'), joinCall(browser, server.origin, room, 'Ben')]);
  try {
    await Promise.all([waitForConnectedPeers(a, 1), waitForConnectedPeers(b, 1)]);
    const ub = await uidOf(b);
    const r = await fetch(`${server.binOrigin}/api/rooms/10000/${room}/kick`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ uid: ub, reason: 'the meeting is over' }),
    });
    assert.equal(r.status, 200);
    await b.waitForFunction(() => document.body.dataset.state === 'ended', null, { timeout: 10000 });
    const text = await b.locator('#lobby-error').textContent();
    assert.match(text, /Removed from the call/);
    assert.match(text, /the meeting is over/);
    await a.waitForFunction((ub) => !document.querySelector(`#grid .tile[data-uid="${ub}"]`), ub, { timeout: 10000 });
    // A kicked page does not come back by itself.
    await sleep(1000);
    assert.equal(await b.evaluate(() => window.rtcroom.client), null);
    assert.equal(await a.locator('#grid .tile').count(), 1);
  } finally {
    await Promise.all([closePage(a), closePage(b)]);
  }
});

test('a refused token (result 12) is explained on the page', { timeout: 60000 }, async () => {
  // A login that hands out a forged token, as a broken app backend would.
  const forged = async (page) => {
    await page.route('**/api/login', (route) => route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ protocol: 'resp', cmd: 'respLogin', result: 0, desc: 'ok', roomServer: '', token: 'eyJhbGciOiJIUzI1NiJ9.eyJhcHAiOiIxMDAwMCJ9.forged', expireAt: 0 }),
    }));
  };
  const room = uniqueRoom('token');
  const page = await openPage(browser, 'about:blank');
  try {
    await forged(page);
    await page.goto(`${server.origin}/?room=${room}&name=Ana`);
    await page.waitForFunction(() => document.body.dataset.state === 'refused', null, { timeout: 15000 });
    const alert = await page.evaluate(() => ({ code: document.querySelector('#lobby-error').dataset.code, text: document.querySelector('#lobby-error').textContent }));
    assert.equal(alert.code, '12');
    assert.match(alert.text, /Access refused/);
    // The devices were released: no camera left open after a refused join.
    assert.equal(await page.evaluate(() => window.rtcroom.client), null);
  } finally {
    await closePage(page);
  }
});

test('tokens are renewed on systemPromptToken; a page that cannot renew is removed at expiry', { timeout: 60000 }, async () => {
  // Tokens live 6 s and the prompt comes 3 s before expiry.
  const short = await startServer({ env: { RTCROOM_AUTH_TOKEN_TTL_SECS: '6', RTCROOM_AUTH_TOKEN_PROMPT_SECS: '3' } });
  const room = uniqueRoom('renew');
  let a;
  let b;
  try {
    a = await joinCall(browser, short.origin, room, 'Ana', rec);
    // Ben's login works once, then the login server is down for him.
    b = await openPage(browser, 'about:blank', rec);
    let logins = 0;
    await b.route('**/api/login', (route) => (++logins === 1 ? route.continue() : route.fulfill({ status: 503, body: 'down' })));
    await b.goto(`${short.origin}/?room=${room}&name=Ben`);
    await b.waitForFunction(() => document.body.dataset.state === 'in-call', null, { timeout: 15000 });
    const ub = await uidOf(b);
    await waitForConnectedPeers(a, 1);

    await a.waitForFunction(() => window.__frames.filter((f) => f.dir === 'in' && f.m.cmd === 'respUpdateToken' && f.m.result === 0).length >= 2, null, { timeout: 20000 });
    const prompts = await frames(a, 'in', 'systemPromptToken');
    assert.ok(prompts.length >= 2);
    const updates = await frames(a, 'out', 'updateToken');
    assert.ok(updates.every((f) => typeof f.m.token === 'string' && f.m.token.split('.').length === 3));
    assert.notEqual(updates[0].m.token, updates[1].m.token);

    await b.waitForFunction(() => document.body.dataset.state === 'ended', null, { timeout: 15000 });
    assert.match(await b.locator('#lobby-error').textContent(), /token is expire/);
    assert.equal((await frames(b, 'in', 'systemKickUser')).length, 1);
    await a.waitForFunction((ub) => !document.querySelector(`#grid .tile[data-uid="${ub}"]`), ub, { timeout: 10000 });
    assert.equal(await a.evaluate(() => document.body.dataset.state), 'in-call');
  } finally {
    await Promise.all([closePage(a), closePage(b)]);
    await short.stop();
  }
});

test('an app that mints its own tokens (fetchToken) joins with them instead of the built-in login', { timeout: 30000 }, async () => {
  const room = uniqueRoom('fetch');
  // Stands in for the app's backend: here it asks the login endpoint itself.
  const ownBackend = () => {
    window.rtcroomConfig = {
      ...window.rtcroomConfig,
      fetchToken: async ({ appId, uid }) => {
        window.__fetchTokenCalls = (window.__fetchTokenCalls || 0) + 1;
        const r = await fetch('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ appId, uid, url: location.href }) });
        return (await r.json()).token;
      },
    };
  };
  const page = await joinCall(browser, server.origin, room, 'Ana', { init: ownBackend });
  try {
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'in-call');
    assert.equal(await page.evaluate(() => window.__fetchTokenCalls), 1);
  } finally {
    await closePage(page);
  }
});
