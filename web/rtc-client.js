// rtcroom browser SDK: signaling (the wire protocol of docs/protocol.md) and a mesh of
// RTCPeerConnections, one per remote member. No dependencies, no build step: import it as an
// ES module. Types are in rtc-client.d.ts; the guide is docs/web.md.
//
// Who offers: the members already in the room offer to a newcomer (on notifyNewPeer); the
// newcomer answers each relayOffer. The side that offered is the initiator of that pair and
// the only one that restarts ICE. Tracks change with replaceTrack on two fixed transceivers
// (audio, video), so muting, camera on/off and screen share never renegotiate.

export const SDK_VERSION = '0.1.0';
export const SDK_INFO = `rtcroom-web/${SDK_VERSION}`;

/** Result codes of the protocol (`result`), plus the client-side ones. */
export const ResultCode = Object.freeze({
  OK: 0,
  ROOM_FULL: 1,
  UID_NOT_FOUND: 2,
  BAD_MESSAGE: 3,
  WEBSOCKET_BROKEN: 4,
  ROOM_NOT_FOUND: 5,
  REMOTE_NOT_FOUND: 6,
  NO_ROOM_SERVER: 7,
  ICE_FULL: 8,
  ICE_INVALID: 9,
  NO_MICROPHONE: 10,
  CLIENT_EXCEPTION: 11,
  TOKEN_REFUSED: 12,
  NOT_ALLOWED: 13,
  RATE_LIMITED: 14,
});

/** `turnTalkType.index`: which device changed. */
export const DeviceIndex = Object.freeze({ CAMERA: 0, MICROPHONE: 1, SCREEN: 2, SYSTEM_SOUND: 3 });

/** An error with the protocol's result code; `source` says which step failed. */
export class RtcError extends Error {
  /**
   * @param {number} result
   * @param {string} desc
   * @param {string} [source]
   */
  constructor(result, desc, source = 'client') {
    super(desc);
    this.name = 'RtcError';
    this.result = result;
    this.desc = desc;
    this.source = source;
  }
}

const DEFAULTS = {
  appId: '10000',
  token: undefined,
  server: undefined,
  loginPath: '/api/login',
  wsUrl: undefined,
  fetchToken: undefined,
  rtcConfig: undefined,
  forceRelay: false,
  video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } },
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  keepAliveIntervalMs: 5000,
  keepAliveTimeoutMs: 14000,
  keepAliveMaxFailures: 3,
  requestTimeoutMs: 10000,
  reconnectAttempts: 10,
  reconnectBaseMs: 250,
  reconnectMaxMs: 5000,
  iceRestartAttempts: 5,
  disconnectedGraceMs: 4000,
  log: false,
};

// WebSocket close codes of the room server (crates/core CloseReason): the server closed
// the connection on purpose, and reconnecting would be wrong.
const CLOSE_REPLACED = 4001;
const CLOSE_TOKEN_EXPIRED = 4003;
const CLOSE_KICKED = 4004;
// The server restarts (RFC 6455 1012): reconnect and resume, even after a systemKickUser.
const CLOSE_SERVICE_RESTART = 1012;
// How long a systemKickUser waits for the close that follows it: a 1012 makes it a restart.
const KICK_SETTLE_MS = 1500;

const now = () => Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Parses `msg` of offer/answer/candidate: a string holding JSON (orig) or an object. */
function parseMsg(msg) {
  if (typeof msg === 'string') return JSON.parse(msg);
  if (msg && typeof msg === 'object') return msg;
  throw new Error('msg is neither a JSON string nor an object');
}

/**
 * A candidate in either form: the browser's `{candidate, sdpMid, sdpMLineIndex,
 * usernameFragment}` or the original SDKs' `{label, id, candidate}`.
 */
function toCandidateInit(m) {
  const init = { candidate: m.candidate ?? '' };
  if (m.sdpMid !== undefined && m.sdpMid !== null) init.sdpMid = String(m.sdpMid);
  else if (m.id !== undefined && m.id !== null) init.sdpMid = String(m.id);
  if (m.sdpMLineIndex !== undefined && m.sdpMLineIndex !== null) init.sdpMLineIndex = Number(m.sdpMLineIndex);
  else if (m.label !== undefined && m.label !== null) init.sdpMLineIndex = Number(m.label);
  if (m.usernameFragment) init.usernameFragment = m.usernameFragment;
  if (init.sdpMid === undefined && init.sdpMLineIndex === undefined) init.sdpMLineIndex = 0;
  return init;
}

/** `{type, sdp}` from a parsed msg (tolerates a nested `sdp: {type, sdp}`). */
function toDescription(m, expected) {
  let sdp = m.sdp;
  if (sdp && typeof sdp === 'object') sdp = sdp.sdp;
  if (typeof sdp !== 'string') throw new Error(`${expected} without sdp`);
  return { type: m.type || expected, sdp };
}

function randomUid() {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return String(100000000 + (a[0] % 900000000));
}

function describeBrowser() {
  const ua = navigator.userAgent;
  const m = ua.match(/(Edg|OPR|Chrome|Chromium|Firefox|Version)\/(\d+(\.\d+)?)/);
  let name = m ? m[1].toLowerCase() : 'browser';
  if (name === 'version') name = 'safari';
  if (name === 'edg') name = 'edge';
  if (name === 'opr') name = 'opera';
  return m ? `${name}${m[2]}` : ua.slice(0, 60);
}

function describeOs() {
  const d = /** @type {any} */ (navigator).userAgentData;
  return (d && d.platform) || navigator.platform || 'unknown';
}

/** What getUserMedia's error means for the user. */
function mediaReason(err) {
  switch (err && err.name) {
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'not-found';
    case 'NotAllowedError':
    case 'SecurityError':
      return 'denied';
    case 'NotReadableError':
    case 'AbortError':
      return 'in-use';
    default:
      return 'failed';
  }
}

/** One remote member and the peer connection to it. */
class Peer {
  constructor(uid, uname, userType, talkType) {
    this.uid = uid;
    this.uname = uname || uid;
    this.userType = userType ?? 0;
    this.talkType = talkType ?? 1;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    this.initiator = false;
    this.subSessionId = '';
    this.stream = new MediaStream();
    this.connectionState = 'new';
    this.connectType = 'Unknown';
    this.reportedType = null;
    this.devices = { camera: this.talkType === 1, microphone: true, screen: false, systemSound: false };
    this.pendingCandidates = [];
    this.queue = Promise.resolve();
    this.iceRestarts = 0;
    this.disconnectTimer = 0;
    this.prevStats = null;
    /** @type {any} */
    this.lastQuality = null;
    /** @type {RTCConfiguration|undefined} */
    this.rtcConfig = undefined;
  }
}

