// Types of rtc-client.js, the rtcroom browser SDK. See docs/web.md for the guide.

export declare const SDK_VERSION: string;
/** Sent as `sdkInfo` in `join` and `login`: "rtcroom-web/<version>". */
export declare const SDK_INFO: string;

/** The protocol's `result` codes, plus the client-side ones (4, 7, 9, 10, 11). */
export declare const ResultCode: Readonly<{
  OK: 0;
  ROOM_FULL: 1;
  UID_NOT_FOUND: 2;
  BAD_MESSAGE: 3;
  WEBSOCKET_BROKEN: 4;
  ROOM_NOT_FOUND: 5;
  REMOTE_NOT_FOUND: 6;
  NO_ROOM_SERVER: 7;
  ICE_FULL: 8;
  ICE_INVALID: 9;
  NO_MICROPHONE: 10;
  CLIENT_EXCEPTION: 11;
  TOKEN_REFUSED: 12;
  NOT_ALLOWED: 13;
  RATE_LIMITED: 14;
}>;

/** `turnTalkType.index`. */
export declare const DeviceIndex: Readonly<{ CAMERA: 0; MICROPHONE: 1; SCREEN: 2; SYSTEM_SOUND: 3 }>;

/** Which step failed. `login` results use the login server's codes (1 unknown appId, 2 domain not allowed, 3 parse error, 4 browser unsupported). */
export type ErrorSource =
  | 'login' | 'connect' | 'join' | 'signal' | 'offer' | 'webrtc' | 'keepalive' | 'reconnect'
  | 'token' | 'kick' | 'replaced' | 'leave' | 'client'
  | 'respTurnTalkType' | 'respPeerConnected' | 'respAnswer' | 'respCandidate' | 'generalMsgResp';

export declare class RtcError extends Error {
  constructor(result: number, desc: string, source?: ErrorSource);
  readonly result: number;
  readonly desc: string;
  readonly source: ErrorSource;
}

export interface RtcClientOptions {
  /** Default "10000". */
  appId?: string;
  /** Used when there is no login server (it answers 404), or with `wsUrl`. */
  token?: string;
  /** Base URL of the login server and of the default room server; default: the page's own. */
  server?: string;
  /** Default "/api/login". */
  loginPath?: string;
  /** Skip login and join this room server (ws:// or wss://) directly. */
  wsUrl?: string;
  /**
   * Tokens from the app's own backend instead of the login server: called before every join,
   * reconnect and renewal (systemPromptToken). The room server is `wsUrl`, else /ws beside the page.
   */
  fetchToken?: (who: { appId: string; uid: string; roomId: string }) => Promise<string>;
  /** Used only when neither notifyNewPeer/relayOffer nor login gave one. */
  rtcConfig?: RTCConfiguration;
  /** Force `iceTransportPolicy: "relay"` (TURN only) whatever the server says. */
  forceRelay?: boolean;
  /** getUserMedia constraints. */
  video?: MediaTrackConstraints;
  audio?: MediaTrackConstraints;
  /** Default 5000: `keepLive` period. */
  keepAliveIntervalMs?: number;
  /** Default 14000: reconnect when no `respKeepLive` came for this long. */
  keepAliveTimeoutMs?: number;
  /** Default 3: give up after this many non-zero `respKeepLive` in a row. */
  keepAliveMaxFailures?: number;
  /** Default 10000: how long to wait for `respJoin` and the socket to open. */
  requestTimeoutMs?: number;
  /**
   * Default 10: reconnect attempts after a drop before giving up, for a server that does
   * not say its `heartbeatTimeout`; otherwise reconnecting goes on until that timeout.
   */
  reconnectAttempts?: number;
  /** Default 250: the first reconnect waits up to this long (full jitter), doubling. */
  reconnectBaseMs?: number;
  /** Default 5000: the longest wait between reconnect attempts. */
  reconnectMaxMs?: number;
  /** Default 5: ICE restarts in a row for one peer before reporting it failed. */
  iceRestartAttempts?: number;
  /** Default 4000: how long "disconnected" may last before the initiator restarts ICE. */
  disconnectedGraceMs?: number;
  /** true: console.debug; a function: called with the log line's parts. */
  log?: boolean | ((...args: unknown[]) => void);
}

