// The rtcroom page: a pre-join screen (preview, devices, room and name), the call (grid,
// controls, participant list, connection quality) and a "you left" screen with Rejoin.
// All signaling and WebRTC lives in rtc-client.js; this file only draws what it reports.

import { RtcClient, ResultCode } from './rtc-client.js';

const $ = (sel) => /** @type {HTMLElement} */ (document.querySelector(sel));
const lobby = $('#lobby');
const leftScreen = $('#left-screen');
const call = $('#call');
const form = /** @type {HTMLFormElement} */ ($('#join-form'));
const roomInput = /** @type {HTMLInputElement} */ ($('#room-input'));
const nameInput = /** @type {HTMLInputElement} */ ($('#name-input'));
const preMic = /** @type {HTMLInputElement} */ ($('#pre-mic'));
const preCam = /** @type {HTMLInputElement} */ ($('#pre-cam'));
const preMicBtn = $('#pre-mic-btn');
const preCamBtn = $('#pre-cam-btn');
const preview = $('#preview');
const previewVideo = /** @type {HTMLVideoElement} */ ($('#preview-video'));
const previewStatus = $('#preview-status');
const joinButton = /** @type {HTMLButtonElement} */ ($('#join-button'));
const lobbyError = $('#lobby-error');
const grid = $('#grid');
const toasts = $('#toasts');
const btnMic = $('#btn-mic');
const btnCam = $('#btn-cam');
const btnScreen = $('#btn-screen');
const btnLeave = $('#btn-leave');
const btnPeople = $('#btn-people');
const peoplePanel = $('#people-panel');
const peopleList = $('#people-list');
const qualityPop = $('#quality-details');
const soundBlocked = $('#sound-blocked');
const settingsDialog = /** @type {HTMLDialogElement} */ ($('#settings-dialog'));
const template = /** @type {HTMLTemplateElement} */ ($('#tile-template'));

const params = new URLSearchParams(location.search);
const debug = params.has('debug');
const ROOM_MAX = 64;
const NAME_MAX = 32;

/** @type {RtcClient|null} the client in the call */
let client = null;
/** @type {RtcClient|null} the client that holds the preview's devices; it becomes `client` on join */
let previewClient = null;
/** The room, name and devices of the last call, for Rejoin. */
let lastCall = null;
/** @type {Map<string, HTMLElement>} */
const tiles = new Map();
/** @type {Map<string, any>} the last measured quality of each remote, by uid */
const qualities = new Map();
/** @type {Map<string, any>} the previous stats sample of each remote, by uid */
const samples = new Map();
/** @type {Set<HTMLVideoElement>} remote videos whose sound the browser blocked */
const blocked = new Set();
const LOCAL = '__local__';
let levelTimer = 0;
let qualityTimer = 0;
/** Media warnings gathered while joining, said once joined (one message, not one per device). */
let pendingWarnings = null;

// Tests and curious developers reach the client from the console.
Object.defineProperty(window, 'rtcroom', { value: { get client() { return client; }, get preview() { return previewClient; }, tiles, qualities } });

// ---- room and name -------------------------------------------------------------------------

const WORDS_A = ['amber', 'brisk', 'calm', 'clear', 'bright', 'quiet', 'swift', 'sunny', 'misty', 'lucky'];
const WORDS_B = ['river', 'harbor', 'meadow', 'summit', 'forest', 'canyon', 'island', 'garden', 'comet', 'valley'];
function randomRoom() {
  const r = crypto.getRandomValues(new Uint32Array(3));
  return `${WORDS_A[r[0] % WORDS_A.length]}-${WORDS_B[r[1] % WORDS_B.length]}-${10 + (r[2] % 90)}`;
}

/** Why `room` cannot be a room id, in words for the user; '' when it can. */
function roomProblem(room) {
  const s = String(room ?? '');
  if (!s.trim()) return 'Enter a room name.';
  const bad = [...new Set(s.replace(/[A-Za-z0-9_.-]/g, ''))];
  if (bad.length) {
    const named = bad.slice(0, 4).map((c) => (c === ' ' ? 'spaces' : /\s/.test(c) ? 'blank characters' : `“${c}”`));
    return `A room name may only hold letters (A–Z), digits, dot, dash and underscore, not ${[...new Set(named)].join(', ')}.`;
  }
  if (s.length > ROOM_MAX) return `A room name has at most ${ROOM_MAX} characters; this one has ${s.length}.`;
  return '';
}

function nameProblem(name) {
  const s = String(name ?? '').trim();
  if (!s) return 'Enter your name, so that the others know who you are.';
  if (s.length > NAME_MAX) return `A name has at most ${NAME_MAX} characters; this one has ${s.length}.`;
  return '';
}

