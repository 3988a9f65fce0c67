//! The plumbing between a reading task and the engine: items gathered into batches of
//! `batch_size`, sent over a channel two batches deep, the stream of that channel as a
//! [`BatchStream`].
//!
//! [`channel`] returns the two ends. The reading task (a `tokio::spawn`ed future, or a
//! `spawn_blocking` thread for readers that block: ODBC, files read synchronously) owns
//! the [`BatchSender`]:
//!
//! * [`push`](BatchSender::push) / [`extend`](BatchSender::extend) add items and send
//!   each batch as soon as it is full (with no cursor);
//! * [`finish`](BatchSender::finish) sends the last batch — always, even empty — with the
//!   read's cursor (or `None` for sources without one), and says how many items were sent;
//! * [`fail`](BatchSender::fail) ends the stream with an error instead: the items not sent
//!   yet are dropped, and the engine fails the run, applying nothing.
//!
//! Sending waits while two batches wait for the engine, so memory stays bounded by about
//! three batches (two in the channel, one being filled) whatever the size of the source.
//! When the stream is dropped (the run was abandoned), sending returns [`Stopped`]: the
//! reader should stop reading, and has nothing to report to anyone.
//!
//! The `*_blocking` variants do the same from a blocking thread; they panic if called
//! from within an asynchronous context.
//!
//! ```
//! use conpere_connectors::batches;
//! use conpere_model::{Item, Kind, Rejected};
//! use futures::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let item = |n: usize| Item::Rejected(Rejected {
//!     kind: Some(Kind::Student),
//!     key: None,
//!     reason: format!("line {n}"),
//!     location: None,
//!     payload: String::new(),
//! });
//! let (mut sender, mut stream) = batches::channel(2);
//! tokio::spawn(async move {
//!     // `?` ends the task quietly once nobody reads the stream any more.
//!     sender.extend((1..=3).map(item)).await?;
//!     sender.finish(Some(serde_json::json!({ "line": 3 }))).await?;
//!     Ok::<_, batches::Stopped>(())
//! });
//! let first = stream.next().await.unwrap().unwrap();
//! assert_eq!((first.items.len(), first.cursor), (2, None));
//! let last = stream.next().await.unwrap().unwrap();
//! assert_eq!(last.items.len(), 1);
//! assert_eq!(last.cursor, Some(serde_json::json!({ "line": 3 })));
//! assert!(stream.next().await.is_none());
//! # }
//! ```

use crate::connector::{BatchStream, ConnectorError};
use chrono::{DateTime, Utc};
use conpere_model::Item;
use conpere_model::{Batch, ReadAt};
use tokio::sync::mpsc;

/// Batches waiting for the engine: two, so that reading and staging overlap while memory
/// stays bounded.
const DEPTH: usize = 2;

/// The two ends of a read: the sender for the reading task, the stream for the engine.
///
/// Batches hold `batch_size` items (at least one); the channel holds two of them.
pub fn channel(batch_size: usize) -> (BatchSender, BatchStream) {
    let (sender, receiver) = mpsc::channel(DEPTH);
    let batch_size = batch_size.max(1);
    let sender = BatchSender {
        sender,
        items: Vec::with_capacity(batch_size),
        locations: Vec::new(),
        modified: Vec::new(),
        batch_size,
        sent: 0,
    };
    let stream = futures::stream::unfold(Some(receiver), |receiver| async move {
        let mut receiver = receiver?;
        match receiver.recv().await {
            Some(Message::Batch(batch)) => Some((Ok(batch), Some(receiver))),
            // The stream ends after the last batch or the error, whatever follows.
            Some(Message::Last(batch)) => Some((Ok(batch), None)),
            Some(Message::Failed(error)) => Some((Err(error), None)),
            // The reading task ended without `finish` or `fail` (it panicked, or forgot):
            // what was read may be a part of the source, never to be applied as a whole.
            None => Some((Err(unfinished()), None)),
        }
    });
    (sender, Box::pin(stream))
}

/// What travels on the channel: the end of a read is said, never inferred from the
/// channel closing.
enum Message {
    /// A full batch; more follow.
    Batch(Batch),
    /// The last batch, with the read's cursor.
    Last(Batch),
    /// The read failed.
    Failed(ConnectorError),
}