export class RtcClient extends EventTarget {
  /** @param {Partial<typeof DEFAULTS>} [options] */
  constructor(options = {}) {
    super();
    this.options = { ...DEFAULTS, ...options };
    this.state = 'idle';
    this.appId = String(this.options.appId);
    this.uid = '';
    this.uname = '';
    this.roomId = '';
    this.roomName = '';
    this.sessionId = '';
    this.reportStatsInterval = 0;
    this.token = '';
    this.roomServer = '';
    this.expireAt = null;
    /** @type {RTCConfiguration|null} */
    this.iceServer = null;
    /** @type {Map<string, Peer>} */
    this.peers = new Map();
    this.localStream = new MediaStream();
    this.tracks = { microphone: null, camera: null, screen: null };
    this.devices = { camera: false, microphone: false, screen: false, systemSound: false };
    this.talkType = 0;
    /** The speaker chosen with selectDevice('audiooutput', id); '' is the default. */
    this.speakerId = '';
    /** @type {WebSocket|null} */
    this.ws = null;
    this.pending = new Map();
    this.timers = { keepAlive: 0, stats: 0 };
    this.lastKeepAliveAnswer = 0;
    this.keepAliveFailures = 0;
    this.reconnecting = false;
    this.loginAvailable = true;
    // From respJoin: the proof that resumes this member after a drop, and how long the
    // server keeps its place (seconds; 0 when the server does not say).
    this.resumeKey = '';
    this.heartbeatTimeout = 0;
    /** A systemKickUser waiting for the close that says whether it was final. */
    this.pendingKick = null;
  }

  // ---- events ------------------------------------------------------------------------------

  /**
   * Subscribes to an event; returns a function that unsubscribes.
   * @param {string} type
   * @param {(detail: any) => void} fn
   */
  on(type, fn) {
    const h = (/** @type {CustomEvent} */ e) => fn(e.detail);
    this.addEventListener(type, /** @type {EventListener} */ (h));
    return () => this.removeEventListener(type, /** @type {EventListener} */ (h));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  log(...args) {
    if (this.options.log) (typeof this.options.log === 'function' ? this.options.log : console.debug)('[rtcroom]', ...args);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', { state });
  }

  fail(result, desc, source, fatal = false, extra = {}) {
    this.log('error', result, desc, source);
    this.emit('error', { result, desc, source, fatal, ...extra });
  }

  // ---- media -------------------------------------------------------------------------------

  /**
   * Opens the microphone and camera (each if asked and available). A missing or refused
   * camera leaves an audio-only call; a missing microphone still joins (receive only).
   * Emits `media-warning` for each device that could not be opened.
   * @param {{audio?: boolean, video?: boolean}} [want]
   */
  async startMedia(want = {}) {
    const audio = want.audio !== false;
    const video = want.video !== false;
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) {
      if (audio) this.mediaWarning('microphone', 'unsupported', null);
      if (video) this.mediaWarning('camera', 'unsupported', null);
      return this.localStream;
    }
    let stream = null;
    if (audio && video && !this.tracks.microphone && !this.tracks.camera) {
      try {
        stream = await md.getUserMedia({ audio: this.options.audio, video: this.options.video });
      } catch (e) {
        this.log('audio+video failed, trying each', e);
      }
    }
    if (stream) {
      this.tracks.microphone = stream.getAudioTracks()[0] ?? null;
      this.tracks.camera = stream.getVideoTracks()[0] ?? null;
    } else {
      if (audio && !this.tracks.microphone) {
        try {
          const s = await md.getUserMedia({ audio: this.options.audio });
          this.tracks.microphone = s.getAudioTracks()[0] ?? null;
        } catch (e) {
          this.mediaWarning('microphone', mediaReason(e), e);
        }
      }
      if (video && !this.tracks.camera) {
        try {
          const s = await md.getUserMedia({ video: this.options.video });
          this.tracks.camera = s.getVideoTracks()[0] ?? null;
        } catch (e) {
          this.mediaWarning('camera', mediaReason(e), e);
        }
      }
    }
    this.devices.microphone = !!this.tracks.microphone;
    this.devices.camera = !!this.tracks.camera;
    this.watchTrackEnd(this.tracks.camera, 'camera');
    this.watchTrackEnd(this.tracks.microphone, 'microphone');
    this.refreshLocalStream();
    return this.localStream;
  }

  mediaWarning(device, reason, error) {
    this.log('media warning', device, reason, error);
    this.emit('media-warning', { device, reason, message: error ? `${error.name}: ${error.message}` : reason });
  }

  watchTrackEnd(track, device) {
    if (!track) return;
    track.addEventListener('ended', () => {
      // The device was unplugged or the permission revoked.
      if (device === 'camera' && this.tracks.camera === track) this.setCamera(false).catch(() => {});
      if (device === 'microphone' && this.tracks.microphone === track) {
        this.tracks.microphone = null;
        this.devices.microphone = false;
        this.replaceOutgoing('audio');
        this.announce(DeviceIndex.MICROPHONE, false);
        this.localDevicesChanged();
      }
    });
  }

  outgoingTrack(kind) {
    if (kind === 'audio') return this.tracks.microphone;
    return this.tracks.screen ?? (this.devices.camera ? this.tracks.camera : null);
  }

  refreshLocalStream() {
    const want = [this.tracks.microphone, this.outgoingTrack('video')].filter(Boolean);
    for (const t of this.localStream.getTracks()) if (!want.includes(t)) this.localStream.removeTrack(t);
    for (const t of want) if (!this.localStream.getTracks().includes(t)) this.localStream.addTrack(t);
    this.emit('local-stream', { stream: this.localStream, screen: !!this.tracks.screen });
  }

  async replaceOutgoing(kind) {
    const track = this.outgoingTrack(kind);
    const jobs = [];
    for (const peer of this.peers.values()) {
      if (!peer.pc || peer.pc.signalingState === 'closed') continue;
      for (const t of peer.pc.getTransceivers()) {
        if (t.currentDirection === 'stopped' || t.receiver.track.kind !== kind) continue;
        if (t.sender.track !== track) jobs.push(t.sender.replaceTrack(track).catch((e) => this.log('replaceTrack', e)));
      }
    }
    await Promise.all(jobs);
    this.refreshLocalStream();
  }

  localDevicesChanged() {
    this.emit('device-state', { uid: this.uid, local: true, ...this.devices });
  }