function fieldError(input, el, text) {
  el.textContent = text;
  el.hidden = !text;
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

/** Checks the form; shows each problem under its field and focuses the first. */
function validateForm() {
  const rp = roomProblem(roomInput.value.trim());
  const np = nameProblem(nameInput.value);
  fieldError(roomInput, $('#room-error'), rp);
  fieldError(nameInput, $('#name-error'), np);
  if (rp) roomInput.focus();
  else if (np) nameInput.focus();
  return !rp && !np;
}

roomInput.addEventListener('input', () => { if (roomInput.getAttribute('aria-invalid')) fieldError(roomInput, $('#room-error'), roomProblem(roomInput.value.trim())); });
nameInput.addEventListener('input', () => { if (nameInput.getAttribute('aria-invalid')) fieldError(nameInput, $('#name-error'), nameProblem(nameInput.value)); });

form.addEventListener('submit', (e) => {
  e.preventDefault();
  lobbyError.hidden = true;
  if (!validateForm()) return;
  startCall(roomInput.value.trim(), nameInput.value.trim());
});

function showLobbyError(title, body, code) {
  lobbyError.innerHTML = '';
  const strong = document.createElement('strong');
  strong.textContent = title;
  lobbyError.append(strong, document.createTextNode(body));
  lobbyError.dataset.code = String(code ?? '');
  lobbyError.hidden = false;
}

/** Words for a user, from an RtcError (or an error event's detail). */
function explain(err) {
  const r = Number(err.result);
  const desc = err.desc || err.message || '';
  if (err.source === 'login') {
    if (r === 1) return ['Unknown app', 'This server does not know the app id of this page.'];
    if (r === 2) return ['Not allowed here', 'This site is not allowed to use this app id.'];
    if (r === 4) return ['Browser not supported', 'This browser cannot make WebRTC calls. Try a current Chrome, Firefox, Edge or Safari.'];
    if (r === ResultCode.NO_ROOM_SERVER) return ['Cannot reach the server', 'Check your connection and try again.'];
    return ['Sign-in failed', desc];
  }
  switch (r) {
    case ResultCode.ROOM_FULL: {
      const n = (desc.match(/(\d+)\s*$/) || [])[1];
      return ['This room is full', `It holds up to ${n ? `${n} people` : 'its limit'}. Try again when someone leaves, or pick another room.`];
    }
    case ResultCode.TOKEN_REFUSED:
      return ['Access refused', `The server refused this page's access token${desc ? ` (${desc})` : ''}. Reload the page to sign in again.`];
    case ResultCode.NO_ROOM_SERVER:
    case ResultCode.WEBSOCKET_BROKEN:
      return ['Cannot reach the room server', 'Check your connection and try again.'];
    case ResultCode.RATE_LIMITED:
      return ['Too many attempts', 'Wait a moment and try again.'];
    case ResultCode.NOT_ALLOWED:
      return [err.source === 'replaced' ? 'Call moved' : 'Removed from the call', err.source === 'replaced' ? 'You joined this call from another window.' : desc];
    case ResultCode.BAD_MESSAGE:
      return ['Cannot join', desc || 'The server could not read the request.'];
    default:
      return ['Something went wrong', desc || `error ${r}`];
  }
}

// ---- screens -------------------------------------------------------------------------------

/** @param {'lobby'|'call'|'left'} which */
function showScreen(which) {
  lobby.hidden = which !== 'lobby';
  call.hidden = which !== 'call';
  leftScreen.hidden = which !== 'left';
  if (which !== 'call') {
    settingsDialog.open && settingsDialog.close();
    hideQuality();
  }
}

function newClient() {
  // A deployment (or a test) may set SDK options before this script runs, with a script
  // file of its own that sets window.rtcroomConfig = { appId: '20000', forceRelay: true }.
  return new RtcClient({ log: debug, .../** @type {any} */ (window).rtcroomConfig });
}

/** The lobby with a live preview of the camera and microphone. */
function enterLobby() {
  showScreen('lobby');
  joinButton.disabled = false;
  joinButton.textContent = 'Join call';
  document.title = 'rtcroom · video calls';
  startPreview();
}

// ---- pre-join preview ----------------------------------------------------------------------

/** @type {Promise<void>|null} the preview's devices opening */
let previewStarting = null;

function startPreview() {
  if (previewClient || client) return;
  previewStarting = openPreview().catch((e) => { if (debug) console.debug('[rtcroom] preview', e); });
}

async function openPreview() {
  const c = newClient();
  previewClient = c;
  const warnings = [];
  const off = c.on('media-warning', (d) => warnings.push(d));
  await applySavedDevices(c);
  previewStatus.textContent = 'Starting your camera…';
  await c.startMedia({ audio: true, video: preCam.checked });
  off();
  if (previewClient !== c) return; // joined or left meanwhile
  if (!preMic.checked && c.tracks.microphone) await c.setMicrophone(false);
  c.on('media-warning', (d) => { if (previewClient === c) previewNote([d]); });
  c.on('local-stream', () => { if (previewClient === c) drawPreview(); });
  c.on('device-state', () => { if (previewClient === c) drawPreview(); });
  previewVideo.srcObject = c.localStream;
  previewVideo.play().catch(() => {});
  drawPreview();
  if (warnings.length) previewNote(warnings);
  fillDevices();
}

function stopPreview() {
  const c = previewClient;
  previewClient = null;
  if (c) c.stopMedia();
  previewVideo.srcObject = null;
}

function drawPreview() {
  const c = previewClient;
  const cam = !!(c && c.devices.camera && c.tracks.camera);
  preview.dataset.camera = cam ? 'on' : 'off';
  if (!cam && !preview.dataset.note) previewStatus.textContent = preCam.checked ? 'No camera' : 'Camera is off';
  syncPreButtons();
}

/** Says in the preview what went wrong with the devices (one sentence for all of them). */
function previewNote(warnings) {
  const text = describeWarnings(warnings, false);
  preview.dataset.note = 'yes';
  previewStatus.textContent = text;
  if (warnings.some((w) => w.device === 'camera')) preCam.checked = false;
  if (warnings.some((w) => w.device === 'microphone')) preMic.checked = false;
  syncPreButtons();
}

function syncPreButtons() {
  for (const [btn, box, what] of [[preMicBtn, preMic, 'Microphone'], [preCamBtn, preCam, 'Camera']]) {
    btn.setAttribute('aria-pressed', String(box.checked));
    btn.setAttribute('aria-label', `${what} ${box.checked ? 'on' : 'off'}`);
    btn.title = `Turn ${what.toLowerCase()} ${box.checked ? 'off' : 'on'}`;
  }
}

async function setPreCamera(on) {
  preCam.checked = on;
  delete preview.dataset.note;
  syncPreButtons();
  const c = previewClient;
  if (!c) return;
  const got = await c.setCamera(on);
  if (on && !got) preCam.checked = false;
  drawPreview();
  if (on) fillDevices();
}

async function setPreMicrophone(on) {
  preMic.checked = on;
  syncPreButtons();
  const c = previewClient;
  if (!c) return;
  const got = await c.setMicrophone(on);
  if (on && !got) preMic.checked = false;
  syncPreButtons();
  if (on) fillDevices();
}

preCam.addEventListener('change', () => setPreCamera(preCam.checked));
preMic.addEventListener('change', () => setPreMicrophone(preMic.checked));
preCamBtn.addEventListener('click', () => setPreCamera(!preCam.checked));
preMicBtn.addEventListener('click', () => setPreMicrophone(!preMic.checked));

/** One sentence for the devices that could not be opened. */
function describeWarnings(list, inCall) {
  const by = new Map(list.map((w) => [w.device, w.reason]));
  const cam = by.has('camera');
  const mic = by.has('microphone');
  const reasons = [...by.values()];
  const why = (what, plural) => {
    const r = reasons.every((x) => x === reasons[0]) ? reasons[0] : 'failed';
    return {
      'not-found': `No ${what} found`,
      denied: `Permission for the ${what} was denied (allow it in the browser's site settings)`,
      'in-use': `The ${what} ${plural ? 'are' : 'is'} in use by another app`,
      unsupported: `This browser cannot open the ${what}`,
    }[r] || `The ${what} could not be opened`;
  };
  if (cam && mic) return `${why('camera and microphone', true)}${inCall ? ' — you can watch and listen, but the others cannot see or hear you.' : '. You can still join to watch and listen.'}`;
  if (cam) return `${why('camera', false)}${inCall ? ' — you are in the call with audio only.' : '. You can join with audio only.'}`;
  if (mic) return `${why('microphone', false)}${inCall ? ' — the others cannot hear you.' : '. The others will not hear you.'}`;
  const w = list[0];
  return w ? `${why(w.device === 'screen' ? 'screen sharing' : w.device, false)}.` : '';
}

// ---- devices -------------------------------------------------------------------------------

const KIND_WORD = { videoinput: 'camera', audioinput: 'microphone', audiooutput: 'speaker' };
const canPickSpeaker = 'setSinkId' in HTMLMediaElement.prototype;

/** Applies the devices picked last time (those still plugged in) to a new client. */
async function applySavedDevices(c) {
  let list = [];
  try { list = await navigator.mediaDevices.enumerateDevices(); } catch { return; }
  for (const kind of Object.keys(KIND_WORD)) {
    const id = localStorage.getItem(`rtcroom.${kind}`);
    if (id && list.some((d) => d.kind === kind && d.deviceId === id)) await c.selectDevice(/** @type {any} */ (kind), id);
  }
}

/** The deviceId in use for `kind` by `c`. */
function currentDevice(c, kind) {
  if (!c) return '';
  if (kind === 'audiooutput') return c.speakerId || 'default';
  const track = kind === 'videoinput' ? c.tracks.camera : c.tracks.microphone;
  if (track) return track.getSettings().deviceId || '';
  const want = c.options[kind === 'videoinput' ? 'video' : 'audio'];
  return (want && want.deviceId && want.deviceId.exact) || '';
}

/** Fills every device list (the lobby's and the call's) from enumerateDevices. */
async function fillDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const list = await navigator.mediaDevices.enumerateDevices();
  const c = client || previewClient;
  for (const sel of /** @type {NodeListOf<HTMLSelectElement>} */ (document.querySelectorAll('select[data-kind]'))) {
    const kind = sel.dataset.kind;
    const field = /** @type {HTMLElement} */ (sel.closest('.field'));
    if (kind === 'audiooutput' && !canPickSpeaker) {
      field.hidden = true;
      continue;
    }
    const devices = list.filter((d) => d.kind === kind && d.deviceId);
    sel.innerHTML = '';
    devices.forEach((d, i) => sel.append(new Option(d.label || `${KIND_WORD[kind][0].toUpperCase()}${KIND_WORD[kind].slice(1)} ${i + 1}`, d.deviceId)));
    if (!devices.length) sel.append(new Option(list.some((d) => d.kind === kind) ? `Allow the ${KIND_WORD[kind]} to choose one` : `No ${KIND_WORD[kind]} found`, ''));
    sel.disabled = !devices.length;
    const cur = currentDevice(c, kind);
    if (devices.some((d) => d.deviceId === cur)) sel.value = cur;
  }
}

