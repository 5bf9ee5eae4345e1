-- rtcroom call records, schema 3: no index on the quality rows' create_time.
--
-- Nothing rtcroom reads finds quality rows by time: history, the daily report and the
-- session view read them by sub_session_id (its index stays), and a day's rows are reached
-- through its sub-sessions' (create_time, id) index. Every quality row paid for the index
-- (about an eighth of SQLite's work per row, measured with callgrind; see
-- docs/benchmarks.md), so it goes. An ad-hoc query by time on this table scans it, or joins
-- through rtc_talk_subsessions.
ALTER TABLE rtc_talk_quality_stats_infos DROP INDEX ix_talk_quality_create_time;