  /** Mutes or unmutes the microphone (opening it first if there was none). */
  async setMicrophone(on) {
    if (on && !this.tracks.microphone) {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ audio: this.options.audio });
        this.tracks.microphone = s.getAudioTracks()[0];
        this.watchTrackEnd(this.tracks.microphone, 'microphone');
        await this.replaceOutgoing('audio');
      } catch (e) {
        this.mediaWarning('microphone', mediaReason(e), e);
        return false;
      }
    }
    if (this.tracks.microphone) this.tracks.microphone.enabled = on;
    this.devices.microphone = on && !!this.tracks.microphone;
    this.announce(DeviceIndex.MICROPHONE, this.devices.microphone);
    this.localDevicesChanged();
    return this.devices.microphone;
  }

  /** Turns the camera on (opening it) or off (releasing it, so its light goes out). */
  async setCamera(on) {
    if (on && !this.tracks.camera) {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ video: this.options.video });
        this.tracks.camera = s.getVideoTracks()[0];
        this.watchTrackEnd(this.tracks.camera, 'camera');
      } catch (e) {
        this.mediaWarning('camera', mediaReason(e), e);
        return false;
      }
    }
    if (!on && this.tracks.camera) {
      this.tracks.camera.stop();
      this.tracks.camera = null;
    }
    this.devices.camera = on;
    await this.replaceOutgoing('video');
    this.announce(DeviceIndex.CAMERA, on);
    this.localDevicesChanged();
    return on;
  }

  /** Shares the screen in place of the camera until stopped (or the browser's stop button). */
  async startScreenShare() {
    if (this.tracks.screen) return true;
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    } catch (e) {
      if (mediaReason(e) !== 'denied') this.mediaWarning('screen', mediaReason(e), e);
      return false;
    }
    const track = stream.getVideoTracks()[0];
    if ('contentHint' in track) track.contentHint = 'detail';
    track.addEventListener('ended', () => this.stopScreenShare());
    this.tracks.screen = track;
    this.devices.screen = true;
    await this.replaceOutgoing('video');
    this.announce(DeviceIndex.SCREEN, true);
    this.localDevicesChanged();
    return true;
  }

  async stopScreenShare() {
    const track = this.tracks.screen;
    if (!track) return;
    this.tracks.screen = null;
    track.stop();
    this.devices.screen = false;
    await this.replaceOutgoing('video');
    this.announce(DeviceIndex.SCREEN, false);
    this.localDevicesChanged();
  }

  /**
   * Picks the device of `kind` by its `deviceId` (from `enumerateDevices()`; '' for the
   * browser's default). A camera or microphone that is open switches at once (the others
   * get the new track through replaceTrack; a muted microphone stays muted); a closed one
   * opens on that device later. `audiooutput` is only remembered in `speakerId`: the page
   * plays remote media through it with `setSinkId`. Resolves false, with a `media-warning`,
   * when the device cannot be opened; the old one then stays in use.
   * @param {'audioinput'|'videoinput'|'audiooutput'} kind
   * @param {string} deviceId
   */
  async selectDevice(kind, deviceId) {
    if (kind === 'audiooutput') {
      this.speakerId = deviceId;
      return true;
    }
    const device = kind === 'audioinput' ? 'microphone' : kind === 'videoinput' ? 'camera' : '';
    if (!device) throw new RtcError(ResultCode.BAD_MESSAGE, `unknown device kind ${kind}`, 'media');
    const key = device === 'microphone' ? 'audio' : 'video';
    const base = typeof this.options[key] === 'object' ? { ...this.options[key] } : {};
    delete base.deviceId;
    const constraints = deviceId ? { ...base, deviceId: { exact: deviceId } } : base;
    const old = this.tracks[device];
    if (old) {
      let track;
      try {
        track = (await navigator.mediaDevices.getUserMedia({ [key]: constraints })).getTracks()[0];
      } catch (e) {
        this.mediaWarning(device, mediaReason(e), e);
        return false;
      }
      if (this.tracks[device] !== old) {
        // Turned off (or switched again) meanwhile: this answer is stale.
        track.stop();
        return false;
      }
      track.enabled = old.enabled;
      this.tracks[device] = track;
      old.stop();
      this.watchTrackEnd(track, device);
      await this.replaceOutgoing(key);
    }
    this.options[key] = constraints;
    return true;
  }

  stopMedia() {
    for (const k of /** @type {const} */ (['microphone', 'camera', 'screen'])) {
      this.tracks[k]?.stop();
      this.tracks[k] = null;
    }
    this.devices = { camera: false, microphone: false, screen: false, systemSound: false };
    this.refreshLocalStream();
  }

  /** Tells the room that a device changed (turnTalkType); a no-op before joining. */
  announce(index, enable) {
    if (this.state !== 'joined') return;
    this.send({ cmd: 'turnTalkType', appId: this.appId, sessionId: this.sessionId, roomId: this.roomId, uid: this.uid, uname: this.uname, index, enable, time: String(now()) });
  }

  // ---- login and signaling -----------------------------------------------------------------

  defaultWsUrl() {
    const base = new URL(this.options.server ?? location.href);
    base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    base.pathname = '/ws';
    base.search = '';
    base.hash = '';
    return base.toString();
  }

  /**
   * Asks the login server for the room server, ICE servers and a token
   * (`POST /api/login`). Without a login server (404) the room server is `/ws` on the same
   * host and the token is the one given in the options (or empty).
   */
  async login() {
    if (this.options.fetchToken) {
      // The app's own backend mints tokens: ask it (again on every renewal and reconnect).
      let token;
      try {
        token = await this.options.fetchToken({ appId: this.appId, uid: this.uid, roomId: this.roomId });
      } catch (e) {
        throw new RtcError(ResultCode.TOKEN_REFUSED, `fetchToken failed: ${e && e.message}`, 'login');
      }
      this.token = String(token ?? '');
      this.roomServer = this.options.wsUrl ? this.absoluteWs(this.options.wsUrl) : this.defaultWsUrl();
      return { result: 0, desc: 'ok', roomServer: this.roomServer, token: this.token };
    }
    if (this.options.wsUrl) {
      this.roomServer = this.absoluteWs(this.options.wsUrl);
      this.token = this.options.token ?? '';
      return { result: 0, desc: 'ok', roomServer: this.roomServer, token: this.token };
    }
    const url = new URL(this.options.loginPath, this.options.server ?? location.href);
    // The uid binds the token to this member (the server checks it on join and renewal).
    const body = { protocol: 'req', cmd: 'login', appId: this.appId, ip: '', url: location.href, uid: this.uid || undefined, sdkInfo: SDK_INFO, osInfo: navigator.userAgent, time: String(now()) };
    let resp;
    try {
      resp = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), cache: 'no-store' });
    } catch (e) {
      throw new RtcError(ResultCode.NO_ROOM_SERVER, `cannot reach the login server: ${e.message}`, 'login');
    }
    if (resp.status === 404 || resp.status === 405) {
      // No login server on this host (yet): join the room server beside the page.
      this.loginAvailable = false;
      this.roomServer = this.defaultWsUrl();
      this.token = this.options.token ?? '';
      return { result: 0, desc: 'no login server', roomServer: this.roomServer, token: this.token };
    }
    let data;
    try {
      data = await resp.json();
    } catch {
      throw new RtcError(ResultCode.NO_ROOM_SERVER, `login answered HTTP ${resp.status} without JSON`, 'login');
    }
    const result = Number(data.result ?? (resp.ok ? 0 : ResultCode.CLIENT_EXCEPTION));
    if (result !== 0) throw new RtcError(result, data.desc || `login refused (${result})`, 'login');
    this.loginAvailable = true;
    this.token = data.token ?? this.options.token ?? '';
    this.expireAt = data.expireAt ?? null;
    this.roomServer = data.roomServer ? this.absoluteWs(data.roomServer) : this.defaultWsUrl();
    if (data.iceServer && typeof data.iceServer === 'object') this.iceServer = data.iceServer;
    return data;
  }

  absoluteWs(addr) {
    const u = new URL(addr, this.options.server ?? location.href);
    if (u.protocol === 'http:') u.protocol = 'ws:';
    if (u.protocol === 'https:') u.protocol = 'wss:';
    return u.toString();
  }

  openSocket(url) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        reject(new RtcError(ResultCode.NO_ROOM_SERVER, `bad room server address ${url}: ${e.message}`, 'connect'));
        return;
      }
      const timer = setTimeout(() => {
        ws.close();
        reject(new RtcError(ResultCode.NO_ROOM_SERVER, `no answer from the room server at ${url}`, 'connect'));
      }, this.options.requestTimeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(ws);
      };
      ws.onerror = () => {};
      ws.onclose = () => {
        clearTimeout(timer);
        reject(new RtcError(ResultCode.NO_ROOM_SERVER, `cannot connect to the room server at ${url}`, 'connect'));
      };
    });
  }

  attachSocket(ws) {
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      if (typeof ev.data !== 'string') return;
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch {
        this.log('unparsable frame', ev.data);
        return;
      }
      try {
        this.dispatch(m);
      } catch (e) {
        this.log('handler failed', m.cmd, e);
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onSocketLost(ev.code, ev.reason);
    };
  }

  send(obj) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      this.log('not sent (socket not open)', obj.cmd);
      return false;
    }
    ws.send(JSON.stringify(obj));
    return true;
  }

  /** Resolves with the next message `cmd` that matches, or rejects after the timeout. */
  expect(cmd, match = () => true) {
    return new Promise((resolve, reject) => {
      const entry = { match, resolve, reject, timer: 0 };
      entry.timer = setTimeout(() => {
        this.removePending(cmd, entry);
        reject(new RtcError(ResultCode.NO_ROOM_SERVER, `no ${cmd} from the room server`, 'signal'));
      }, this.options.requestTimeoutMs);
      if (!this.pending.has(cmd)) this.pending.set(cmd, []);
      this.pending.get(cmd).push(entry);
    });
  }

  removePending(cmd, entry) {
    const list = this.pending.get(cmd);
    if (!list) return;
    const i = list.indexOf(entry);
    if (i >= 0) list.splice(i, 1);
  }

  settlePending(m) {
    const list = this.pending.get(m.cmd);
    if (!list) return false;
    const entry = list.find((e) => e.match(m));
    if (!entry) return false;
    this.removePending(m.cmd, entry);
    clearTimeout(entry.timer);
    entry.resolve(m);
    return true;
  }

  rejectAllPending(err) {
    for (const [, list] of this.pending) for (const e of list.splice(0)) {
      clearTimeout(e.timer);
      e.reject(err);
    }
  }

  /**
   * Joins a room: opens the devices (unless done already), logs in, connects and sends
   * `join`. Resolves with the `respJoin`; rejects with an RtcError (result 1: room full,
   * 12: token refused, 7: no room server, ...).
   * `camera: false` joins without opening the camera (talkType 0); `microphone: false`
   * opens the microphone muted, so that unmuting is instant.
   * @param {{roomId: string, uname?: string, uid?: string, roomName?: string, camera?: boolean, microphone?: boolean, userType?: number}} params
   */
  async join(params) {
    if (this.state === 'joined' || this.state === 'connecting') throw new RtcError(ResultCode.NOT_ALLOWED, 'already joined', 'join');
    if (!params || !String(params.roomId ?? '').trim()) throw new RtcError(ResultCode.BAD_MESSAGE, 'a room id is required', 'join');
    this.roomId = String(params.roomId).trim();
    this.roomName = params.roomName ?? '';
    this.uname = params.uname ?? '';
    this.uid = params.uid ? String(params.uid) : randomUid();
    this.userType = params.userType ?? 0;
    this.setState('connecting');
    try {
      if (!this.tracks.microphone && !this.tracks.camera) await this.startMedia({ audio: true, video: params.camera !== false });
      if (params.microphone === false && this.tracks.microphone) {
        this.tracks.microphone.enabled = false;
        this.devices.microphone = false;
      }
      return await this.connectAndJoin(false);
    } catch (e) {
      this.teardownCall();
      this.stopMedia();
      this.setState('left');
      throw e instanceof RtcError ? e : new RtcError(ResultCode.CLIENT_EXCEPTION, String((e && e.message) || e), 'join');
    }
  }

  async connectAndJoin(rejoin) {
    await this.login();
    const ws = await this.openSocket(this.roomServer);
    if (this.state === 'left') {
      ws.close(1000, 'left');
      throw new RtcError(ResultCode.CLIENT_EXCEPTION, 'left while connecting', 'join');
    }
    this.attachSocket(ws);
    const answer = this.expect('respJoin');
    this.talkType = this.outgoingTrack('video') ? 1 : 0;
    const join = {
      cmd: 'join', appId: this.appId, token: this.token, roomId: this.roomId, roomName: this.roomName,
      uid: this.uid, uname: this.uname, userType: this.userType, talkType: this.talkType,
      time: String(now()), osName: describeOs(), browser: describeBrowser(), sdkInfo: SDK_INFO,
    };
    // A reconnect resumes this member: same session, and the others keep their connections.
    if (rejoin && this.resumeKey) join.resumeKey = this.resumeKey;
    this.send(join);
    const resp = await answer;
    if (this.state !== 'connecting' && this.state !== 'reconnecting') {
      this.ws = null;
      ws.close(1000, 'left');
      throw new RtcError(ResultCode.CLIENT_EXCEPTION, 'left while joining', 'join');
    }
    const result = Number(resp.result);
    if (result !== 0) {
      this.ws = null;
      ws.close(1000, 'join refused');
      throw new RtcError(result, resp.desc || `join refused (${result})`, 'join');
    }
    this.onJoined(resp, rejoin);
    return resp;
  }

  onJoined(resp, rejoin) {
    this.uid = String(resp.uid ?? this.uid);
    this.uname = resp.uname ?? this.uname;
    this.sessionId = resp.sessionId ?? '';
    this.roomName = resp.roomName ?? this.roomName;
    this.reportStatsInterval = Number(resp.reportStatsInterval) || 0;
    this.resumeKey = typeof resp.resumeKey === 'string' ? resp.resumeKey : '';
    this.heartbeatTimeout = Number(resp.heartbeatTimeout) || 0;
    const resumed = rejoin && resp.resumed === true;
    const list = Array.isArray(resp.userList) ? resp.userList : [];
    const present = new Set(list.map((u) => String(u.uid)));
    // Resumed: the peer connections never depended on the room server, so they stay as
    // they are. A plain rejoin starts every pair again: the others offer anew.
    for (const peer of [...this.peers.values()]) {
      if (!present.has(peer.uid)) this.removePeer(peer.uid, 'left');
      else if (!resumed) this.resetPeerConnection(peer);
    }
    this.setState('joined');
    this.emit('joined', { uid: this.uid, uname: this.uname, roomId: this.roomId, roomName: this.roomName, sessionId: this.sessionId, rejoin, resumed, reportStatsInterval: this.reportStatsInterval });
    if (rejoin) this.emit('reconnected', { resumed, sessionId: this.sessionId });
    for (const u of list) {
      const uid = String(u.uid);
      const known = this.peers.get(uid);
      if (known) {
        known.uname = u.uname || known.uname;
        known.talkType = Number(u.talkType ?? 1);
        continue;
      }
      this.addPeer(uid, u.uname, Number(u.userType ?? 0), Number(u.talkType ?? 1));
    }
    this.startKeepAlive();
    this.startStats();
    // The server kept our device state with the member: nothing to say again.
    if (resumed) return void this.localDevicesChanged();
    // Talk type says whether we send video; say the rest of the device state now. After a
    // rejoin say all of it: the server may still hold states from before the drop.
    if (rejoin) this.announce(DeviceIndex.CAMERA, this.devices.camera);
    if (rejoin || !this.devices.microphone) this.announce(DeviceIndex.MICROPHONE, this.devices.microphone);
    if (rejoin || this.devices.screen) this.announce(DeviceIndex.SCREEN, this.devices.screen);
    if (!rejoin && !this.tracks.microphone) this.reportInfo(ResultCode.NO_MICROPHONE, 'no microphone', null, null);
    this.localDevicesChanged();
  }

  addPeer(uid, uname, userType, talkType) {
    const peer = new Peer(uid, uname, userType, talkType);
    this.peers.set(uid, peer);
    this.emit('peer-joined', { uid, uname: peer.uname, userType: peer.userType, talkType: peer.talkType, devices: { ...peer.devices } });
    this.emit('connection-state', { uid, state: 'connecting', connectType: 'Unknown' });
    return peer;
  }

  removePeer(uid, reason) {
    const peer = this.peers.get(uid);
    if (!peer) return;
    this.peers.delete(uid);
    this.closePeerConnection(peer);
    this.emit('peer-left', { uid, uname: peer.uname, reason });
  }

  closePeerConnection(peer) {
    clearTimeout(peer.disconnectTimer);
    if (peer.pc) {
      const pc = peer.pc;
      peer.pc = null;
      pc.onicecandidate = null;
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
    peer.pendingCandidates = [];
    peer.prevStats = null;
  }

  resetPeerConnection(peer) {
    this.closePeerConnection(peer);
    peer.stream = new MediaStream();
    peer.connectionState = 'new';
    peer.connectType = 'Unknown';
    peer.reportedType = null;
    peer.iceRestarts = 0;
    this.emit('connection-state', { uid: peer.uid, state: 'connecting', connectType: 'Unknown' });
  }

  dispatch(m) {
    const cmd = m.cmd;
    // The resume key is a credential: it never goes into a log line.
    if (cmd !== 'respKeepLive') this.log('<-', cmd, m.resumeKey ? { ...m, resumeKey: '…' } : m);
    if (this.settlePending(m)) return;
    switch (cmd) {
      case 'notifyNewPeer':
        return this.onNewPeer(m);
      case 'relayOffer':
        return this.enqueue(m.uid, () => this.onOffer(m));
      case 'relayAnswer':
        return this.enqueue(m.uid, () => this.onAnswer(m));
      case 'relayCandidate':
        return this.enqueue(m.uid, () => this.onCandidate(m));
      case 'respOffer': {
        const peer = this.peers.get(String(m.remoteUid));
        if (Number(m.result) !== 0) return this.fail(Number(m.result), m.desc, 'offer');
        if (peer && m.subSessionId) peer.subSessionId = m.subSessionId;
        return;
      }
      case 'relayLeave':
        return this.removePeer(String(m.uid), 'left');
      case 'relayTurnTalkType':
        return this.onTurnTalkType(m);
      case 'respKeepLive':
        return this.onKeepLiveAnswer(m);
      case 'systemPromptToken':
        return void this.renewToken();
      case 'systemKickUser':
        return this.onKicked(m);
      case 'respUpdateToken':
        if (Number(m.result) !== 0) this.fail(Number(m.result), m.desc, 'token');
        else if (m.expireAt) this.expireAt = m.expireAt;
        return;
      case 'respJoin':
      case 'respLeave':
        return; // answers nobody waits for any more
      case 'respTurnTalkType':
      case 'respPeerConnected':
      case 'respAnswer':
      case 'respCandidate':
      case 'generalMsgResp':
        if (Number(m.result) !== 0) this.fail(Number(m.result), m.desc, cmd);
        return;
      default:
        this.log('unknown message', cmd);
    }
  }

  /** Runs the signaling of one remote in order: each step waits for the one before. */
  enqueue(uid, job) {
    const peer = this.peers.get(String(uid));
    const run = () => job().catch((e) => {
      this.log('signaling step failed', uid, e);
      this.fail(ResultCode.CLIENT_EXCEPTION, `signaling with ${uid} failed: ${e.message}`, 'webrtc');
    });
    if (!peer) return void run();
    peer.queue = peer.queue.then(run);
  }

  onNewPeer(m) {
    const uid = String(m.uid);
    let peer = this.peers.get(uid);
    if (peer) {
      // The same uid joined again (it reconnected): its old connection is gone.
      peer.uname = m.uname || peer.uname;
      peer.talkType = Number(m.talkType ?? 1);
      peer.devices = { camera: peer.talkType === 1, microphone: true, screen: false, systemSound: false };
      this.resetPeerConnection(peer);
      this.emit('device-state', { uid, local: false, ...peer.devices });
    } else {
      peer = this.addPeer(uid, m.uname, Number(m.userType ?? 0), Number(m.talkType ?? 1));
    }
    peer.rtcConfig = m.rtcConfig;
    const p = peer;
    this.enqueue(uid, () => this.makeOffer(p, false));
  }

  rtcConfiguration(fromServer) {
    /** @type {RTCConfiguration} */
    const cfg = { ...(fromServer || this.iceServer || this.options.rtcConfig || {}) };
    if (!Array.isArray(cfg.iceServers)) cfg.iceServers = [];
    cfg.iceServers = cfg.iceServers
      .map((s) => {
        const urls = Array.isArray(s.urls) ? s.urls : [s.urls].filter(Boolean);
        const out = { urls };
        // STUN entries carry empty credentials on the wire; TURN ones need them.
        if (s.username) out.username = s.username;
        if (s.credential) out.credential = s.credential;
        return out;
      })
      .filter((s) => s.urls.length > 0 && (s.username || s.urls.every((u) => !/^turns?:/.test(u))));
    if (this.options.forceRelay) cfg.iceTransportPolicy = 'relay';
    for (const k of Object.keys(cfg)) if (cfg[k] === '' || cfg[k] === null) delete cfg[k];
    return cfg;
  }

  createPeerConnection(peer, rtcConfig) {
    this.closePeerConnection(peer);
    const pc = new RTCPeerConnection(this.rtcConfiguration(rtcConfig));
    peer.pc = pc;
    peer.stream = new MediaStream();
    pc.onicecandidate = (e) => {
      if (!e.candidate || peer.pc !== pc) return;
      this.send({ cmd: 'candidate', appId: this.appId, sessionId: this.sessionId, roomId: this.roomId, uid: this.uid, remoteUid: peer.uid, time: String(now()), msg: JSON.stringify(e.candidate.toJSON()) });
    };
    pc.ontrack = (e) => {
      if (peer.pc !== pc) return;
      for (const t of peer.stream.getTracks()) if (t.kind === e.track.kind && t !== e.track) peer.stream.removeTrack(t);
      if (!peer.stream.getTracks().includes(e.track)) peer.stream.addTrack(e.track);
      this.emit('track', { uid: peer.uid, track: e.track, stream: peer.stream });
    };
    pc.onconnectionstatechange = () => {
      if (peer.pc === pc) this.onPeerState(peer, pc);
    };
    return pc;
  }

  async makeOffer(peer, iceRestart) {
    if (!this.peers.has(peer.uid)) return;
    let pc = peer.pc;
    if (!iceRestart || !pc) {
      pc = this.createPeerConnection(peer, peer.rtcConfig);
      peer.initiator = true;
      for (const kind of ['audio', 'video']) {
        const t = pc.addTransceiver(kind, { direction: 'sendrecv' });
        const track = this.outgoingTrack(kind);
        if (track) await t.sender.replaceTrack(track);
      }
    }
    const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
    if (peer.pc !== pc) return;
    await pc.setLocalDescription(offer);
    this.send({
      cmd: 'offer', appId: this.appId, sessionId: this.sessionId, roomId: this.roomId, uid: this.uid, uname: this.uname,
      remoteUid: peer.uid, time: String(now()), msg: JSON.stringify({ type: 'offer', sdp: pc.localDescription.sdp }), isIceReset: !!iceRestart,
    });
  }

  async onOffer(m) {
    const uid = String(m.uid);
    let peer = this.peers.get(uid);
    if (!peer) peer = this.addPeer(uid, m.uname, 0, 1);
    const desc = toDescription(parseMsg(m.msg), 'offer');
    let pc = peer.pc;
    const restart = !!m.isIceReset && pc && pc.signalingState !== 'closed';
    if (!restart) {
      pc = this.createPeerConnection(peer, m.rtcConfig);
      peer.initiator = false;
      peer.rtcConfig = m.rtcConfig;
    }
    if (m.subSessionId) peer.subSessionId = m.subSessionId;
    await pc.setRemoteDescription(desc);
    if (!restart) {
      for (const t of pc.getTransceivers()) {
        const kind = t.receiver.track.kind;
        t.direction = 'sendrecv';
        const track = this.outgoingTrack(kind);
        if (track) await t.sender.replaceTrack(track);
      }
    }
    await this.flushCandidates(peer, pc);
    const answer = await pc.createAnswer();
    if (peer.pc !== pc) return;
    await pc.setLocalDescription(answer);
    this.send({
      cmd: 'answer', appId: this.appId, sessionId: this.sessionId, roomId: this.roomId, uid: this.uid, uname: this.uname,
      remoteUid: uid, time: String(now()), msg: JSON.stringify({ type: 'answer', sdp: pc.localDescription.sdp }),
    });
  }

  async onAnswer(m) {
    const peer = this.peers.get(String(m.uid));
    if (!peer || !peer.pc) return;
    const pc = peer.pc;
    if (pc.signalingState !== 'have-local-offer') {
      this.log('answer without an offer from', peer.uid, pc.signalingState);
      return;
    }
    await pc.setRemoteDescription(toDescription(parseMsg(m.msg), 'answer'));
    await this.flushCandidates(peer, pc);
  }

  async onCandidate(m) {
    const peer = this.peers.get(String(m.uid));
    if (!peer) return;
    const init = toCandidateInit(parseMsg(m.msg));
    if (!init.candidate) return; // end of candidates
    if (!peer.pc || !peer.pc.remoteDescription) {
      peer.pendingCandidates.push(init);
      return;
    }
    await peer.pc.addIceCandidate(init).catch((e) => this.log('addIceCandidate', e));
  }

  async flushCandidates(peer, pc) {
    const list = peer.pendingCandidates.splice(0);
    for (const c of list) await pc.addIceCandidate(c).catch((e) => this.log('addIceCandidate (queued)', e));
  }

  onPeerState(peer, pc) {
    const s = pc.connectionState;
    peer.connectionState = s;
    clearTimeout(peer.disconnectTimer);
    if (s === 'connected') {
      peer.iceRestarts = 0;
      this.reportConnected(peer, pc);
      return;
    }
    this.emit('connection-state', { uid: peer.uid, state: s === 'new' ? 'connecting' : s, connectType: peer.connectType });
    if (s === 'failed') this.restartIce(peer, pc);
    if (s === 'disconnected') {
      // Often transient (a network change); restart if it does not come back by itself.
      peer.disconnectTimer = setTimeout(() => {
        if (peer.pc === pc && pc.connectionState === 'disconnected') this.restartIce(peer, pc);
      }, this.options.disconnectedGraceMs);
    }
  }

  /** ICE restart, by the initiator of the pair only (document section 9). */
  restartIce(peer, pc) {
    if (!peer.initiator || peer.pc !== pc || this.state !== 'joined') return;
    if (peer.iceRestarts >= this.options.iceRestartAttempts) {
      this.fail(ResultCode.ICE_INVALID, `the connection to ${peer.uname} failed`, 'webrtc');
      this.reportInfo(ResultCode.ICE_INVALID, `ice failed with ${peer.uid}`, pc.getConfiguration(), null);
      return;
    }
    peer.iceRestarts += 1;
    this.log('ICE restart', peer.uid, peer.iceRestarts);
    this.enqueue(peer.uid, () => this.makeOffer(peer, true));
  }

  async reportConnected(peer, pc) {
    let type = 'Unknown';
    for (let i = 0; i < 5 && type === 'Unknown'; i++) {
      type = await connectTypeOf(pc).catch(() => 'Unknown');
      if (type === 'Unknown') await sleep(200);
    }
    if (peer.pc !== pc) return;
    peer.connectType = type;
    if (!peer.prevStats) peer.prevStats = await snapshot(pc).catch(() => null);
    this.emit('connection-state', { uid: peer.uid, state: 'connected', connectType: type });
    if (peer.reportedType === type) return;
    peer.reportedType = type;
    this.send({ cmd: 'peerConnected', appId: this.appId, sessionId: this.sessionId, connectType: type, roomId: this.roomId, uid: this.uid, uname: this.uname, remoteUid: peer.uid, time: String(now()) });
  }

  onTurnTalkType(m) {
    const peer = this.peers.get(String(m.uid));
    if (!peer) return;
    const key = ['camera', 'microphone', 'screen', 'systemSound'][Number(m.index)];
    if (!key) return;
    peer.devices[key] = m.enable === true || m.enable === 'true';
    this.emit('device-state', { uid: peer.uid, local: false, ...peer.devices });
  }

  reportInfo(result, desc, data1, data2) {
    this.send({ cmd: 'reportInfo', appId: this.appId, sessionId: this.sessionId, roomId: this.roomId, uid: this.uid, uname: this.uname, result, desc, data1, data2, time: String(now()) });
  }

  // ---- heartbeat, reconnect, token ---------------------------------------------------------

  startKeepAlive() {
    clearInterval(this.timers.keepAlive);
    this.lastKeepAliveAnswer = now();
    this.keepAliveFailures = 0;
    const beat = () => {
      if (this.state !== 'joined') return;
      if (now() - this.lastKeepAliveAnswer > this.options.keepAliveTimeoutMs) {
        this.log('no respKeepLive for too long: reconnecting');
        const ws = this.ws;
        this.ws = null;
        ws?.close(4000, 'keepalive timeout');
        this.onSocketLost(4000, 'keepalive timeout');
        return;
      }
      this.send({ cmd: 'keepLive', appId: this.appId, sessionId: this.sessionId, roomId: this.roomId, uid: this.uid, time: String(now()) });
    };
    beat();
    this.timers.keepAlive = setInterval(beat, this.options.keepAliveIntervalMs);
  }

  onKeepLiveAnswer(m) {
    if (Number(m.result) === 0) {
      this.lastKeepAliveAnswer = now();
      this.keepAliveFailures = 0;
      return;
    }
    this.keepAliveFailures += 1;
    if (this.keepAliveFailures >= this.options.keepAliveMaxFailures) {
      this.fail(Number(m.result), m.desc || 'the room server refuses our heartbeat', 'keepalive', true);
      this.finish();
    }
  }

  onSocketLost(code, reason) {
    if (this.state === 'reconnecting') {
      // The socket of a reconnect attempt closed before its respJoin (e.g. a cluster node
      // asked it to reconnect once more): that attempt failed now, not at its timeout.
      this.rejectAllPending(new RtcError(ResultCode.WEBSOCKET_BROKEN, 'websocket closed', 'signal'));
      return;
    }
    if (this.state !== 'joined') return;
    const kick = this.pendingKick;
    this.pendingKick = null;
    if (kick) clearTimeout(kick.timer);
    if (kick && code !== CLOSE_SERVICE_RESTART) return this.endByKick(kick.desc);
    if (code === CLOSE_REPLACED || /replaced/i.test(reason || '')) {
      // The same uid joined from another tab or device: that one has the call now.
      this.emit('ended', { reason: 'replaced', result: ResultCode.NOT_ALLOWED, desc: 'this call continues in another window' });
      this.fail(ResultCode.NOT_ALLOWED, 'this call continues in another window', 'replaced', true);
      this.finish();
      return;
    }
    if (code === CLOSE_TOKEN_EXPIRED || code === CLOSE_KICKED) {
      // systemKickUser usually came first and ended the call; this covers a lost kick.
      return this.endByKick(reason || 'removed from the room');
    }
    this.reconnect(code, reason);
  }

  /**
   * The signaling connection is gone (a drop, a server restart): connect again with
   * exponential backoff and jitter and resume with the resume key. The server keeps our
   * place for `heartbeatTimeout` seconds from when it last heard us; past that, or when the
   * server says our place is gone, the call has ended (`ended`). Peer connections are left
   * alone meanwhile: media does not pass through the room server.
   */
  async reconnect(code, reason) {
    if (this.reconnecting) return;
    this.reconnecting = true;
    this.rejectAllPending(new RtcError(ResultCode.WEBSOCKET_BROKEN, 'websocket closed', 'signal'));
    clearInterval(this.timers.keepAlive);
    // Our place is kept from when the server last heard us: the last answered heartbeat.
    const heardAt = Math.min(this.lastKeepAliveAnswer || now(), now());
    const deadline = this.heartbeatTimeout > 0 ? heardAt + this.heartbeatTimeout * 1000 : Infinity;
    this.setState('reconnecting');
    this.emit('reconnecting', { code, reason, deadline: Number.isFinite(deadline) ? deadline : null });
    let lastError = null;
    // Without a heartbeat timeout (an older server) the attempts are counted instead.
    const attempts = Number.isFinite(deadline) ? Infinity : this.options.reconnectAttempts;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const { reconnectBaseMs: base, reconnectMaxMs: max } = this.options;
      // Full jitter: clients cut off together by a restart do not come back together.
      const wait = Math.random() * Math.min(max, base * 2 ** attempt);
      if (now() + wait >= deadline) break;
      await sleep(wait);
      if (this.state !== 'reconnecting') break;
      try {
        await this.connectAndJoin(true);
        this.reconnecting = false;
        return;
      } catch (e) {
        lastError = e;
        this.log('reconnect attempt failed', attempt + 1, e);
        if (e instanceof RtcError && e.source === 'join') break; // refused: retrying will not help
        if (this.ws) {
          const ws = this.ws;
          this.ws = null;
          ws.close();
        }
      }
    }
    this.reconnecting = false;
    if (this.state !== 'reconnecting') return;
    const refused = lastError instanceof RtcError && lastError.source === 'join';
    const err = refused ? lastError : new RtcError(ResultCode.NO_ROOM_SERVER, 'the room server did not come back in time', 'reconnect');
    this.emit('ended', { reason: refused ? 'refused' : 'timeout', result: err.result, desc: err.desc });
    this.fail(err.result, err.desc, 'reconnect', true);
    this.finish();
  }

  async renewToken() {
    try {
      await this.login();
    } catch (e) {
      this.fail(e.result ?? ResultCode.CLIENT_EXCEPTION, `token renewal failed: ${e.desc ?? e.message}`, 'token');
      return;
    }
    if (!this.loginAvailable && !this.options.token) return;
    if (this.options.wsUrl && !this.options.fetchToken) return; // a fixed token: nothing to renew
    this.send({ cmd: 'updateToken', appId: this.appId, token: this.token, roomId: this.roomId, uid: this.uid, time: String(now()) });
  }

  /**
   * `systemKickUser`: final, unless the close that follows says the server restarts (1012);
   * then we reconnect and resume. So the kick waits briefly for that close.
   */
  onKicked(m) {
    const desc = m.desc || 'removed from the room';
    if (this.pendingKick) return;
    const timer = setTimeout(() => {
      if (this.pendingKick?.timer !== timer) return;
      this.pendingKick = null;
      this.endByKick(desc);
    }, KICK_SETTLE_MS);
    this.pendingKick = { desc, timer };
  }

  endByKick(desc) {
    if (this.state === 'left' || this.state === 'idle') return;
    this.emit('kicked', { desc });
    this.emit('ended', { reason: 'kicked', result: ResultCode.NOT_ALLOWED, desc });
    this.fail(/token/i.test(desc) ? ResultCode.TOKEN_REFUSED : ResultCode.NOT_ALLOWED, desc, 'kick', true);
    this.finish();
  }

  // ---- stats -------------------------------------------------------------------------------

  startStats() {
    clearInterval(this.timers.stats);
    if (!this.reportStatsInterval) return;
    this.timers.stats = setInterval(() => this.reportAllStats(), this.reportStatsInterval * 1000);
  }

  async reportAllStats() {
    for (const peer of this.peers.values()) {
      const pc = peer.pc;
      if (!pc || pc.connectionState !== 'connected') continue;
      try {
        const snap = await snapshot(pc);
        const prev = peer.prevStats;
        peer.prevStats = snap;
        if (!prev) continue;
        const q = quality(prev, snap);
        peer.lastQuality = q;
        this.send({ cmd: 'reportStats', appId: this.appId, subSessionId: peer.subSessionId || undefined, roomId: this.roomId, uid: this.uid, remoteUid: peer.uid, ...q, time: String(now()) });
        this.emit('stats', { uid: peer.uid, ...q });
      } catch (e) {
        this.log('stats failed', peer.uid, e);
      }
    }
  }

  /** The raw `RTCStatsReport` of the connection to `uid` (null when there is none). */
  async getStats(uid) {
    const pc = this.peers.get(String(uid))?.pc;
    return pc ? pc.getStats() : null;
  }

  // ---- leaving -----------------------------------------------------------------------------

  /** Leaves the room (sends `leave`, waits briefly for `respLeave`) and releases devices. */
  async leave() {
    if (this.state === 'idle' || this.state === 'left') return;
    const wasJoined = this.state === 'joined';
    this.setState('leaving');
    if (wasJoined && this.ws) {
      const answer = this.expect('respLeave').catch(() => null);
      this.send({ cmd: 'leave', appId: this.appId, sessionId: this.sessionId, roomId: this.roomId, uid: this.uid, uname: this.uname, userType: this.userType, time: String(now()) });
      await Promise.race([answer, sleep(1500)]);
    }
    this.finish();
  }

  /** For `pagehide`: sends `leave` without waiting and closes everything at once. */
  leaveNow() {
    if (this.state === 'joined') this.send({ cmd: 'leave', appId: this.appId, sessionId: this.sessionId, roomId: this.roomId, uid: this.uid, uname: this.uname, userType: this.userType, time: String(now()) });
    this.finish();
  }

  teardownCall() {
    if (this.pendingKick) clearTimeout(this.pendingKick.timer);
    this.pendingKick = null;
    this.resumeKey = '';
    clearInterval(this.timers.keepAlive);
    clearInterval(this.timers.stats);
    this.rejectAllPending(new RtcError(ResultCode.CLIENT_EXCEPTION, 'left', 'leave'));
    for (const uid of [...this.peers.keys()]) this.removePeer(uid, 'self-left');
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'leave');
  }

  finish() {
    this.teardownCall();
    this.stopMedia();
    this.sessionId = '';
    this.setState('left');
    this.emit('left', {});
  }
}