for (const sel of /** @type {NodeListOf<HTMLSelectElement>} */ (document.querySelectorAll('select[data-kind]'))) {
  sel.addEventListener('change', async () => {
    const c = client || previewClient;
    const kind = /** @type {any} */ (sel.dataset.kind);
    if (!c) return;
    if (await c.selectDevice(kind, sel.value)) {
      localStorage.setItem(`rtcroom.${kind}`, sel.value);
      if (kind === 'audiooutput') applySpeaker();
      if (client) toast(`Now using ${sel.selectedOptions[0]?.textContent || `the ${KIND_WORD[kind]}`}`);
    }
    fillDevices();
  });
}
navigator.mediaDevices?.addEventListener?.('devicechange', () => fillDevices());

/** Plays every remote tile through the chosen speaker. */
function applySpeaker() {
  const id = client?.speakerId;
  if (!canPickSpeaker || id === undefined) return;
  for (const [uid, el] of tiles) {
    if (uid === LOCAL) continue;
    const v = /** @type {any} */ (el.querySelector('video'));
    if (v.sinkId !== id) v.setSinkId(id).catch((e) => toast(`The speaker could not be used: ${e.message}`, 'error'));
  }
}

// ---- call ----------------------------------------------------------------------------------

/**
 * Joins `roomId` as `uname`, with the preview's devices when there is a preview, else
 * opening them now (`devices` says which: the lobby's switches by default).
 * @param {string} roomId
 * @param {string} uname
 * @param {{camera: boolean, microphone: boolean}} [devices]
 */
