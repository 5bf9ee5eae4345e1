//! The read side: a member's calls, one session, and a day's sub-sessions and client
//! events for the daily report, as plain serde structs.
//!
//! Large reads are streamed: [`RowStream`] pages through the rows by the index
//! `(create_time, id)` in chunks of [`PAGE`], and fetches the quality aggregates of each
//! chunk with one grouped query, so a day of a million sub-sessions is never in memory at
//! once and no database connection is held between chunks.

mod cols;
mod days;
mod rows;
mod sessions;
mod sql;

pub(crate) use days::{day_range, stream_client_infos, stream_sessions, stream_sub_sessions};
pub use rows::{
    ClientInfoRow, DaySubSession, QualityRow, QualitySummary, SessionDetail, SessionRow, Stat,
    SubSessionDetail, SubSessionRow, TableCounts,
};
pub(crate) use sessions::{member_sessions, quality_reports, session, table_counts};
pub(crate) use sql::ReadSql;

use crate::error::StoreError;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Rows per page of a streamed read.
pub(crate) const PAGE: usize = 500;
/// IN lists are padded to one of these lengths, so that each statement text is prepared
/// once per connection instead of once per list length.
const IN_SIZES: [usize; 2] = [16, PAGE];

/// Rows that arrive as the database delivers them, chunk by chunk. A `futures` `Stream`;
/// [`RowStream::next`] serves callers without `StreamExt`. After an error it ends.
/// Dropping it stops the query.
#[derive(Debug)]
pub struct RowStream<T> {
    rx: mpsc::Receiver<Result<T, StoreError>>,
}

impl<T> RowStream<T> {
    pub async fn next(&mut self) -> Option<Result<T, StoreError>> {
        self.rx.recv().await
    }

    /// All rows in a `Vec`: for tests and small ranges.
    pub async fn collect(mut self) -> Result<Vec<T>, StoreError> {
        let mut all = Vec::new();
        while let Some(r) = self.next().await {
            all.push(r?);
        }
        Ok(all)
    }
}

impl<T> futures_core::Stream for RowStream<T> {
    type Item = Result<T, StoreError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