// ---- getStats helpers (standard stats types only) ------------------------------------------

/** "TURN" when the selected pair's local candidate is a relay one, else "STUN". */
export async function connectTypeOf(pc) {
  const report = await pc.getStats();
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) ?? pair;
  });
  if (!pair) report.forEach((s) => {
    if (!pair && s.type === 'candidate-pair' && s.state === 'succeeded' && (s.nominated || s.selected)) pair = s;
  });
  if (!pair) return 'Unknown';
  const local = report.get(pair.localCandidateId);
  if (!local || !local.candidateType) return 'Unknown';
  return local.candidateType === 'relay' ? 'TURN' : 'STUN';
}

function codecName(report, id) {
  const c = id ? report.get(id) : null;
  return c && c.mimeType ? c.mimeType.split('/')[1] : '';
}

/** Cumulative counters of one peer connection at one moment. */
export async function snapshot(pc) {
  const report = await pc.getStats();
  const blank = () => ({ bytes: 0, packets: 0, lost: 0, width: 0, height: 0, fps: 0, codec: '' });
  const s = { at: performance.now(), audio: { send: blank(), recv: blank() }, video: { send: blank(), recv: blank() } };
  report.forEach((r) => {
    const kind = r.kind ?? r.mediaType;
    if (kind !== 'audio' && kind !== 'video') return;
    if (r.type === 'outbound-rtp') {
      const d = s[kind].send;
      d.bytes += r.bytesSent ?? 0;
      d.packets += r.packetsSent ?? 0;
      d.width = Math.max(d.width, r.frameWidth ?? 0);
      d.height = Math.max(d.height, r.frameHeight ?? 0);
      d.fps = Math.max(d.fps, r.framesPerSecond ?? 0);
      d.codec = codecName(report, r.codecId) || d.codec;
    } else if (r.type === 'remote-inbound-rtp') {
      s[kind].send.lost += Math.max(0, r.packetsLost ?? 0);
    } else if (r.type === 'inbound-rtp') {
      const d = s[kind].recv;
      d.bytes += r.bytesReceived ?? 0;
      d.packets += r.packetsReceived ?? 0;
      d.lost += Math.max(0, r.packetsLost ?? 0);
      d.width = Math.max(d.width, r.frameWidth ?? 0);
      d.height = Math.max(d.height, r.frameHeight ?? 0);
      d.fps = Math.max(d.fps, r.framesPerSecond ?? 0);
      d.codec = codecName(report, r.codecId) || d.codec;
    }
  });
  return s;
}

/** The `audio`/`video` body of `reportStats` between two snapshots (bitRate in kbit/s). */
export function quality(prev, cur) {
  const ms = Math.max(1, cur.at - prev.at);
  const rate = (a, b) => Math.max(0, Math.round(((b.bytes - a.bytes) * 8) / ms));
  const loss = (a, b) => {
    const lost = Math.max(0, b.lost - a.lost);
    const got = Math.max(0, b.packets - a.packets);
    return lost + got > 0 ? ((lost * 100) / (lost + got)).toFixed(2) : '0.00';
  };
  const dir = (kind, way) => {
    const a = prev[kind][way];
    const b = cur[kind][way];
    const out = { bitRate: rate(a, b), packetsLostRate: loss(a, b) };
    if (kind === 'video') {
      Object.assign(out, { codecName: b.codec, width: b.width, height: b.height });
      out[way === 'send' ? 'frameRateSent' : 'frameRateRecv'] = Math.round(b.fps);
    }
    return out;
  };
  return {
    audio: { send: dir('audio', 'send'), recv: dir('audio', 'recv') },
    video: { send: dir('video', 'send'), recv: dir('video', 'recv') },
  };
}
