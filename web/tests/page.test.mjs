// The page's own controls in headless Chromium (fake camera and microphones) through the
// real binary: the pre-join preview and device lists, the participant list, the quality
// indicator with its details, the "you left" screen with Rejoin, room links that cannot be
// used, devices refused and sound blocked by the browser.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  closePage, joinCall, launchBrowser, openPage, startServer, uidOf, uniqueRoom, waitForConnectedPeers,
} from './helpers.mjs';

let server;
let browser;

before(async () => {
  [server, browser] = await Promise.all([startServer(), launchBrowser()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The labels of a device list, and its selected value. */
function deviceList(page, sel) {
  return page.evaluate((sel) => {
    const el = /** @type {HTMLSelectElement} */ (document.querySelector(sel));
    return { labels: [...el.options].map((o) => o.textContent), ids: [...el.options].map((o) => o.value), value: el.value, disabled: el.disabled };
  }, sel);
}

/** Names in the participant list, after opening it. */
async function peopleNames(page) {
  if ((await page.getAttribute('#btn-people', 'aria-expanded')) !== 'true') await page.click('#btn-people');
  return page.$$eval('#people-list li .p-name', (els) => els.map((e) => e.textContent));
}

test('the lobby previews the camera, lists the fake devices and switches them', { timeout: 60000 }, async () => {
  const page = await openPage(browser, `${server.origin}/?room=${uniqueRoom('preview')}`);
  try {
    await page.waitForFunction(() => document.querySelector('#preview').dataset.camera === 'on' && document.querySelector('#preview-video').videoWidth > 0, null, { timeout: 15000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), undefined, 'the preview does not join');

    await page.waitForFunction(() => document.querySelector('#pre-microphone').options.length >= 3);
    const cams = await deviceList(page, '#pre-camera');
    assert.ok(cams.labels.includes('fake_device_0'), JSON.stringify(cams));
    assert.equal(cams.disabled, false);
    const mics = await deviceList(page, '#pre-microphone');
    assert.ok(mics.labels.includes('Fake Audio Input 1') && mics.labels.includes('Fake Audio Input 2'), JSON.stringify(mics));
    const speakers = await deviceList(page, '#pre-speaker');
    assert.ok(speakers.labels.includes('Fake Audio Output 1'), JSON.stringify(speakers));

    // Another microphone: the preview's track now comes from it, and the list says so.
    const other = mics.ids[mics.labels.indexOf('Fake Audio Input 2')];
    await page.selectOption('#pre-microphone', other);
    await page.waitForFunction((id) => window.rtcroom.preview.tracks.microphone?.getSettings().deviceId === id, other);
    assert.equal((await deviceList(page, '#pre-microphone')).value, other);
    assert.equal(await page.evaluate(() => localStorage.getItem('rtcroom.audioinput')), other);

    // The camera button turns the camera off (released: no track) and on again.
    await page.click('#pre-cam-btn');
    await page.waitForFunction(() => document.querySelector('#preview').dataset.camera === 'off');
    assert.equal(await page.evaluate(() => window.rtcroom.preview.tracks.camera), null);
    assert.equal(await page.getAttribute('#pre-cam-btn', 'aria-pressed'), 'false');
    assert.equal(await page.isChecked('#pre-cam'), false);
    assert.match(await page.textContent('#preview-status'), /Camera is off/);
    await page.click('#pre-cam-btn');
    await page.waitForFunction(() => document.querySelector('#preview').dataset.camera === 'on');

    // The microphone switch is a keyboard-reachable checkbox with a label.
    await page.focus('#pre-mic');
    await page.keyboard.press('Space');
    await page.waitForFunction(() => window.rtcroom.preview.tracks.microphone && !window.rtcroom.preview.tracks.microphone.enabled);
    assert.equal(await page.getAttribute('#pre-mic-btn', 'aria-pressed'), 'false');
  } finally {
    await closePage(page);
  }
});

test('two people join: each is in the other\'s participant list with a quality indicator and its details', { timeout: 90000 }, async () => {
  const room = uniqueRoom('people');
  // Ana joins from the lobby with her microphone off; Ben from a direct link.
  const ana = await openPage(browser, `${server.origin}/?room=${room}`);
  let ben;
  try {
    await ana.waitForFunction(() => document.querySelector('#preview').dataset.camera === 'on', null, { timeout: 15000 });
    await ana.fill('#name-input', 'Ana Souza');
    await ana.click('#pre-mic-btn');
    await ana.click('#join-button');
    await ana.waitForFunction(() => document.body.dataset.state === 'in-call', null, { timeout: 20000 });
    assert.equal(await ana.evaluate(() => window.rtcroom.client.devices.microphone), false);
    assert.equal(await ana.evaluate(() => window.rtcroom.client.devices.camera), true);

    ben = await joinCall(browser, server.origin, room, 'Ben Okafor');
    await Promise.all([waitForConnectedPeers(ana, 1), waitForConnectedPeers(ben, 1)]);

    assert.deepEqual(await peopleNames(ana), ['Ana Souza (you)', 'Ben Okafor']);
    assert.deepEqual(await peopleNames(ben), ['Ben Okafor (you)', 'Ana Souza']);
    assert.equal(await ben.textContent('#people-badge'), '2');
    // Ben sees that Ana is muted.
    await ben.waitForFunction(() => /muted/.test(document.querySelector('#people-list li:nth-child(2) .p-state').textContent));

    // The quality indicator: measured from getStats within a few seconds, on the tile and in the list.
    const [ua, ub] = await Promise.all([uidOf(ana), uidOf(ben)]);
    for (const [page, uid] of [[ana, ub], [ben, ua]]) {
      await page.waitForFunction((uid) => ['good', 'fair', 'poor'].includes(document.querySelector(`#grid .tile[data-uid="${uid}"]`).dataset.quality), uid, { timeout: 15000 });
      const q = await page.evaluate((uid) => document.querySelector(`#grid .tile[data-uid="${uid}"]`).dataset.quality, uid);
      assert.equal(await page.evaluate((uid) => document.querySelector(`#people-list li[data-uid="${uid}"]`).dataset.quality, uid), q);
      assert.match(await page.getAttribute(`#grid .tile[data-uid="${uid}"] .conn`, 'aria-label'), /connection/i);
    }

    // Details on click: round trip, loss, bitrates from getStats; Escape closes them.
    await ana.click('#people-close');
    await ana.click(`#grid .tile[data-uid="${ub}"] .conn`);
    await ana.waitForSelector('#quality-details:not([hidden])');
    assert.equal(await ana.getAttribute(`#grid .tile[data-uid="${ub}"] .conn`, 'aria-expanded'), 'true');
    const details = await ana.evaluate(() => Object.fromEntries([...document.querySelectorAll('#quality-details dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
    assert.equal(details.Connection, 'P2P', JSON.stringify(details));
    assert.match(details['Round trip'], /^\d+ ms$/, JSON.stringify(details));
    assert.match(details['Packet loss'], /^\d+\.\d % in · \d+\.\d % out$/, JSON.stringify(details));
    assert.ok(parseFloat(details.Receiving) > 0, JSON.stringify(details));
    assert.ok(parseFloat(details.Sending) > 0, JSON.stringify(details));
    assert.match(details.Video, /^\d+×\d+/, JSON.stringify(details));
    await ana.keyboard.press('Escape');
    await ana.waitForSelector('#quality-details', { state: 'hidden' });

    // Hovering shows them too.
    await ben.hover(`#grid .tile[data-uid="${ua}"] .conn`);
    await ben.waitForSelector('#quality-details:not([hidden])');
    assert.match(await ben.textContent('#quality-details h3'), /Ana Souza/);

    // During the call another microphone is chosen in the Devices dialog: what goes out
    // to Ana changes to it.
    await ben.click('#btn-settings');
    await ben.waitForSelector('#settings-dialog[open]');
    const mics = await deviceList(ben, '#set-microphone');
    const other = mics.ids[mics.labels.indexOf('Fake Audio Input 1')];
    assert.ok(other, JSON.stringify(mics));
    await ben.selectOption('#set-microphone', other);
    await ben.waitForFunction(([ua, id]) => {
      const pc = window.rtcroom.client.peers.get(ua).pc;
      return pc.getSenders().some((s) => s.track && s.track.kind === 'audio' && s.track.getSettings().deviceId === id);
    }, [ua, other]);
    await ben.keyboard.press('Escape');
    await ben.waitForSelector('#settings-dialog', { state: 'hidden' });
  } finally {
    await closePage(ana);
    await closePage(ben);
  }
});

test('leaving shows the left screen, and Rejoin joins the same room again', { timeout: 90000 }, async () => {
  const room = uniqueRoom('rejoin');
  const [ana, ben] = await Promise.all([joinCall(browser, server.origin, room, 'Ana'), joinCall(browser, server.origin, room, 'Ben')]);
  try {
    await Promise.all([waitForConnectedPeers(ana, 1), waitForConnectedPeers(ben, 1)]);
    const ub = await uidOf(ben);
    await ben.click('#btn-leave');
    await ben.waitForFunction(() => document.body.dataset.state === 'left');
    assert.equal(await ben.isVisible('#left-screen'), true);
    assert.equal(await ben.isVisible('#call'), false);
    assert.equal(await ben.isVisible('#lobby'), false);
    assert.match(await ben.textContent('#left-title'), /You left the call/);
    assert.match(await ben.textContent('#left-detail'), new RegExp(room));
    assert.equal(await ben.evaluate(() => document.activeElement.id), 'left-title');
    // The devices are released while on the left screen.
    assert.equal(await ben.evaluate(() => window.rtcroom.client === null && window.rtcroom.preview === null), true);
    await ana.waitForFunction((ub) => !document.querySelector(`#grid .tile[data-uid="${ub}"]`), ub, { timeout: 10000 });

    // Rejoin by keyboard.
    await ben.focus('#rejoin-button');
    await ben.keyboard.press('Enter');
    await ben.waitForFunction(() => document.body.dataset.state === 'in-call', null, { timeout: 20000 });
    await Promise.all([waitForConnectedPeers(ana, 1), waitForConnectedPeers(ben, 1)]);
    assert.deepEqual(await peopleNames(ana), ['Ana (you)', 'Ben']);
    assert.equal(await ben.evaluate(() => new URL(location.href).searchParams.get('room')), room);

    // Leave again, then back to the home screen: the lobby with the room and a live preview.
    await ben.click('#btn-leave');
    await ben.waitForFunction(() => document.body.dataset.state === 'left');
    await ben.click('#home-button');
    await ben.waitForFunction(() => document.querySelector('#preview').dataset.camera === 'on', null, { timeout: 15000 });
    assert.equal(await ben.inputValue('#room-input'), room);
    assert.equal(await ben.inputValue('#name-input'), 'Ben');
  } finally {
    await closePage(ana);
    await closePage(ben);
  }
});

test('a link whose room name cannot be used says why and does not join', { timeout: 60000 }, async () => {
  const cases = [
    ['team meeting!', /spaces, “!”/],
    ['a'.repeat(70), /at most 64 characters; this one has 70/],
    ['café', /“é”/],
  ];
  for (const [room, why] of cases) {
    const page = await openPage(browser, `${server.origin}/?room=${encodeURIComponent(room)}&name=Ana`);
    try {
      await page.waitForFunction(() => document.body.dataset.state === 'invalid-link');
      const alert = await page.textContent('#lobby-error');
      assert.match(alert, /room name cannot be used/, alert);
      assert.match(alert, why, alert);
      assert.equal(await page.isVisible('#lobby-error'), true);
      // Not rewritten: the field holds the link's room as it was, marked invalid and focused.
      assert.equal(await page.inputValue('#room-input'), room);
      assert.equal(await page.getAttribute('#room-input', 'aria-invalid'), 'true');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'room-input');
      assert.match(await page.textContent('#room-error'), why);
      assert.equal(await page.evaluate(() => window.rtcroom.client), null);
    } finally {
      await closePage(page);
    }
  }

  // The form says the same, and joins once the room is corrected.
  const page = await openPage(browser, `${server.origin}/`);
  try {
    await page.fill('#room-input', 'a/b');
    await page.fill('#name-input', '');
    await page.click('#join-button');
    assert.match(await page.textContent('#room-error'), /not “\/”/);
    assert.match(await page.textContent('#name-error'), /Enter your name/);
    assert.notEqual(await page.evaluate(() => document.body.dataset.state), 'joining');
    await page.fill('#room-input', uniqueRoom('fixed'));
    await page.fill('#name-input', 'Ana');
    await page.press('#name-input', 'Enter');
    await page.waitForFunction(() => document.body.dataset.state === 'in-call', null, { timeout: 20000 });
  } finally {
    await closePage(page);
  }
});

test('with camera and microphone refused: one message, and sound the browser blocks is one click away', { timeout: 90000 }, async () => {
  const room = uniqueRoom('refused');
  const ana = await joinCall(browser, server.origin, room, 'Ana');
  let ben;
  try {
    ben = await joinCall(browser, server.origin, room, 'Ben', {
      init: () => {
        // Both devices refused, as by a user who clicks "Block".
        navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
        // Headless Chromium enforces no autoplay policy (whatever --autoplay-policy says,
        // and it reports every page as activated), so this page applies the one desktop
        // Chrome applies to a page that captures nothing: sound only after a click or key.
        let interacted = false;
        for (const t of ['pointerdown', 'keydown']) addEventListener(t, (e) => { if (e.isTrusted) interacted = true; }, true);
        const play = HTMLMediaElement.prototype.play;
        HTMLMediaElement.prototype.play = function () {
          if (!this.muted && !interacted) return Promise.reject(new DOMException('play() failed because the user didn\'t interact with the document first.', 'NotAllowedError'));
          return play.call(this);
        };
      },
    });
    assert.equal(await ben.evaluate(() => document.body.dataset.state), 'in-call');
    await waitForConnectedPeers(ben, 1);
    const toasts = await ben.$$eval('#toasts .toast.warn', (els) => els.map((e) => e.textContent));
    assert.equal(toasts.length, 1, JSON.stringify(toasts));
    assert.match(toasts[0], /camera and microphone was denied/);
    assert.match(toasts[0], /you can watch and listen/);

    const ua = await uidOf(ana);
    await ben.waitForSelector('#sound-blocked:not([hidden])', { timeout: 15000 });
    assert.equal(await ben.evaluate((ua) => document.querySelector(`#grid .tile[data-uid="${ua}"]`).dataset.audio, ua), 'blocked');
    // The button covers no one's tile face or name.
    const overlap = await ben.evaluate(() => {
      const b = document.querySelector('#sound-blocked').getBoundingClientRect();
      return [...document.querySelectorAll('#grid .tile .initials, #grid .tile .name, #grid .tile video')].some((el) => {
        const r = el.getBoundingClientRect();
        return r.width > 0 && b.left < r.right && r.left < b.right && b.top < r.bottom && r.top < b.bottom;
      });
    });
    assert.equal(overlap, false);
    await ben.click('#sound-blocked');
    await ben.waitForSelector('#sound-blocked', { state: 'hidden' });
    assert.deepEqual(await ben.evaluate((ua) => {
      const v = document.querySelector(`#grid .tile[data-uid="${ua}"] video`);
      return { muted: v.muted, paused: v.paused, audio: v.srcObject.getAudioTracks().length };
    }, ua), { muted: false, paused: false, audio: 1 });
  } finally {
    await closePage(ana);
    await closePage(ben);
  }
});
