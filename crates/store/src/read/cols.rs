//! Decoding: database values into the row structs.

use super::rows::{ClientInfoRow, QualityRow, SessionRow, Stat, SubSessionRow};
use super::sql::{SESSION_COLS, kinds};
use crate::db::{Kind, Val};
use crate::error::StoreError;
use chrono::{DateTime, Utc};

/// Takes decoded values off a row, column by column.
pub(super) struct Cols(std::vec::IntoIter<Val>);

impl Cols {
    pub(super) fn new(row: Vec<Val>) -> Self {
        Cols(row.into_iter())
    }

    pub(super) fn next(&mut self) -> Result<Val, StoreError> {
        self.0
            .next()
            .ok_or_else(|| StoreError::Corrupt("row has fewer columns than selected".into()))
    }

    pub(super) fn opt_str(&mut self) -> Result<Option<String>, StoreError> {
        match self.next()? {
            Val::Str(s) => Ok(s),
            v => Err(StoreError::Corrupt(format!("expected text, got {v:?}"))),
        }
    }

    pub(super) fn str(&mut self) -> Result<String, StoreError> {
        Ok(self.opt_str()?.unwrap_or_default())
    }

    pub(super) fn opt_i64(&mut self) -> Result<Option<i64>, StoreError> {
        match self.next()? {
            Val::I64(v) => Ok(v),
            v => Err(StoreError::Corrupt(format!(
                "expected an integer, got {v:?}"
            ))),
        }
    }

    pub(super) fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(self.opt_i64()?.unwrap_or_default())
    }

    pub(super) fn f64(&mut self) -> Result<Option<f64>, StoreError> {
        match self.next()? {
            Val::F64(v) => Ok(v),
            v => Err(StoreError::Corrupt(format!("expected a number, got {v:?}"))),
        }
    }

    pub(super) fn time(&mut self) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.next()? {
            Val::Time(t) => Ok(t.map(|t| t.and_utc())),
            v => Err(StoreError::Corrupt(format!("expected a time, got {v:?}"))),
        }
    }

    pub(super) fn f64_or_zero(&mut self) -> Result<f64, StoreError> {
        Ok(self.f64()?.unwrap_or_default())
    }

    pub(super) fn quality(&mut self) -> Result<QualityRow, StoreError> {
        Ok(QualityRow {
            record_id: self.str()?,
            session_id: self.str()?,
            user_id: self.str()?,
            remote_user_id: self.str()?,
            sub_session_id: self.str()?,
            create_time: self.time()?,
            aud_send_lost_rate: self.f64_or_zero()?,
            aud_send_bitrate: self.i64()?,
            aud_rcv_lost_rate: self.f64_or_zero()?,
            aud_rcv_bitrate: self.i64()?,
            vid_send_lost_rate: self.f64_or_zero()?,
            vid_send_bitrate: self.i64()?,
            send_width: self.i64()?,
            send_height: self.i64()?,
            send_framerate_sent: self.i64()?,
            send_codec: self.str()?,
            vid_rcv_lost_rate: self.f64_or_zero()?,
            vid_rcv_bitrate: self.i64()?,
            recv_width: self.i64()?,
            recv_height: self.i64()?,
            recv_framerate_recv: self.i64()?,
            recv_codec: self.str()?,
        })
    }

    pub(super) fn session(&mut self) -> Result<SessionRow, StoreError> {
        Ok(SessionRow {
            session_id: self.str()?,
            app_id: self.str()?,
            room_id: self.str()?,
            user_id: self.str()?,
            user_name: self.str()?,
            user_type: self.i64()?,
            talk_type: self.i64()?,
            user_ip: self.str()?,
            time_out: self.i64()? != 0,
            create_time: self.time()?,
            join_time: self.time()?,
            leave_time: self.time()?,
            duration: self.i64()?,
            os_name: self.str()?,
            browser: self.str()?,
            sdk_info: self.str()?,
        })
    }

    /// A session from a LEFT JOIN: `None` when the joined row is missing.
    pub(super) fn opt_session(&mut self) -> Result<Option<SessionRow>, StoreError> {
        let row = self.session()?;
        Ok((!row.session_id.is_empty()).then_some(row))
    }

    pub(super) fn sub_session(&mut self) -> Result<SubSessionRow, StoreError> {
        Ok(SubSessionRow {
            sub_session_id: self.str()?,
            session_id: self.str()?,
            app_id: self.str()?,
            room_id: self.str()?,
            user_id: self.str()?,
            status: self.i64()?,
            remote_user_id: self.str()?,
            remote_user_name: self.str()?,
            remote_user_ip: self.str()?,
            ice_ip: self.str()?,
            connect_type: self.str()?,
            create_time: self.time()?,
            begin_time: self.time()?,
            connect_time: self.time()?,
            finish_time: self.time()?,
            duration: self.i64()?,
            cost: self.i64()?,
        })
    }

    pub(super) fn stat(&mut self) -> Result<Stat, StoreError> {
        Ok(Stat {
            avg: self.f64()?,
            min: self.f64()?,
            max: self.f64()?,
        })
    }

    pub(super) fn client_info(&mut self) -> Result<ClientInfoRow, StoreError> {
        Ok(ClientInfoRow {
            record_id: self.str()?,
            session_id: self.str()?,
            app_id: self.str()?,
            room_id: self.str()?,
            user_id: self.str()?,
            result: self.i64()?,
            desc: self.str()?,
            data1: self.opt_str()?,
            data2: self.opt_str()?,
            create_time: self.time()?,
        })
    }
}

pub(super) fn session_kinds() -> Vec<Kind> {
    let mut k = kinds(&SESSION_COLS);
    k.push(Kind::Str);
    k
}

pub(super) fn split_ids(ids: &str) -> Vec<String> {
    ids.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