fn unfinished() -> ConnectorError {
    ConnectorError::failed(
        "reading the source",
        "the reading task stopped before the end of the read (it panicked?): \
         nothing of this run is applied; see the log",
    )
}

/// The stream's reader is gone (the run was abandoned): stop reading, there is nothing to
/// report to anyone.
///
/// A reader whose errors are [`ConnectorError`]s can let `?` turn it into one: handed to
/// [`BatchSender::fail`], that error then goes nowhere, as nobody listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the run was abandoned")
    }
}

impl std::error::Error for Stopped {}

impl From<Stopped> for ConnectorError {
    fn from(stopped: Stopped) -> ConnectorError {
        ConnectorError::failed("sending a batch", stopped)
    }
}

/// The reading task's end of a read (see [`channel`]): gathers items into batches and
/// sends each one when it is full.
///
/// End a read with [`finish`](BatchSender::finish) or [`fail`](BatchSender::fail):
/// a sender dropped without either (a panic) ends the stream with an error, so that a
/// partial read is never taken for a whole one.
#[derive(Debug)]
pub struct BatchSender {
    sender: mpsc::Sender<Message>,
    items: Vec<Item>,
    /// Where items of the batch being filled were read, by index.
    locations: Vec<(u32, ReadAt)>,
    /// When the source last changed items of the batch being filled, by index.
    modified: Vec<(u32, DateTime<Utc>)>,
    batch_size: usize,
    sent: u64,
}

impl BatchSender {
    /// Adds an item; sends the batch when it is full, waiting while two batches wait.
    pub async fn push(&mut self, item: Item) -> Result<(), Stopped> {
        self.items.push(item);
        if self.items.len() >= self.batch_size {
            let batch = self.take(None);
            let n = batch.items.len();
            self.sender
                .send(Message::Batch(batch))
                .await
                .map_err(|_| Stopped)?;
            self.sent += n as u64;
        }
        Ok(())
    }

    /// [`push`](BatchSender::push) of an item read at `location`, which every quarantine
    /// of the item then names.
    pub async fn push_at(&mut self, item: Item, location: ReadAt) -> Result<(), Stopped> {
        self.locate(location);
        self.push(item).await
    }

    /// [`push_at`](BatchSender::push_at) from a blocking thread (`spawn_blocking`).
    ///
    /// # Panics
    ///
    /// When called within an asynchronous execution context.
    pub fn push_at_blocking(&mut self, item: Item, location: ReadAt) -> Result<(), Stopped> {
        self.locate(location);
        self.push_blocking(item)
    }

    /// Says when the source last changed the next item pushed (OneRoster's
    /// `dateLastModified`): if the store holds a newer version, the item does not
    /// overwrite it.
    pub fn modified_at(&mut self, instant: DateTime<Utc>) {
        let index = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
        self.modified.push((index, instant));
    }

    /// Records where the next item was read.
    fn locate(&mut self, location: ReadAt) {
        let index = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
        self.locations.push((index, location));
    }

    /// Adds items in order, sending each batch as it fills.
    pub async fn extend(&mut self, items: impl IntoIterator<Item = Item>) -> Result<(), Stopped> {
        for item in items {
            self.push(item).await?;
        }
        Ok(())
    }

    /// Sends the last batch — the items gathered since the last full one, possibly none —
    /// with the read's cursor; returns how many items the read sent in all.
    pub async fn finish(mut self, cursor: Option<serde_json::Value>) -> Result<u64, Stopped> {
        let batch = self.take(cursor);
        let n = batch.items.len();
        self.sender
            .send(Message::Last(batch))
            .await
            .map_err(|_| Stopped)?;
        Ok(self.sent + n as u64)
    }

    /// Ends the stream with `error`; the items not sent yet are dropped. If nobody listens
    /// any more, nobody needs the error either: it is dropped too.
    pub async fn fail(self, error: ConnectorError) {
        let _ = self.sender.send(Message::Failed(error)).await;
    }