async function startCall(roomId, uname, devices = { camera: preCam.checked, microphone: preMic.checked }) {
  if (!roomId || !uname || client) return;
  localStorage.setItem('rtcroom.name', uname);
  roomInput.value = roomId;
  nameInput.value = uname;
  history.replaceState(null, '', `/?room=${encodeURIComponent(roomId)}&name=${encodeURIComponent(uname)}`);
  lobbyError.hidden = true;
  joinButton.disabled = true;
  joinButton.textContent = 'Joining…';
  document.body.dataset.state = 'joining';

  if (previewStarting) await previewStarting;
  previewStarting = null;
  let c = previewClient;
  previewClient = null;
  if (!c) {
    c = newClient();
    await applySavedDevices(c);
  }
  client = c;
  lastCall = { roomId, uname };
  pendingWarnings = [];
  wire(c);
  try {
    await c.join({ roomId, uname, camera: devices.camera, microphone: devices.microphone });
  } catch (e) {
    client = null;
    pendingWarnings = null;
    previewVideo.srcObject = null;
    const [title, body] = explain(e);
    enterLobby();
    showLobbyError(title, body, e.result);
    document.body.dataset.state = 'refused';
    return;
  }
  previewVideo.srcObject = null;
  if (pendingWarnings.length) toast(describeWarnings(pendingWarnings, true), 'warn', 8000);
  pendingWarnings = null;
  $('#room-name').textContent = roomId;
  document.title = `${roomId} · rtcroom`;
  showScreen('call');
  document.body.dataset.state = 'in-call';
  layout();
  renderPeople();
  fillDevices();
  applySpeaker();
  levelTimer = window.setInterval(updateSpeaking, 300);
  qualityTimer = window.setInterval(measureAll, 2000);
}

/** Clears the call's screen (tiles, timers, panels). */
function clearCall() {
  clearInterval(levelTimer);
  clearInterval(qualityTimer);
  for (const [, el] of tiles) el.remove();
  tiles.clear();
  qualities.clear();
  samples.clear();
  blocked.clear();
  soundBlocked.hidden = true;
  setPeopleOpen(false);
  hideQuality();
  toasts.innerHTML = '';
  document.title = 'rtcroom · video calls';
}

/** The "you left the call" screen. */
function showLeft() {
  showAfterCall('You left the call', lastCall ? `You left “${lastCall.roomId}”. The others can still talk there.` : '');
  document.body.dataset.state = 'left';
}

/**
 * The "call ended" screen: the room server was away for longer than it keeps a member's
 * place (or no longer had it when we came back). Rejoin starts a new call in the same room.
 * @param {{result: number, desc?: string}} err
 */
function showEnded(err) {
  const room = lastCall ? `“${lastCall.roomId}”` : 'the room';
  const why = Number(err.result) === ResultCode.NO_ROOM_SERVER
    ? `The room server could not be reached for too long, so your place in ${room} is gone.`
    : `The room server no longer had your place in ${room}${err.desc ? ` (${err.desc})` : ''}.`;
  showAfterCall('The call ended', `${why} Rejoin to call again.`);
  document.body.dataset.state = 'ended';
}

/** The screen after a call, with Rejoin and Return to home screen. */
function showAfterCall(title, detail) {
  clearCall();
  showScreen('left');
  $('#left-title').textContent = title;
  $('#left-detail').textContent = detail;
  if (lastCall) history.replaceState(null, '', `/?room=${encodeURIComponent(lastCall.roomId)}`);
  $('#left-title').focus();
}

$('#rejoin-button').addEventListener('click', () => {
  if (!lastCall) return enterLobby();
  startCall(lastCall.roomId, lastCall.uname, lastCall.devices || { camera: preCam.checked, microphone: preMic.checked });
});
$('#home-button').addEventListener('click', () => {
  enterLobby();
  nameInput.focus();
});

/** @param {RtcClient} c */
function wire(c) {
  const mine = (fn) => (d) => { if (client === c) fn(d); };
  c.on('joined', mine((d) => {
    const el = ensureTile(LOCAL, `${d.uname || 'You'}`);
    el.classList.add('local');
    el.dataset.uid = d.uid;
    const v = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
    v.muted = true;
    v.srcObject = c.localStream;
    setTileDevices(el, c.devices);
    syncButtons();
    updateCount();
  }));
  c.on('local-stream', mine((d) => {
    const el = tiles.get(LOCAL);
    if (!el) return;
    const v = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
    v.srcObject = d.stream;
    v.play().catch(() => {});
  }));
  c.on('peer-joined', mine((d) => {
    const el = ensureTile(d.uid, d.uname);
    setTileDevices(el, d.devices);
    if (call.hidden === false) toast(`${d.uname} joined`);
    applySpeaker();
    updateCount();
  }));
  c.on('peer-left', mine((d) => {
    const el = tiles.get(d.uid);
    if (el) {
      const v = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
      blocked.delete(v);
      soundBlocked.hidden = blocked.size === 0;
      el.remove();
    }
    tiles.delete(d.uid);
    qualities.delete(d.uid);
    samples.delete(d.uid);
    if (qualityPop.dataset.uid === d.uid) hideQuality();
    if (d.reason !== 'self-left') toast(`${d.uname} left`);
    updateCount();
    layout();
  }));
  c.on('track', mine((d) => {
    const el = tiles.get(d.uid);
    if (!el) return;
    const v = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
    if (v.srcObject !== d.stream) v.srcObject = d.stream;
    if (!blocked.has(v)) v.play().catch(() => blockSound(el, v));
  }));
  c.on('device-state', mine((d) => {
    if (d.local) {
      const el = tiles.get(LOCAL);
      if (el) setTileDevices(el, d);
      syncButtons();
      renderPeople();
      return;
    }
    const el = tiles.get(d.uid);
    if (el) setTileDevices(el, d);
    renderPeople();
    layout();
  }));
  c.on('connection-state', mine((d) => {
    const el = tiles.get(d.uid);
    if (!el) return;
    const [key, text] = connLabel(d.state, d.connectType);
    el.dataset.conn = key;
    el.querySelector('.conn-text').textContent = text;
    if (key !== 'p2p' && key !== 'relayed') setQuality(d.uid, null);
    drawQualityLabel(el, d.uid);
  }));
  c.on('media-warning', (d) => {
    if (client !== c) return;
    if (pendingWarnings) pendingWarnings.push(d);
    else toast(describeWarnings([d], true), 'warn', 7000);
  });
  c.on('state', mine((d) => {
    const s = $('#signal-state');
    if (d.state === 'reconnecting') {
      s.textContent = 'Reconnecting…';
      s.hidden = false;
    } else {
      s.hidden = true;
    }
  }));
  // The call goes on while the signaling connection comes back (a drop, a server restart).
  c.on('reconnecting', mine(() => {
    document.body.dataset.signal = 'reconnecting';
  }));
  c.on('reconnected', mine((d) => {
    delete document.body.dataset.signal;
    if (!d.resumed) toast('Reconnected: the call is being set up again.', 'warn', 4000);
  }));
  c.on('ended', mine(() => {
    delete document.body.dataset.signal;
  }));
  c.on('error', mine((d) => {
    if (!d.fatal) {
      if (debug || d.source === 'webrtc') toast(explain(d).join(': '), 'error');
      return;
    }
    client = null;
    // The signaling connection did not come back in time (or our place was gone when it
    // did): the call ended on its own, so the page says that rather than showing the lobby.
    if (d.source === 'reconnect') {
      if (lastCall) lastCall.devices = { camera: c.devices.camera || c.devices.screen, microphone: c.devices.microphone };
      return showEnded(d);
    }
    const [title, body] = explain(d);
    clearCall();
    enterLobby();
    showLobbyError(title, body, d.result);
    document.body.dataset.state = 'ended';
  }));
}

