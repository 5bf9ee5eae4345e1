-- rtcroom call records, schema 2: `last_alive` on sessions and sub-sessions.
--
-- While a session or sub-session is open, the record writer stamps it with the server's time
-- every `[database] checkpoint_secs`. After a crash, restart recovery closes each open row at
-- its `last_alive` and bills a connected sub-session from its connect up to there, instead of
-- billing nothing. NULL: never stamped (closed within one interval, or written before this
-- schema); recovery then falls back to the restart time with no billing.
ALTER TABLE rtc_talk_sessions ADD COLUMN last_alive TEXT NULL;
ALTER TABLE rtc_talk_subsessions ADD COLUMN last_alive TEXT NULL;