    /// [`push`](BatchSender::push) from a blocking thread (`spawn_blocking`).
    ///
    /// # Panics
    ///
    /// When called within an asynchronous execution context.
    pub fn push_blocking(&mut self, item: Item) -> Result<(), Stopped> {
        self.items.push(item);
        if self.items.len() >= self.batch_size {
            let batch = self.take(None);
            let n = batch.items.len();
            self.sender
                .blocking_send(Message::Batch(batch))
                .map_err(|_| Stopped)?;
            self.sent += n as u64;
        }
        Ok(())
    }

    /// [`finish`](BatchSender::finish) from a blocking thread (`spawn_blocking`).
    ///
    /// # Panics
    ///
    /// When called within an asynchronous execution context.
    pub fn finish_blocking(mut self, cursor: Option<serde_json::Value>) -> Result<u64, Stopped> {
        let batch = self.take(cursor);
        let n = batch.items.len();
        self.sender
            .blocking_send(Message::Last(batch))
            .map_err(|_| Stopped)?;
        Ok(self.sent + n as u64)
    }

    /// [`fail`](BatchSender::fail) from a blocking thread (`spawn_blocking`).
    ///
    /// # Panics
    ///
    /// When called within an asynchronous execution context.
    pub fn fail_blocking(self, error: ConnectorError) {
        let _ = self.sender.blocking_send(Message::Failed(error));
    }