export interface JoinParams {
  roomId: string;
  uname?: string;
  /** Default: a random 9-digit uid, kept for reconnects. */
  uid?: string;
  roomName?: string;
  /** Open the camera (default true). Without one the call is audio-only (talkType 0). */
  camera?: boolean;
  /** Start unmuted (default true). The microphone is opened either way. */
  microphone?: boolean;
  userType?: number;
}

export interface DeviceState {
  camera: boolean;
  microphone: boolean;
  screen: boolean;
  systemSound: boolean;
}

export type ConnectType = 'STUN' | 'TURN' | 'Unknown';
export type ClientState = 'idle' | 'connecting' | 'joined' | 'reconnecting' | 'leaving' | 'left';

/** A remote member, as `client.peers` holds it. Treat as read-only. */
export interface PeerInfo {
  readonly uid: string;
  readonly uname: string;
  readonly userType: number;
  readonly talkType: number;
  readonly pc: RTCPeerConnection | null;
  /** True when this side made the first offer (and so restarts ICE). */
  readonly initiator: boolean;
  /** This side's sub-session towards the peer (respOffer or relayOffer). */
  readonly subSessionId: string;
  /** The remote audio and video, one track of each kind at most. */
  readonly stream: MediaStream;
  readonly connectionState: RTCPeerConnectionState;
  readonly connectType: ConnectType;
  readonly devices: DeviceState;
}

export interface RespJoin {
  cmd: 'respJoin';
  result: number;
  desc: string;
  roomId: string | number;
  roomName: string;
  uid: string | number;
  uname: string;
  sessionId: string;
  reportStatsInterval: number;
  userList: { appId: string; uid: string | number; uname: string; userType: number; talkType: number }[] | null;
}

export interface StatsDirection {
  bitRate: number;
  packetsLostRate: string;
  codecName?: string;
  width?: number;
  height?: number;
  frameRateSent?: number;
  frameRateRecv?: number;
}

/** The body of `reportStats`: kbit/s and loss in percent ("0.00"), between two snapshots. */
export interface Quality {
  audio: { send: StatsDirection; recv: StatsDirection };
  video: { send: StatsDirection; recv: StatsDirection };
}

export interface RtcClientEvents {
  state: { state: ClientState };
  /** `rejoin`: after a reconnect; `resumed`: the server kept our place and our peer connections go on. */
  joined: { uid: string; uname: string; roomId: string; roomName: string; sessionId: string; rejoin: boolean; resumed: boolean; reportStatsInterval: number };
  'peer-joined': { uid: string; uname: string; userType: number; talkType: number; devices: DeviceState };
  /** reason: "left" (the peer left, timed out or was kicked) or "self-left" (we left). */
  'peer-left': { uid: string; uname: string; reason: 'left' | 'self-left' };
  /** A remote track arrived; `stream` is the peer's stream (attach it to a <video>). */
  track: { uid: string; track: MediaStreamTrack; stream: MediaStream };
  /** Our devices (`local: true`, uid = our uid) or a peer's, after turnTalkType. */
  'device-state': DeviceState & { uid: string; local: boolean };
  'connection-state': { uid: string; state: 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed'; connectType: ConnectType };
  /** Our preview stream changed (camera on/off, screen share). */
  'local-stream': { stream: MediaStream; screen: boolean };
  /** A device could not be opened; the call goes on without it. */
  'media-warning': { device: 'camera' | 'microphone' | 'screen'; reason: 'not-found' | 'denied' | 'in-use' | 'unsupported' | 'failed'; message: string };
  /** `fatal: true` means the call ended (state "left" follows). */
  error: { result: number; desc: string; source: ErrorSource; fatal: boolean };
  /**
   * The signaling connection dropped or the server restarts (close 1012); the call goes on
   * while the SDK reconnects. `deadline` (Unix ms) is when the server gives our place up.
   */
  reconnecting: { code: number; reason: string; deadline: number | null };
  /** Back in the call. `resumed: false` means the pairs were started again. */
  reconnected: { resumed: boolean; sessionId: string };
  /**
   * The call ended without our `leave`: no reconnect within the heartbeat timeout
   * ("timeout"), our place was gone ("refused"), an operator or token expiry ("kicked"), or
   * the call moved to another window ("replaced"). `error` (fatal) and `left` follow.
   */
  ended: { reason: 'timeout' | 'refused' | 'kicked' | 'replaced'; result: number; desc: string };
  kicked: { desc: string };
  stats: Quality & { uid: string };
  left: Record<string, never>;
}

export declare class RtcClient extends EventTarget {
  constructor(options?: RtcClientOptions);
  readonly options: Required<RtcClientOptions>;
  readonly state: ClientState;
  readonly appId: string;
  readonly uid: string;
  readonly uname: string;
  readonly roomId: string;
  readonly roomName: string;
  readonly sessionId: string;
  readonly reportStatsInterval: number;
  /** Seconds the server keeps our place after a drop (from `respJoin`; 0 if not said). */
  readonly heartbeatTimeout: number;
  readonly token: string;
  readonly roomServer: string;
  readonly expireAt: number | string | null;
  /** `iceServer` from login (rtcConfig form), if any. */
  readonly iceServer: RTCConfiguration | null;
  readonly peers: ReadonlyMap<string, PeerInfo>;
  /** Our microphone and outgoing video (camera or screen), for a self view. */
  readonly localStream: MediaStream;
  readonly devices: DeviceState;
  /** 1 when we joined sending video, else 0. */
  readonly talkType: number;
  /** The speaker picked with `selectDevice('audiooutput', id)`; '' for the default. */
  readonly speakerId: string;

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof RtcClientEvents>(type: K, fn: (detail: RtcClientEvents[K]) => void): () => void;