function connLabel(state, type) {
  if (state === 'connected') return type === 'TURN' ? ['relayed', 'Relayed'] : ['p2p', 'P2P'];
  if (state === 'failed') return ['failed', 'No connection'];
  if (state === 'disconnected') return ['connecting', 'Reconnecting…'];
  return ['connecting', 'Connecting…'];
}

function ensureTile(uid, uname) {
  let el = tiles.get(uid);
  if (el) return el;
  el = /** @type {HTMLElement} */ (template.content.firstElementChild.cloneNode(true));
  el.dataset.uid = uid;
  el.dataset.name = uname;
  el.dataset.quality = 'unknown';
  el.classList.add('fresh');
  el.querySelector('.name').textContent = uid === LOCAL ? `${uname} (you)` : uname;
  const initials = el.querySelector('.initials');
  initials.textContent = initialsOf(uname);
  /** @type {HTMLElement} */ (initials).style.setProperty('--avatar', colorOf(uname));
  const v = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
  v.muted = uid === LOCAL;
  const conn = /** @type {HTMLElement} */ (el.querySelector('.conn'));
  if (uid === LOCAL) conn.remove();
  else {
    conn.addEventListener('click', () => (qualityPop.dataset.uid === el.dataset.uid && qualityPop.dataset.pinned ? hideQuality() : showQuality(el, true)));
    conn.addEventListener('mouseenter', () => { if (!qualityPop.dataset.pinned) showQuality(el, false); });
    conn.addEventListener('mouseleave', () => { if (!qualityPop.dataset.pinned) hideQuality(); });
    drawQualityLabel(el, uid);
  }
  tiles.set(uid, el);
  // The local tile stays last.
  const local = tiles.get(LOCAL);
  if (uid !== LOCAL && local && local.parentNode === grid) grid.insertBefore(el, local);
  else grid.append(el);
  layout();
  return el;
}

function setTileDevices(el, d) {
  el.dataset.camera = d.camera ? 'on' : 'off';
  el.dataset.mic = d.microphone ? 'on' : 'off';
  el.dataset.screen = d.screen ? 'on' : 'off';
}

function initialsOf(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return s.toUpperCase();
}