    /// How many items the full batches sent so far held.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The gathered items as a batch with `cursor`, a new batch started.
    fn take(&mut self, cursor: Option<serde_json::Value>) -> Batch {
        let items = std::mem::replace(&mut self.items, Vec::with_capacity(self.batch_size));
        let locations = std::mem::take(&mut self.locations);
        let modified = std::mem::take(&mut self.modified);
        Batch {
            items,
            cursor,
            locations,
            modified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_model::{Kind, Rejected};
    use futures::StreamExt;

    fn item(n: usize) -> Item {
        Item::Rejected(Rejected {
            kind: Some(Kind::Student),
            key: None,
            reason: format!("item {n}"),
            location: None,
            payload: String::new(),
        })
    }

    fn reasons(batch: &Batch) -> Vec<String> {
        batch
            .items
            .iter()
            .map(|item| match item {
                Item::Rejected(r) => r.reason.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    async fn collect(stream: BatchStream) -> Vec<Result<Batch, ConnectorError>> {
        stream.collect().await
    }

    async fn batches_of(stream: BatchStream) -> Vec<Batch> {
        let batches = collect(stream).await;
        batches.into_iter().map(Result::unwrap).collect()
    }

    #[tokio::test]
    async fn full_batches_then_the_last_with_the_cursor() {
        let (mut sender, stream) = channel(3);
        let reading = tokio::spawn(async move {
            for n in 0..7 {
                sender.push(item(n)).await.unwrap();
            }
            assert_eq!(sender.sent(), 6);
            sender.finish(Some(serde_json::json!(7))).await
        });
        let batches = batches_of(stream).await;
        let sizes: Vec<usize> = batches.iter().map(|b| b.items.len()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        let cursors: Vec<_> = batches.iter().map(|b| b.cursor.clone()).collect();
        assert_eq!(cursors, [None, None, Some(serde_json::json!(7))]);
        assert_eq!(reasons(&batches[1]), ["item 3", "item 4", "item 5"]);
        assert_eq!(reading.await.unwrap(), Ok(7));
    }

    #[tokio::test]
    async fn the_last_batch_is_sent_even_empty() {
        let (mut sender, stream) = channel(2);
        let reading = tokio::spawn(async move {
            sender.extend((0..4).map(item)).await.unwrap();
            sender.finish(None).await
        });
        let batches = batches_of(stream).await;
        let sizes: Vec<usize> = batches.iter().map(|b| b.items.len()).collect();
        assert_eq!(sizes, [2, 2, 0]);
        assert!(batches.iter().all(|b| b.cursor.is_none()));
        assert_eq!(reading.await.unwrap(), Ok(4));

        let (sender, stream) = channel(10);
        let cursor = serde_json::json!({ "files": {} });
        sender.finish(Some(cursor.clone())).await.unwrap();
        let batches = collect(stream).await;
        assert_eq!(batches.len(), 1);
        let last = batches[0].as_ref().unwrap();
        assert!(last.items.is_empty());
        assert_eq!(last.cursor, Some(cursor));
    }

    #[tokio::test]
    async fn a_batch_size_of_zero_means_one() {
        let (mut sender, stream) = channel(0);
        tokio::spawn(async move {
            sender.extend((0..2).map(item)).await.unwrap();
            sender.finish(None).await.unwrap();
        });
        let sizes: Vec<usize> = collect(stream)
            .await
            .into_iter()
            .map(|b| b.unwrap().items.len())
            .collect();
        assert_eq!(sizes, [1, 1, 0]);
    }

    #[tokio::test]
    async fn fail_ends_the_stream_with_the_error_dropping_the_unsent_items() {
        let (mut sender, stream) = channel(2);
        tokio::spawn(async move {
            sender.extend((0..3).map(item)).await.unwrap();
            sender
                .fail(ConnectorError::failed("reading x", "broken"))
                .await;
        });
        let batches = collect(stream).await;
        assert_eq!(batches.len(), 2, "{batches:?}");
        assert_eq!(batches[0].as_ref().unwrap().items.len(), 2);
        let error = batches[1].as_ref().unwrap_err();
        assert_eq!(error.to_string(), "reading x: broken");
    }

    #[tokio::test]
    async fn the_channel_holds_two_batches() {
        let (mut sender, mut stream) = channel(1);
        sender.push(item(0)).await.unwrap();
        sender.push(item(1)).await.unwrap();
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), async {
            sender.push(item(2)).await
        })
        .await;
        assert!(third.is_err(), "a third batch waits for the engine");
        assert!(stream.next().await.is_some());
    }

    #[tokio::test]
    async fn stopped_once_the_stream_is_dropped() {
        let (mut sender, stream) = channel(1);
        drop(stream);
        assert_eq!(sender.push(item(0)).await, Err(Stopped));
        assert_eq!(sender.extend([item(1)]).await, Err(Stopped));
        assert_eq!(sender.finish(None).await, Err(Stopped));

        let (sender, stream) = channel(1);
        drop(stream);
        // Nobody listens: the error goes nowhere, and failing does not wait.
        sender
            .fail(ConnectorError::failed("reading x", "broken"))
            .await;

        let error = ConnectorError::from(Stopped);
        assert!(error.to_string().contains("abandoned"), "{error}");
    }

    #[tokio::test]
    async fn the_blocking_variants_from_a_blocking_thread() {
        let (mut sender, stream) = channel(2);
        let reading = tokio::task::spawn_blocking(move || {
            for n in 0..5 {
                sender.push_blocking(item(n)).unwrap();
            }
            assert_eq!(sender.sent(), 4);
            sender.finish_blocking(Some(serde_json::json!("end")))
        });
        let batches = batches_of(stream).await;
        let sizes: Vec<usize> = batches.iter().map(|b| b.items.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(batches[2].cursor, Some(serde_json::json!("end")));
        assert_eq!(reading.await.unwrap(), Ok(5));

        let (mut sender, stream) = channel(2);
        let reading = tokio::task::spawn_blocking(move || {
            sender.push_blocking(item(0)).unwrap();
            sender.fail_blocking(ConnectorError::failed("reading y", "gone"));
        });
        let batches = collect(stream).await;
        assert_eq!(batches.len(), 1);
        assert!(batches[0].is_err());
        reading.await.unwrap();

        let (mut sender, stream) = channel(1);
        drop(stream);
        let stopped = tokio::task::spawn_blocking(move || {
            let pushed = sender.push_blocking(item(0));
            (pushed, sender.finish_blocking(None))
        });
        assert_eq!(stopped.await.unwrap(), (Err(Stopped), Err(Stopped)));
        let (sender, stream) = channel(1);
        drop(stream);
        tokio::task::spawn_blocking(move || {
            sender.fail_blocking(ConnectorError::failed("reading z", "gone"))
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_reading_task_that_panics_ends_the_stream_with_an_error() {
        let (mut sender, stream) = channel(2);
        tokio::spawn(async move {
            sender.extend((1..=3).map(item)).await.unwrap();
            panic!("a reader bug");
        });
        let results = collect(stream).await;
        assert_eq!(results.len(), 2, "one full batch, then the error");
        assert!(results[0].is_ok());
        let error = results[1].as_ref().unwrap_err().to_string();
        assert!(
            error.contains("stopped before the end of the read"),
            "{error}"
        );
    }
}