  /** Opens microphone and camera (each if available) before joining, e.g. for a preview. */
  startMedia(want?: { audio?: boolean; video?: boolean }): Promise<MediaStream>;
  /** Login (`POST /api/login`), connect, `join`. Rejects with RtcError. */
  join(params: JoinParams): Promise<RespJoin>;
  /** Mute/unmute; resolves with the new state (false if no microphone could be opened). */
  setMicrophone(on: boolean): Promise<boolean>;
  /** Camera on (opens it) or off (releases it); resolves with the new state. */
  setCamera(on: boolean): Promise<boolean>;
  /**
   * Picks a camera (`videoinput`), microphone (`audioinput`) or speaker (`audiooutput`) by
   * its deviceId ('' for the default). An open camera or microphone switches at once; the
   * speaker is only remembered in `speakerId` for the page's `setSinkId`. False (with a
   * `media-warning`) when the device cannot be opened.
   */
  selectDevice(kind: 'audioinput' | 'videoinput' | 'audiooutput', deviceId: string): Promise<boolean>;
  /** Sends the screen in place of the camera; resolves false if the user cancelled. */
  startScreenShare(): Promise<boolean>;
  stopScreenShare(): Promise<void>;
  /** The RTCStatsReport of the connection to `uid`, or null. */
  getStats(uid: string): Promise<RTCStatsReport | null>;
  /** Sends `leave`, waits up to 1.5 s for `respLeave`, closes everything, releases devices. */
  leave(): Promise<void>;
  /** The same without waiting, for `pagehide`. */
  leaveNow(): void;
  /** Releases the devices (after leaving, or to drop a preview). */
  stopMedia(): void;
  /** Asks the login server again (also done on systemPromptToken). */
  login(): Promise<{ result: number; desc: string; roomServer: string; token: string; iceServer?: RTCConfiguration; expireAt?: number | string }>;
}

/** "TURN" if the selected candidate pair's local candidate is a relay one, else "STUN". */
export declare function connectTypeOf(pc: RTCPeerConnection): Promise<ConnectType>;

export interface StatsSnapshot {
  at: number;
  audio: { send: SnapshotDirection; recv: SnapshotDirection };
  video: { send: SnapshotDirection; recv: SnapshotDirection };
}
export interface SnapshotDirection { bytes: number; packets: number; lost: number; width: number; height: number; fps: number; codec: string }

/** Cumulative RTP counters of a peer connection (standard getStats types only). */
export declare function snapshot(pc: RTCPeerConnection): Promise<StatsSnapshot>;
/** The reportStats body between two snapshots. */
export declare function quality(prev: StatsSnapshot, cur: StatsSnapshot): Quality;
