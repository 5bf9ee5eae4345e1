-- rtcroom call records, schema 1, for MariaDB / MySQL.
--
-- The three tables of the design document (section 4) keep its names and its columns, so the
-- queries written against the original server still work. What changed, and why:
-- * Times are DATETIME(3), UTC, the server's clock: the engine stamps milliseconds, and an
--   offer, its answer and the connect often fall within one second.
-- * Id columns that hold client-chosen values (app, room, user ids and names) are widened
--   from varchar(32) to varchar(64): the room server accepts uids up to 64 characters.
--   Session and sub-session ids are ULIDs (26 characters) and keep varchar(32).
-- * IP columns are varchar(64): an IPv6 address in text form takes up to 45 characters.
-- * Strings are NOT NULL DEFAULT '' (the writer always fills them), so "= ''" finds blanks.
-- * Character set utf8mb4: user names may hold any Unicode, which MySQL's "utf8" cannot.
-- * Every id the writer upserts by has a UNIQUE index: a retried batch never doubles a row.

CREATE TABLE rtc_talk_sessions (
  id BIGINT NOT NULL AUTO_INCREMENT COMMENT '主键 ID',
  session_id VARCHAR(32) NOT NULL DEFAULT '' COMMENT '会话 ID',
  -- Widened from varchar(1024) to TEXT, as the document warns: one sub-session id (26
  -- characters and a comma) per peer met, and a member who stays for a day meets many.
  sub_session_ids TEXT NOT NULL COMMENT '子会话 ID, comma separated',
  app_id VARCHAR(64) NOT NULL DEFAULT '' COMMENT '应用 ID',
  -- Added: a room's calls and the daily report's per-room figures need the room.
  room_id VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'room id (added)',
  user_id VARCHAR(64) NOT NULL DEFAULT '' COMMENT '用户 ID',
  user_name VARCHAR(64) NOT NULL DEFAULT '' COMMENT '用户名',
  -- Added: join carries userType beside talkType; the report splits by it.
  user_type TINYINT NOT NULL DEFAULT 0 COMMENT 'user type (added)',
  talk_type TINYINT NOT NULL DEFAULT 0 COMMENT '通话类型',
  user_ip VARCHAR(64) NOT NULL DEFAULT '' COMMENT '用户 IP',
  time_out TINYINT(1) NOT NULL DEFAULT 0 COMMENT '会话状态: 1 = left by heartbeat timeout or closed by restart recovery',
  create_time DATETIME(3) NULL DEFAULT NULL COMMENT '创建时间, 统一为服务器的系统时间',
  join_time DATETIME(3) NULL DEFAULT NULL COMMENT '加入时间',
  leave_time DATETIME(3) NULL DEFAULT NULL COMMENT '退出时间',
  duration BIGINT NOT NULL DEFAULT 0 COMMENT '时长 (seconds)',
  os_name VARCHAR(64) NOT NULL DEFAULT '' COMMENT '操作系统名称',
  browser VARCHAR(64) NOT NULL DEFAULT '' COMMENT '浏览器',
  sdk_info VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'SDK 版本',
  PRIMARY KEY (id),
  -- The writer upserts by session id; readers fetch one session by it.
  UNIQUE KEY uq_talk_sessions_session_id (session_id),
  -- A member's history, newest first.
  KEY ix_talk_sessions_member (app_id, user_id, join_time),
  -- Reports by day.
  KEY ix_talk_sessions_join_time (join_time),
  -- Restart recovery looks for rows without a leave time.
  KEY ix_talk_sessions_leave_time (leave_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='通话会话表';

CREATE TABLE rtc_talk_subsessions (
  id BIGINT NOT NULL AUTO_INCREMENT COMMENT '主键 ID',
  sub_session_id VARCHAR(32) NOT NULL DEFAULT '' COMMENT '子会话 ID',
  -- Added: the session this direction belongs to, so that a member's calls are found with
  -- an index instead of by parsing rtc_talk_sessions.sub_session_ids.
  session_id VARCHAR(32) NOT NULL DEFAULT '' COMMENT 'owning session id (added)',
  -- Added (copied from the session): the report groups and filters by app, room and user
  -- without a join.
  app_id VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'app id (added)',
  room_id VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'room id (added)',
  user_id VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'own user id (added)',
  -- -1 while the pair is open; then 0 connected and left, 1 connected and timed out,
  -- 2 never connected and left, 3 never connected and timed out.
  status TINYINT NOT NULL DEFAULT -1 COMMENT '会话状态',
  remote_user_id VARCHAR(64) NOT NULL DEFAULT '' COMMENT '对端用户 ID',
  remote_user_name VARCHAR(64) NOT NULL DEFAULT '' COMMENT '对端用户名',
  remote_user_ip VARCHAR(64) NOT NULL DEFAULT '' COMMENT '对端用户 IP',
  -- Widened from 32: the ICE server may be named by a host name.
  ice_ip VARCHAR(255) NOT NULL DEFAULT '' COMMENT 'ice IP',
  connect_type VARCHAR(10) NOT NULL DEFAULT '' COMMENT 'TURN, STUN or Unknown; empty until connected',
  -- Added: when the two members met. Every row has it (begin_time stays NULL for a pair
  -- that never exchanged an offer), so a sub-session belongs to the day of its create_time.
  create_time DATETIME(3) NULL DEFAULT NULL COMMENT 'created, server time (added)',
  begin_time DATETIME(3) NULL DEFAULT NULL COMMENT '起始时间',
  connect_time DATETIME(3) NULL DEFAULT NULL COMMENT '连接时间',
  finish_time DATETIME(3) NULL DEFAULT NULL COMMENT '结束时间',
  duration BIGINT NOT NULL DEFAULT 0 COMMENT '通话时长 (seconds from connect to finish)',
  cost INT NOT NULL DEFAULT 0 COMMENT '费用-单位分',
  PRIMARY KEY (id),
  UNIQUE KEY uq_talk_subsessions_sub_session_id (sub_session_id),
  KEY ix_talk_subsessions_session_id (session_id),
  -- The daily report streams a day's rows in (create_time, id) order.
  KEY ix_talk_subsessions_create_time (create_time, id),
  -- Restart recovery looks for rows without a finish time.
  KEY ix_talk_subsessions_finish_time (finish_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='通话子会话表';

CREATE TABLE rtc_talk_quality_stats_infos (
  id BIGINT NOT NULL AUTO_INCREMENT COMMENT '主键 ID',
  -- Added: the id of the reportStats record (a ULID), unique, so that a retried batch is
  -- recognized and never doubles a report.
  record_id VARCHAR(32) NOT NULL COMMENT 'report id (added)',
  -- Added: the reporter's session and user (the document keeps only the remote).
  session_id VARCHAR(32) NOT NULL DEFAULT '' COMMENT 'reporter session id (added)',
  user_id VARCHAR(64) NOT NULL DEFAULT '' COMMENT 'reporter user id (added)',
  remote_user_id VARCHAR(64) NOT NULL DEFAULT '' COMMENT '对端用户 ID',
  sub_session_id VARCHAR(32) NOT NULL DEFAULT '' COMMENT '所属会话 ID',
  create_time DATETIME(3) NULL DEFAULT NULL COMMENT '时间',
  -- Loss rates are FLOAT instead of float(3,2): clients send percentages such as 12.5,
  -- which float(3,2) cannot hold.
  aud_send_lost_rate FLOAT NOT NULL DEFAULT 0 COMMENT '音频发送丢包率',
  aud_send_bitrate INT NOT NULL DEFAULT 0 COMMENT '音频发送比特率',
  aud_rcv_lost_rate FLOAT NOT NULL DEFAULT 0 COMMENT '音频接收丢包率',
  aud_rcv_bitrate INT NOT NULL DEFAULT 0 COMMENT '音频接收比特率',
  vid_send_lost_rate FLOAT NOT NULL DEFAULT 0 COMMENT '视频发送丢包率',
  vid_send_bitrate INT NOT NULL DEFAULT 0 COMMENT '视频发送比特率',
  send_width INT NOT NULL DEFAULT 0 COMMENT '视频发送宽',
  send_height INT NOT NULL DEFAULT 0 COMMENT '视频发送高',
  send_framerate_sent INT NOT NULL DEFAULT 0 COMMENT '视频实际发送帧率',
  send_codec VARCHAR(32) NOT NULL DEFAULT '' COMMENT 'video send codec',
  vid_rcv_lost_rate FLOAT NOT NULL DEFAULT 0 COMMENT '视频接收丢包率',
  vid_rcv_bitrate INT NOT NULL DEFAULT 0 COMMENT '视频接收比特率',
  recv_width INT NOT NULL DEFAULT 0 COMMENT 'video receive width',
  recv_height INT NOT NULL DEFAULT 0 COMMENT 'video receive height',
  recv_framerate_recv INT NOT NULL DEFAULT 0 COMMENT '实际视频接收帧率',
  recv_codec VARCHAR(32) NOT NULL DEFAULT '' COMMENT 'video receive codec',
  PRIMARY KEY (id),
  UNIQUE KEY uq_talk_quality_record_id (record_id),
  -- The quality summary of a sub-session (history and the daily report).
  KEY ix_talk_quality_sub_session_id (sub_session_id),
  KEY ix_talk_quality_create_time (create_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='通话质量统计信息';

-- Added: reportInfo, client-side errors and events (result codes 4, 7, 9, 10, 11 ...), kept
-- for the daily report. Not in the document, which only logged them.
CREATE TABLE rtc_talk_client_infos (
  id BIGINT NOT NULL AUTO_INCREMENT,
  -- The id of the reportInfo record (a ULID), unique for idempotent retries.
  record_id VARCHAR(32) NOT NULL,
  session_id VARCHAR(32) NOT NULL DEFAULT '',
  app_id VARCHAR(64) NOT NULL DEFAULT '',
  room_id VARCHAR(64) NOT NULL DEFAULT '',
  user_id VARCHAR(64) NOT NULL DEFAULT '',
  -- The client's result code (see the protocol's result table).
  result INT NOT NULL DEFAULT 0,
  -- The client's desc ("desc" is a reserved word in SQL).
  description TEXT NOT NULL,
  -- data1 and data2 as the JSON text the client sent; NULL when absent.
  data1 MEDIUMTEXT NULL,
  data2 MEDIUMTEXT NULL,
  create_time DATETIME(3) NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_talk_client_infos_record_id (record_id),
  KEY ix_talk_client_infos_create_time (create_time, id),
  KEY ix_talk_client_infos_session_id (session_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='reportInfo client events';
