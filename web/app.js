// The rtcroom page: a lobby (room and name), then a call grid with a control bar.
// All signaling and WebRTC lives in rtc-client.js; this file only draws what it reports.

import { RtcClient, ResultCode } from './rtc-client.js';

const $ = (sel) => /** @type {HTMLElement} */ (document.querySelector(sel));
const lobby = $('#lobby');
const call = $('#call');
const form = /** @type {HTMLFormElement} */ ($('#join-form'));
const roomInput = /** @type {HTMLInputElement} */ ($('#room-input'));
const nameInput = /** @type {HTMLInputElement} */ ($('#name-input'));
const preMic = /** @type {HTMLInputElement} */ ($('#pre-mic'));
const preCam = /** @type {HTMLInputElement} */ ($('#pre-cam'));
const joinButton = /** @type {HTMLButtonElement} */ ($('#join-button'));
const lobbyError = $('#lobby-error');
const grid = $('#grid');
const toasts = $('#toasts');
const btnMic = $('#btn-mic');
const btnCam = $('#btn-cam');
const btnScreen = $('#btn-screen');
const btnLeave = $('#btn-leave');
const template = /** @type {HTMLTemplateElement} */ ($('#tile-template'));

const params = new URLSearchParams(location.search);
const debug = params.has('debug');

/** @type {RtcClient|null} */
let client = null;
/** @type {Map<string, HTMLElement>} */
const tiles = new Map();
const LOCAL = '__local__';
let levelTimer = 0;

// Tests and curious developers reach the client from the console.
Object.defineProperty(window, 'rtcroom', { value: { get client() { return client; }, tiles } });

// ---- lobby ---------------------------------------------------------------------------------

const WORDS_A = ['amber', 'brisk', 'calm', 'clear', 'bright', 'quiet', 'swift', 'sunny', 'misty', 'lucky'];
const WORDS_B = ['river', 'harbor', 'meadow', 'summit', 'forest', 'canyon', 'island', 'garden', 'comet', 'valley'];
function randomRoom() {
  const r = crypto.getRandomValues(new Uint32Array(3));
  return `${WORDS_A[r[0] % WORDS_A.length]}-${WORDS_B[r[1] % WORDS_B.length]}-${10 + (r[2] % 90)}`;
}

function cleanRoom(s) {
  return String(s || '').trim().replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 64);
}

roomInput.value = cleanRoom(params.get('room')) || randomRoom();
nameInput.value = (params.get('name') || localStorage.getItem('rtcroom.name') || '').slice(0, 32);

form.addEventListener('submit', (e) => {
  e.preventDefault();
  startCall(cleanRoom(roomInput.value), nameInput.value.trim());
});

if (params.get('room') && params.get('name')) {
  // A link with both joins at once.
  startCall(cleanRoom(params.get('room')), String(params.get('name')).trim().slice(0, 32));
} else {
  (params.get('room') ? nameInput : roomInput).focus();
}

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

// ---- call ----------------------------------------------------------------------------------

async function startCall(roomId, uname) {
  if (!roomId || !uname || client) return;
  localStorage.setItem('rtcroom.name', uname);
  roomInput.value = roomId;
  nameInput.value = uname;
  history.replaceState(null, '', `/?room=${encodeURIComponent(roomId)}&name=${encodeURIComponent(uname)}`);
  lobbyError.hidden = true;
  joinButton.disabled = true;
  joinButton.textContent = 'Joining…';
  document.body.dataset.state = 'joining';

  // A deployment (or a test) may set SDK options before this script runs, e.g.
  // <script>window.rtcroomConfig = { appId: '20000', forceRelay: true }</script>.
  const c = new RtcClient({ log: debug, .../** @type {any} */ (window).rtcroomConfig });
  client = c;
  wire(c);
  try {
    await c.join({ roomId, uname, camera: preCam.checked, microphone: preMic.checked });
  } catch (e) {
    client = null;
    const [title, body] = explain(e);
    showLobby();
    showLobbyError(title, body, e.result);
    document.body.dataset.state = 'refused';
    return;
  }
  $('#room-name').textContent = roomId;
  document.title = `${roomId} · rtcroom`;
  lobby.hidden = true;
  call.hidden = false;
  document.body.dataset.state = 'in-call';
  layout();
  levelTimer = window.setInterval(updateSpeaking, 300);
}

function showLobby() {
  joinButton.disabled = false;
  joinButton.textContent = 'Join call';
  call.hidden = true;
  lobby.hidden = false;
  clearInterval(levelTimer);
  for (const [, el] of tiles) el.remove();
  tiles.clear();
  toasts.innerHTML = '';
  document.title = 'rtcroom · video calls';
}

