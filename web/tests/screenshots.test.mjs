// Screenshots of the page in each of its states, kept by every test run in
// web/test-results/screenshots/ (for a reviewer to look at). RTCROOM_SCREENSHOTS names another
// folder: RTCROOM_SCREENSHOTS=docs/screenshots web/run-e2e.sh retakes docs/web.md's images.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  REPO_DIR, closePage, joinCall, launchBrowser, openPage, startServer, uidOf, uniqueRoom,
  waitForConnectedPeers, waitForTile,
} from './helpers.mjs';

const OUT = path.resolve(REPO_DIR, process.env.RTCROOM_SCREENSHOTS || 'web/test-results/screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let server;
let browser;

before(async () => {
  await mkdir(OUT, { recursive: true });
  [server, browser] = await Promise.all([startServer(), launchBrowser()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const shot = (page, name) => page.screenshot({ path: path.join(OUT, name), animations: 'disabled' });

test('screenshots of the lobby, a call, the participant list, a full room, the left screen and a bad link', { timeout: 90000 }, async () => {
  const room = 'design-review';
  const lobby = await openPage(browser, `${server.origin}/?room=${room}`, { viewport: DESKTOP, lightVideo: false });
  await lobby.fill('#name-input', 'Ana');
  await lobby.waitForFunction(() => document.querySelector('#preview').dataset.camera === 'on' && document.querySelector('#preview-video').videoWidth > 0);
  await sleep(500);
  await shot(lobby, 'lobby-desktop.png');
  await lobby.setViewportSize(PHONE);
  await shot(lobby, 'lobby-phone.png');
  await closePage(lobby);

  const ana = await joinCall(browser, server.origin, room, 'Ana Souza', { viewport: DESKTOP, lightVideo: false });
  await sleep(800);
  await shot(ana, 'call-alone-desktop.png');
  const ben = await joinCall(browser, server.origin, room, 'Ben Okafor', { viewport: PHONE, lightVideo: false });
  const chloe = await joinCall(browser, server.origin, room, 'Chloé Martin', { viewport: DESKTOP, lightVideo: false });
  const pages = [ana, ben, chloe];
  try {
    await Promise.all(pages.map((p) => waitForConnectedPeers(p, 2)));
    const [ub, uc] = await Promise.all([uidOf(ben), uidOf(chloe)]);
    await ben.click('#btn-mic');
    await chloe.click('#btn-cam');
    await waitForTile(ana, ub, { mic: 'off' });
    await waitForTile(ana, uc, { camera: 'off' });
    await sleep(1500); // let the videos settle
    await shot(ana, 'call-desktop.png');
    await shot(ben, 'call-phone.png');

    // The participant list, and the connection details of one of them.
    await ana.waitForFunction((ub) => document.querySelector(`#grid .tile[data-uid="${ub}"]`).dataset.quality !== 'unknown', ub, { timeout: 15000 });
    await ana.click('#btn-people');
    await ana.click(`#grid .tile[data-uid="${ub}"] .conn`);
    await ana.waitForSelector('#quality-details:not([hidden])');
    await shot(ana, 'call-people-desktop.png');
    await ana.click('#people-close');
    await ana.keyboard.press('Escape');

    await chloe.click('#btn-screen');
    await waitForTile(ana, uc, { screen: 'on' });
    await sleep(1500);
    await shot(ana, 'call-sharing-desktop.png');
    await waitForTile(ben, uc, { screen: 'on' });
    await shot(ben, 'call-sharing-phone.png');

    const dan = await joinCall(browser, server.origin, room, 'Dan', { viewport: PHONE, lightVideo: false });
    assert.equal(await dan.evaluate(() => document.body.dataset.state), 'refused');
    await shot(dan, 'room-full-phone.png');
    await closePage(dan);

    await chloe.click('#btn-leave');
    await chloe.waitForFunction(() => document.body.dataset.state === 'left');
    await shot(chloe, 'left-desktop.png');

    const bad = await openPage(browser, `${server.origin}/?room=${encodeURIComponent('team meeting!')}&name=Eve`, { viewport: PHONE, lightVideo: false });
    await bad.waitForFunction(() => document.body.dataset.state === 'invalid-link');
    await shot(bad, 'invalid-link-phone.png');
    await closePage(bad);
  } finally {
    await Promise.all(pages.map(closePage));
  }
});