function colorOf(name) {
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${h % 360} 55% 48%)`;
}

// ---- sound the browser blocked -------------------------------------------------------------

/** Autoplay refused sound: play the picture muted, and offer one button for all the sound. */
function blockSound(el, v) {
  blocked.add(v);
  el.dataset.audio = 'blocked';
  v.muted = true;
  v.play().catch(() => {});
  soundBlocked.hidden = false;
}

soundBlocked.addEventListener('click', async () => {
  for (const v of [...blocked]) {
    v.muted = false;
    try {
      await v.play();
      blocked.delete(v);
      const el = /** @type {HTMLElement} */ (v.closest('.tile'));
      if (el) delete el.dataset.audio;
    } catch {
      v.muted = true;
    }
  }
  soundBlocked.hidden = blocked.size === 0;
});

// ---- participant list ----------------------------------------------------------------------

const QUALITY_WORD = { good: 'Good connection', fair: 'Fair connection', poor: 'Poor connection', unknown: 'Measuring…' };

function setPeopleOpen(open) {
  peoplePanel.hidden = !open;
  btnPeople.setAttribute('aria-expanded', String(open));
  call.classList.toggle('people-open', open);
  if (open) renderPeople();
  layout();
}
btnPeople.addEventListener('click', () => {
  const open = peoplePanel.hidden;
  setPeopleOpen(open);
  if (open) /** @type {HTMLElement} */ (peoplePanel.querySelector('#people-close')).focus();
});
$('#people-close').addEventListener('click', () => {
  setPeopleOpen(false);
  btnPeople.focus();
});
peoplePanel.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') {
    setPeopleOpen(false);
    btnPeople.focus();
  }
});

/** One row per person: you first, then the others in the order they came. */
function renderPeople() {
  const rows = [];
  const local = tiles.get(LOCAL);
  const order = [...(local ? [local] : []), ...[...tiles.values()].filter((el) => el !== local)];
  for (const el of order) {
    const li = document.createElement('li');
    const isLocal = el === local;
    li.dataset.uid = el.dataset.uid || '';
    li.dataset.quality = isLocal ? 'self' : el.dataset.quality || 'unknown';
    const av = document.createElement('span');
    av.className = 'p-avatar';
    av.setAttribute('aria-hidden', 'true');
    av.textContent = initialsOf(el.dataset.name);
    av.style.setProperty('--avatar', colorOf(el.dataset.name));
    const who = document.createElement('span');
    who.className = 'p-name';
    who.textContent = isLocal ? `${el.dataset.name} (you)` : el.dataset.name || '';
    const state = document.createElement('span');
    state.className = 'p-state';
    const words = [];
    if (el.dataset.mic === 'off') words.push('muted');
    if (el.dataset.camera === 'off' && el.dataset.screen !== 'on') words.push('camera off');
    if (el.dataset.screen === 'on') words.push('presenting');
    if (!isLocal) words.push(QUALITY_WORD[el.dataset.quality || 'unknown'] || '');
    state.textContent = words.filter(Boolean).join(' · ');
    const bars = document.createElement('span');
    bars.className = 'bars';
    bars.setAttribute('aria-hidden', 'true');
    bars.innerHTML = '<i></i><i></i><i></i>';
    li.append(av, who, state);
    if (!isLocal) li.append(bars);
    rows.push(li);
  }
  peopleList.replaceChildren(...rows);
  $('#people-panel-count').textContent = `(${rows.length})`;
}

// ---- connection quality --------------------------------------------------------------------

/** One measurement of the connection to a remote, from two getStats samples. */
async function measure(c, uid) {
  const report = await c.getStats(uid);
  if (!report) return null;
  const s = { at: performance.now(), rtt: null, inBytes: 0, outBytes: 0, inPackets: 0, inLost: 0, outLossFraction: null, jitter: null, width: 0, height: 0, fps: 0, codec: '', local: '', remote: '' };
  let pair = null;
  report.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId) ?? pair; });
  if (!pair) report.forEach((r) => { if (!pair && r.type === 'candidate-pair' && r.state === 'succeeded' && r.nominated) pair = r; });
  if (pair) {
    if (typeof pair.currentRoundTripTime === 'number') s.rtt = pair.currentRoundTripTime * 1000;
    s.local = report.get(pair.localCandidateId)?.candidateType || '';
    s.remote = report.get(pair.remoteCandidateId)?.candidateType || '';
  }
  report.forEach((r) => {
    const kind = r.kind ?? r.mediaType;
    if (r.type === 'inbound-rtp') {
      s.inBytes += r.bytesReceived ?? 0;
      s.inPackets += r.packetsReceived ?? 0;
      s.inLost += Math.max(0, r.packetsLost ?? 0);
      if (kind === 'audio' && typeof r.jitter === 'number') s.jitter = r.jitter * 1000;
      if (kind === 'video') {
        s.width = Math.max(s.width, r.frameWidth ?? 0);
        s.height = Math.max(s.height, r.frameHeight ?? 0);
        s.fps = Math.max(s.fps, r.framesPerSecond ?? 0);
        const codec = r.codecId ? report.get(r.codecId) : null;
        if (codec?.mimeType) s.codec = codec.mimeType.split('/')[1];
      }
    } else if (r.type === 'outbound-rtp') {
      s.outBytes += r.bytesSent ?? 0;
    } else if (r.type === 'remote-inbound-rtp') {
      if (typeof r.fractionLost === 'number') s.outLossFraction = Math.max(s.outLossFraction ?? 0, r.fractionLost);
      if (s.rtt === null && typeof r.roundTripTime === 'number') s.rtt = r.roundTripTime * 1000;
    }
  });
  const prev = samples.get(uid);
  samples.set(uid, s);
  if (!prev) return null;
  const ms = Math.max(1, s.at - prev.at);
  const got = Math.max(0, s.inPackets - prev.inPackets);
  const lost = Math.max(0, s.inLost - prev.inLost);
  const inLoss = got + lost > 0 ? (lost * 100) / (got + lost) : 0;
  const outLoss = (s.outLossFraction ?? 0) * 100;
  const q = {
    rtt: s.rtt,
    loss: Math.max(inLoss, outLoss),
    inLoss,
    outLoss,
    recvKbps: Math.max(0, ((s.inBytes - prev.inBytes) * 8) / ms),
    sendKbps: Math.max(0, ((s.outBytes - prev.outBytes) * 8) / ms),
    jitter: s.jitter,
    video: s.width ? `${s.width}×${s.height}${s.fps ? ` at ${Math.round(s.fps)} fps` : ''}` : '',
    codec: s.codec,
    path: s.local === 'relay' || s.remote === 'relay' ? 'Relayed (TURN)' : s.local ? `Direct (${s.local} → ${s.remote})` : '',
  };
  const rtt = q.rtt ?? 0;
  q.level = rtt <= 250 && q.loss < 2 ? 'good' : rtt <= 500 && q.loss < 8 ? 'fair' : 'poor';
  return q;
}

async function measureAll() {
  const c = client;
  if (!c) return;
  for (const uid of [...c.peers.keys()]) {
    const el = tiles.get(uid);
    if (!el || (el.dataset.conn !== 'p2p' && el.dataset.conn !== 'relayed')) continue;
    try {
      const q = await measure(c, uid);
      if (client !== c) return;
      if (q) setQuality(uid, q);
    } catch (e) {
      if (debug) console.debug('[rtcroom] stats', uid, e);
    }
  }
}

function setQuality(uid, q) {
  if (q) qualities.set(uid, q);
  else {
    qualities.delete(uid);
    samples.delete(uid);
  }
  const el = tiles.get(uid);
  if (!el) return;
  const level = q ? q.level : 'unknown';
  if (el.dataset.quality !== level) {
    el.dataset.quality = level;
    renderPeople();
  }
  drawQualityLabel(el, uid);
  if (qualityPop.dataset.uid === uid && !qualityPop.hidden) fillQuality(uid);
}

function drawQualityLabel(el, uid) {
  const conn = el.querySelector('.conn');
  if (!conn) return;
  const text = el.querySelector('.conn-text').textContent;
  const level = el.dataset.quality || 'unknown';
  const connected = el.dataset.conn === 'p2p' || el.dataset.conn === 'relayed';
  conn.setAttribute('aria-label', `${el.dataset.name}: ${text}${connected ? `, ${QUALITY_WORD[level].toLowerCase()}` : ''}. Show connection details`);
  void uid;
}

const fmt = (n, unit, digits = 0) => (n === null || n === undefined || Number.isNaN(n) ? '—' : `${n.toFixed(digits)} ${unit}`);

function fillQuality(uid) {
  const el = tiles.get(uid);
  const q = qualities.get(uid);
  const rows = [
    ['Connection', el ? el.querySelector('.conn-text').textContent : ''],
    ['Quality', QUALITY_WORD[el?.dataset.quality || 'unknown']],
  ];
  if (q) {
    rows.push(
      ['Round trip', fmt(q.rtt, 'ms')],
      ['Packet loss', `${fmt(q.inLoss, '%', 1)} in · ${fmt(q.outLoss, '%', 1)} out`],
      ['Receiving', fmt(q.recvKbps, 'kbit/s')],
      ['Sending', fmt(q.sendKbps, 'kbit/s')],
      ['Audio jitter', fmt(q.jitter, 'ms')],
      ['Video', q.video ? `${q.video}${q.codec ? ` · ${q.codec}` : ''}` : 'none'],
      ['Path', q.path || '—'],
    );
  }
  const h = document.createElement('h3');
  h.textContent = el ? el.dataset.name : '';
  const dl = document.createElement('dl');
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    dl.append(dt, dd);
  }
  qualityPop.replaceChildren(h, dl);
}

/** Shows the details next to the tile's connection chip; `pin` keeps them until closed. */
function showQuality(el, pin) {
  const uid = el.dataset.uid;
  const conn = /** @type {HTMLElement} */ (el.querySelector('.conn'));
  for (const b of grid.querySelectorAll('.conn[aria-expanded="true"]')) b.setAttribute('aria-expanded', 'false');
  qualityPop.dataset.uid = uid;
  if (pin) qualityPop.dataset.pinned = 'yes';
  else delete qualityPop.dataset.pinned;
  fillQuality(uid);
  qualityPop.hidden = false;
  conn.setAttribute('aria-expanded', 'true');
  const r = conn.getBoundingClientRect();
  const w = qualityPop.offsetWidth;
  qualityPop.style.left = `${Math.max(8, Math.min(window.innerWidth - w - 8, r.left))}px`;
  qualityPop.style.top = `${Math.min(window.innerHeight - qualityPop.offsetHeight - 8, r.bottom + 6)}px`;
}

function hideQuality() {
  if (qualityPop.hidden) return;
  qualityPop.hidden = true;
  delete qualityPop.dataset.pinned;
  delete qualityPop.dataset.uid;
  for (const b of grid.querySelectorAll('.conn[aria-expanded="true"]')) b.setAttribute('aria-expanded', 'false');
}

document.addEventListener('keydown', (e) => { if (e.key === 'Escape') hideQuality(); });
document.addEventListener('click', (e) => {
  const t = /** @type {HTMLElement} */ (e.target);
  if (!qualityPop.hidden && !t.closest('.conn') && !t.closest('#quality-details')) hideQuality();
});

// ---- controls ------------------------------------------------------------------------------

function updateCount() {
  const n = tiles.size;
  $('#waiting').hidden = n !== 1;
  $('#people-count').textContent = n === 1 ? 'Just you' : `${n} people`;
  $('#people-badge').textContent = String(n);
  grid.dataset.count = String(n);
  renderPeople();
}

function syncButtons() {
  if (!client) return;
  const d = client.devices;
  btnMic.setAttribute('aria-pressed', String(d.microphone));
  btnMic.title = d.microphone ? 'Mute microphone' : 'Unmute microphone';
  btnCam.setAttribute('aria-pressed', String(d.camera));
  btnCam.title = d.camera ? 'Turn camera off' : 'Turn camera on';
  btnScreen.setAttribute('aria-pressed', String(d.screen));
  btnScreen.title = d.screen ? 'Stop sharing' : 'Share your screen';
  const canShare = !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
  /** @type {HTMLButtonElement} */ (btnScreen).disabled = !canShare;
  if (!canShare) btnScreen.title = 'This browser cannot share the screen';
}

btnMic.addEventListener('click', () => client?.setMicrophone(!client.devices.microphone));
btnCam.addEventListener('click', async () => {
  if (!client) return;
  await client.setCamera(!client.devices.camera);
  fillDevices();
});
btnScreen.addEventListener('click', () => {
  if (!client) return;
  if (client.devices.screen) client.stopScreenShare();
  else client.startScreenShare();
});
$('#btn-settings').addEventListener('click', () => {
  fillDevices();
  settingsDialog.showModal();
});
btnLeave.addEventListener('click', async () => {
  const c = client;
  if (!c) return;
  client = null;
  if (lastCall) lastCall.devices = { camera: c.devices.camera || c.devices.screen, microphone: c.devices.microphone };
  await c.leave();
  showLeft();
});
// Keyboard shortcuts of the common call pages: Ctrl/Cmd+D microphone, Ctrl/Cmd+E camera.
document.addEventListener('keydown', (e) => {
  if (!client || !(e.ctrlKey || e.metaKey) || e.altKey || e.shiftKey) return;
  if (e.key === 'd') {
    e.preventDefault();
    btnMic.click();
  } else if (e.key === 'e') {
    e.preventDefault();
    btnCam.click();
  }
});
async function copyInvite() {
  const link = `${location.origin}/?room=${encodeURIComponent(client?.roomId || roomInput.value)}`;
  try {
    await navigator.clipboard.writeText(link);
    toast('Invite link copied — send it to the people you want to call');
  } catch {
    window.prompt('Copy this invite link', link);
  }
}
$('#copy-link').addEventListener('click', copyInvite);
$('#copy-link-2').addEventListener('click', copyInvite);
addEventListener('pagehide', () => { client?.leaveNow(); previewClient?.stopMedia(); });
new ResizeObserver(() => layout()).observe(grid);

/**
 * Places the tiles. A remote presenter gets the spotlight with the others beside it (or
 * below, in portrait); on a portrait screen your own view floats small in a corner; else
 * the column count that gives the largest tiles wins.
 */
function layout() {
  const all = /** @type {HTMLElement[]} */ ([...grid.children]);
  if (!all.length) return;
  const W = grid.clientWidth;
  const H = grid.clientHeight;
  if (!W || !H) return;
  const gap = parseFloat(getComputedStyle(grid).getPropertyValue('--gap')) || 12;
  const local = tiles.get(LOCAL);
  const portrait = H > W;
  const presenter = all.find((el) => el !== local && el.dataset.screen === 'on');
  const place = (el, x, y, w, h) => {
    el.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
    el.style.width = `${Math.round(w)}px`;
    el.style.height = `${Math.round(h)}px`;
    if (el.classList.contains('fresh')) requestAnimationFrame(() => el.classList.remove('fresh'));
  };
  for (const el of all) el.classList.remove('pip');

  if (presenter && all.length > 1) {
    const rest = all.filter((el) => el !== presenter);
    if (!portrait) {
      const sideW = Math.min(320, Math.max(180, W * 0.22));
      const h = Math.min((sideW * 9) / 16, (H - gap * (rest.length - 1)) / rest.length);
      const w = (h * 16) / 9;
      const y0 = (H - (rest.length * h + (rest.length - 1) * gap)) / 2;
      place(presenter, 0, 0, W - sideW - gap, H);
      rest.forEach((el, i) => place(el, W - sideW + (sideW - w) / 2, y0 + i * (h + gap), w, h));
    } else {
      const mainH = H * 0.62;
      const w = Math.min((W - gap * (rest.length - 1)) / rest.length, ((H - mainH - gap) * 4) / 3);
      const h = Math.min(H - mainH - gap, (w * 4) / 3);
      const x0 = (W - (rest.length * w + (rest.length - 1) * gap)) / 2;
      place(presenter, 0, 0, W, mainH);
      rest.forEach((el, i) => place(el, x0 + i * (w + gap), mainH + gap, w, h));
    }
    return;
  }

  let list = all;
  if (portrait && local && all.length > 1) {
    // Your own view as a small floating window; the others share the screen.
    list = all.filter((el) => el !== local);
    const w = Math.min(132, W * 0.32);
    const h = (w * 4) / 3;
    local.classList.add('pip');
    place(local, W - w - 8, H - h - 8, w, h);
  }
  const n = list.length;
  const [minA, maxA] = portrait ? [3 / 4, 16 / 9] : [4 / 3, 16 / 9];
  let best = { w: 0, h: 0, cols: 1 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    let w = (W - gap * (cols - 1)) / cols;
    let h = (H - gap * (rows - 1)) / rows;
    if (w / h > maxA) w = h * maxA;
    if (w / h < minA) h = w / minA;
    if (w * h > best.w * best.h + 1) best = { w, h, cols };
  }
  const rows = Math.ceil(n / best.cols);
  const y0 = (H - (rows * best.h + (rows - 1) * gap)) / 2;
  list.forEach((el, i) => {
    const r = Math.floor(i / best.cols);
    const inRow = Math.min(best.cols, n - r * best.cols);
    const x0 = (W - (inRow * best.w + (inRow - 1) * gap)) / 2;
    place(el, x0 + (i % best.cols) * (best.w + gap), y0 + r * (best.h + gap), best.w, best.h);
  });
}

/** Rings the tile of whoever is talking (audio level from the RTP receivers, no extra cost). */
function updateSpeaking() {
  if (!client) return;
  for (const peer of client.peers.values()) {
    const el = tiles.get(peer.uid);
    if (!el || !peer.pc) continue;
    let level = 0;
    for (const r of peer.pc.getReceivers()) {
      if (r.track.kind !== 'audio') continue;
      for (const s of r.getSynchronizationSources()) level = Math.max(level, s.audioLevel ?? 0);
    }
    el.classList.toggle('speaking', level > 0.05 && peer.devices.microphone);
  }
}

function toast(text, kind = 'info', ms = 4000) {
  const t = document.createElement('div');
  t.className = `toast ${kind}`;
  if (kind === 'error') t.setAttribute('role', 'alert');
  t.textContent = text;
  t.title = 'Click to dismiss';
  t.addEventListener('click', () => t.remove());
  toasts.append(t);
  // At most three at once; routine notices ("Ben joined") make way before warnings do.
  while (toasts.children.length > 3) {
    const info = [...toasts.children].find((el) => el.classList.contains('info') && el !== t);
    (info || toasts.firstElementChild).remove();
  }
  setTimeout(() => t.remove(), ms);
}

// ---- start ---------------------------------------------------------------------------------

/** Reads the link: `?room=R&name=N` joins at once, `?room=R` fills the room in. */
function start() {
  const linkRoom = params.get('room');
  const linkName = params.get('name');
  roomInput.value = linkRoom ?? randomRoom();
  nameInput.value = (linkName ?? localStorage.getItem('rtcroom.name') ?? '').trim();
  const rp = linkRoom !== null ? roomProblem(linkRoom) : '';
  const np = linkName !== null ? nameProblem(linkName) : '';
  if (rp || np) {
    // A link is never rewritten silently: say what is wrong and let the user fix it.
    document.body.dataset.state = 'invalid-link';
    if (rp) showLobbyError('This link’s room name cannot be used', ` “${linkRoom.slice(0, 80)}${linkRoom.length > 80 ? '…' : ''}” — ${rp} Correct it below, or pick another room.`, 'link');
    else showLobbyError('This link’s name cannot be used', ` ${np} Correct it below.`, 'link');
    fieldError(roomInput, $('#room-error'), rp);
    fieldError(nameInput, $('#name-error'), np);
    enterLobby();
    (rp ? roomInput : nameInput).focus();
    return;
  }
  if (linkRoom && linkName) {
    startCall(linkRoom, linkName.trim());
    return;
  }
  enterLobby();
  (linkRoom ? nameInput : roomInput).focus();
}

start();