/** @param {RtcClient} c */
function wire(c) {
  c.on('joined', (d) => {
    const el = ensureTile(LOCAL, `${d.uname || 'You'}`);
    el.classList.add('local');
    el.dataset.uid = d.uid;
    const v = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
    v.muted = true;
    v.srcObject = c.localStream;
    setTileDevices(el, c.devices);
    syncButtons();
    updateCount();
  });
  c.on('local-stream', (d) => {
    const el = tiles.get(LOCAL);
    if (!el) return;
    const v = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
    v.srcObject = d.stream;
    v.play().catch(() => {});
  });
  c.on('peer-joined', (d) => {
    const el = ensureTile(d.uid, d.uname);
    setTileDevices(el, d.devices);
    if (call.hidden === false) toast(`${d.uname} joined`);
    updateCount();
  });
  c.on('peer-left', (d) => {
    const el = tiles.get(d.uid);
    if (el) el.remove();
    tiles.delete(d.uid);
    if (d.reason !== 'self-left') toast(`${d.uname} left`);
    updateCount();
    layout();
  });
  c.on('track', (d) => {
    const el = tiles.get(d.uid);
    if (!el) return;
    const v = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
    if (v.srcObject !== d.stream) v.srcObject = d.stream;
    v.play().catch(() => offerSound(el, v));
  });
  c.on('device-state', (d) => {
    if (d.local) {
      const el = tiles.get(LOCAL);
      if (el) setTileDevices(el, d);
      syncButtons();
      return;
    }
    const el = tiles.get(d.uid);
    if (el) setTileDevices(el, d);
    layout();
  });
  c.on('connection-state', (d) => {
    const el = tiles.get(d.uid);
    if (!el) return;
    const [key, text] = connLabel(d.state, d.connectType);
    el.dataset.conn = key;
    el.querySelector('.conn-text').textContent = text;
    /** @type {HTMLElement} */ (el.querySelector('.conn')).title = d.state === 'connected' ? (d.connectType === 'TURN' ? 'Connected through the relay server' : 'Connected directly (peer to peer)') : `Connection: ${d.state}`;
  });
  c.on('media-warning', (d) => {
    const what = { camera: 'camera', microphone: 'microphone', screen: 'screen sharing' }[d.device] || d.device;
    const why = { 'not-found': `No ${what} found`, denied: `Permission for the ${what} was denied`, 'in-use': `The ${what} is in use by another app`, unsupported: `This browser cannot open the ${what}` }[d.reason] || `The ${what} could not be opened`;
    const then = d.device === 'camera' ? ' — you are in the call with audio only.' : d.device === 'microphone' ? ' — the others cannot hear you.' : '.';
    toast(why + then, 'warn', 7000);
  });
  c.on('state', (d) => {
    const s = $('#signal-state');
    if (d.state === 'reconnecting') {
      s.textContent = 'Reconnecting…';
      s.hidden = false;
    } else {
      s.hidden = true;
    }
  });
  // The call goes on while the signaling connection comes back (a drop, a server restart).
  c.on('reconnecting', () => {
    document.body.dataset.signal = 'reconnecting';
  });
  c.on('reconnected', (d) => {
    delete document.body.dataset.signal;
    if (!d.resumed) toast('Reconnected: the call is being set up again.', 'warn', 4000);
  });
  c.on('ended', () => {
    delete document.body.dataset.signal;
  });
  c.on('error', (d) => {
    if (!d.fatal) {
      if (debug || d.source === 'webrtc') toast(explain(d).join(': '), 'error');
      return;
    }
    const [title, body] = explain(d);
    client = null;
    showLobby();
    showLobbyError(title, body, d.result);
    document.body.dataset.state = 'ended';
  });
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
  el.classList.add('fresh');
  el.querySelector('.name').textContent = uid === LOCAL ? `${uname} (you)` : uname;
  const initials = el.querySelector('.initials');
  initials.textContent = initialsOf(uname);
  /** @type {HTMLElement} */ (initials).style.setProperty('--avatar', colorOf(uname));
  const v = /** @type {HTMLVideoElement} */ (el.querySelector('video'));
  v.muted = uid === LOCAL;
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

function offerSound(el, v) {
  if (el.querySelector('.play-sound')) return;
  const b = document.createElement('button');
  b.className = 'play-sound';
  b.textContent = 'Click to hear this person';
  b.onclick = () => v.play().then(() => b.remove()).catch(() => {});
  el.append(b);
}

function updateCount() {
  const n = tiles.size;
  $('#waiting').hidden = n !== 1;
  $('#people-count').textContent = n === 1 ? 'Just you' : `${n} people`;
  grid.dataset.count = String(n);
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
btnCam.addEventListener('click', () => client?.setCamera(!client.devices.camera));
btnScreen.addEventListener('click', () => {
  if (!client) return;
  if (client.devices.screen) client.stopScreenShare();
  else client.startScreenShare();
});
btnLeave.addEventListener('click', async () => {
  const c = client;
  if (!c) return;
  client = null;
  await c.leave();
  showLobby();
  history.replaceState(null, '', `/?room=${encodeURIComponent(c.roomId)}`);
  document.body.dataset.state = 'left';
  nameInput.focus();
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
addEventListener('pagehide', () => client?.leaveNow());
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
  t.textContent = text;
  toasts.append(t);
  // At most three at once; routine notices ("Ben joined") make way before warnings do.
  while (toasts.children.length > 3) {
    const info = [...toasts.children].find((el) => el.classList.contains('info') && el !== t);
    (info || toasts.firstElementChild).remove();
  }
  setTimeout(() => t.remove(), ms);
}
