-- rtcroom call records, schema 1, for SQLite (the embedded default).
--
-- The three tables of the design document (section 4) keep its names and its columns, so the
-- queries written against the original server still work. What changed, and why (the MySQL
-- migration carries the same decisions, with the document's column comments):
-- * Times are TEXT "YYYY-MM-DD HH:MM:SS[.fff]" in UTC, the server's clock, which SQLite's
--   date functions read and which sorts in time order. Milliseconds are kept: an offer, its
--   answer and the connect often fall within a second.
-- * SQLite does not enforce lengths; the writer cuts strings to the widths the MySQL and
--   PostgreSQL schemas declare, so the three backends hold the same values.
-- * Every id the writer upserts by has a UNIQUE index: a retried batch never doubles a row.
-- * Added columns: sessions.room_id, sessions.user_type; sub-sessions.session_id, app_id,
--   room_id, user_id, create_time; quality.record_id, session_id, user_id, the codecs and
--   the receive size; a table for reportInfo events. docs/records.md says why for each.

CREATE TABLE rtc_talk_sessions (
  id INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL DEFAULT '',
  -- TEXT, as the document warns: one sub-session id per peer met, comma separated.
  sub_session_ids TEXT NOT NULL DEFAULT '',
  app_id TEXT NOT NULL DEFAULT '',
  room_id TEXT NOT NULL DEFAULT '',
  user_id TEXT NOT NULL DEFAULT '',
  user_name TEXT NOT NULL DEFAULT '',
  user_type INTEGER NOT NULL DEFAULT 0,
  talk_type INTEGER NOT NULL DEFAULT 0,
  user_ip TEXT NOT NULL DEFAULT '',
  -- 1 = left by heartbeat timeout, or closed by restart recovery.
  time_out INTEGER NOT NULL DEFAULT 0,
  create_time TEXT NULL,
  join_time TEXT NULL,
  leave_time TEXT NULL,
  -- Seconds from join to leave.
  duration INTEGER NOT NULL DEFAULT 0,
  os_name TEXT NOT NULL DEFAULT '',
  browser TEXT NOT NULL DEFAULT '',
  sdk_info TEXT NOT NULL DEFAULT ''
);
-- The writer upserts by session id; readers fetch one session by it.
CREATE UNIQUE INDEX uq_talk_sessions_session_id ON rtc_talk_sessions (session_id);
-- A member's history, newest first.
CREATE INDEX ix_talk_sessions_member ON rtc_talk_sessions (app_id, user_id, join_time);
-- Reports by day.
CREATE INDEX ix_talk_sessions_join_time ON rtc_talk_sessions (join_time);
-- Restart recovery looks for rows without a leave time; they are few.
CREATE INDEX ix_talk_sessions_open ON rtc_talk_sessions (join_time) WHERE leave_time IS NULL;

CREATE TABLE rtc_talk_subsessions (
  id INTEGER PRIMARY KEY,
  sub_session_id TEXT NOT NULL DEFAULT '',
  -- Added: the owning session, so that a member's calls are found with an index.
  session_id TEXT NOT NULL DEFAULT '',
  app_id TEXT NOT NULL DEFAULT '',
  room_id TEXT NOT NULL DEFAULT '',
  user_id TEXT NOT NULL DEFAULT '',
  -- -1 while the pair is open; then 0 connected and left, 1 connected and timed out,
  -- 2 never connected and left, 3 never connected and timed out.
  status INTEGER NOT NULL DEFAULT -1,
  remote_user_id TEXT NOT NULL DEFAULT '',
  remote_user_name TEXT NOT NULL DEFAULT '',
  remote_user_ip TEXT NOT NULL DEFAULT '',
  ice_ip TEXT NOT NULL DEFAULT '',
  -- TURN, STUN or Unknown; empty until connected.
  connect_type TEXT NOT NULL DEFAULT '',
  -- Added: when the two members met; a sub-session belongs to the day of its create_time.
  create_time TEXT NULL,
  begin_time TEXT NULL,
  connect_time TEXT NULL,
  finish_time TEXT NULL,
  -- Seconds from connect to finish.
  duration INTEGER NOT NULL DEFAULT 0,
  -- Cents (分).
  cost INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX uq_talk_subsessions_sub_session_id ON rtc_talk_subsessions (sub_session_id);
CREATE INDEX ix_talk_subsessions_session_id ON rtc_talk_subsessions (session_id);
-- The daily report streams a day's rows in (create_time, id) order.
CREATE INDEX ix_talk_subsessions_create_time ON rtc_talk_subsessions (create_time, id);
-- Restart recovery looks for rows without a finish time; they are few.
CREATE INDEX ix_talk_subsessions_open ON rtc_talk_subsessions (create_time) WHERE finish_time IS NULL;

CREATE TABLE rtc_talk_quality_stats_infos (
  id INTEGER PRIMARY KEY,
  -- Added: the reportStats record's id (a ULID), unique for idempotent retries.
  record_id TEXT NOT NULL,
  session_id TEXT NOT NULL DEFAULT '',
  user_id TEXT NOT NULL DEFAULT '',
  remote_user_id TEXT NOT NULL DEFAULT '',
  sub_session_id TEXT NOT NULL DEFAULT '',
  create_time TEXT NULL,
  aud_send_lost_rate REAL NOT NULL DEFAULT 0,
  aud_send_bitrate INTEGER NOT NULL DEFAULT 0,
  aud_rcv_lost_rate REAL NOT NULL DEFAULT 0,
  aud_rcv_bitrate INTEGER NOT NULL DEFAULT 0,
  vid_send_lost_rate REAL NOT NULL DEFAULT 0,
  vid_send_bitrate INTEGER NOT NULL DEFAULT 0,
  send_width INTEGER NOT NULL DEFAULT 0,
  send_height INTEGER NOT NULL DEFAULT 0,
  send_framerate_sent INTEGER NOT NULL DEFAULT 0,
  send_codec TEXT NOT NULL DEFAULT '',
  vid_rcv_lost_rate REAL NOT NULL DEFAULT 0,
  vid_rcv_bitrate INTEGER NOT NULL DEFAULT 0,
  recv_width INTEGER NOT NULL DEFAULT 0,
  recv_height INTEGER NOT NULL DEFAULT 0,
  recv_framerate_recv INTEGER NOT NULL DEFAULT 0,
  recv_codec TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX uq_talk_quality_record_id ON rtc_talk_quality_stats_infos (record_id);
-- The quality summary of a sub-session (history and the daily report).
CREATE INDEX ix_talk_quality_sub_session_id ON rtc_talk_quality_stats_infos (sub_session_id);
CREATE INDEX ix_talk_quality_create_time ON rtc_talk_quality_stats_infos (create_time);

-- Added: reportInfo client events, kept for the daily report.
CREATE TABLE rtc_talk_client_infos (
  id INTEGER PRIMARY KEY,
  -- The reportInfo record's id (a ULID), unique for idempotent retries.
  record_id TEXT NOT NULL,
  session_id TEXT NOT NULL DEFAULT '',
  app_id TEXT NOT NULL DEFAULT '',
  room_id TEXT NOT NULL DEFAULT '',
  user_id TEXT NOT NULL DEFAULT '',
  result INTEGER NOT NULL DEFAULT 0,
  -- The client's desc ("desc" is a reserved word in SQL).
  description TEXT NOT NULL DEFAULT '',
  -- data1 and data2 as the JSON text the client sent; NULL when absent.
  data1 TEXT NULL,
  data2 TEXT NULL,
  create_time TEXT NULL
);
CREATE UNIQUE INDEX uq_talk_client_infos_record_id ON rtc_talk_client_infos (record_id);
CREATE INDEX ix_talk_client_infos_create_time ON rtc_talk_client_infos (create_time, id);
CREATE INDEX ix_talk_client_infos_session_id ON rtc_talk_client_infos (session_id);
