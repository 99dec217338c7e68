//! Sending to Matrix: one task that sends queued events one at a time, in order, encrypting
//! where the room is encrypted, and retries with backoff until the homeserver answers. Keeping
//! them is the caller's job (the relay saves each event with its transaction id before queueing
//! it); because a resend carries the same transaction id, the homeserver recognises an event it
//! already has, so an event resent after a crash or a lost answer appears once.

use std::time::Duration;

use log::{debug, info, warn};
use matrix_sdk::ruma::events::AnyMessageLikeEventContent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{RoomId, TransactionId};
use matrix_sdk::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::event::MatrixEvent;
use super::sync::is_encrypted;
use crate::clock::Backoff;

/// An event to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The caller's id for it, reported back in [`MatrixEvent::Sent`] / [`MatrixEvent::SendFailed`].
    pub id: i64,
    pub room_id: String,
    /// Kept with the event by the caller and reused for every try.
    pub txn_id: String,
    pub event_type: String,
    /// The content, as JSON.
    pub content: String,
}

/// Why a send did not work.
#[derive(Debug, Clone, PartialEq)]
pub enum MatrixSendError {
    /// The homeserver refused it (forbidden, unknown room, too large...): trying again will not
    /// help.
    Refused(String),
    /// Unreachable, timed out, rate-limited, keys not shared yet...: try again later.
    Transient(String),
}

/// Where queued events go.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::Sender<Outgoing>,
}

impl Sender {
    /// A sender with room for `capacity` events and the receiving end that sends them (what
    /// [`spawn`] runs; tests read it directly).
    pub fn channel(capacity: usize) -> (Sender, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Sender { tx }, rx)
    }

    /// Queues `o` unless the queue is full (then it is handed back).
    pub fn try_queue(&self, o: Outgoing) -> Result<(), Outgoing> {
        self.tx.try_send(o).map_err(|e| match e {
            mpsc::error::TrySendError::Full(o) | mpsc::error::TrySendError::Closed(o) => o,
        })
    }

    /// Queues `o`, waiting for room in the queue.
    pub async fn queue(&self, o: Outgoing) -> Result<(), String> {
        self.tx
            .send(o)
            .await
            .map_err(|_| "the Matrix sender has stopped".to_string())
    }
}

/// Sends one event now. `e2ee`: `matrix.e2ee.enabled` (when false, encrypted rooms are refused).
pub async fn send_once(
    client: &Client,
    o: &Outgoing,
    e2ee: bool,
) -> Result<String, MatrixSendError> {
    let rid = <&RoomId>::try_from(o.room_id.as_str())
        .map_err(|e| MatrixSendError::Refused(format!("room id {}: {e}", o.room_id)))?;
    let room = client
        .get_room(rid)
        .ok_or_else(|| MatrixSendError::Refused(format!("not in room {}", o.room_id)))?;
    if !e2ee && is_encrypted(&room).await {
        return Err(MatrixSendError::Refused(format!(
            "{} is encrypted and matrix.e2ee.enabled is false",
            o.room_id
        )));
    }
    let raw: Raw<AnyMessageLikeEventContent> = Raw::from_json(
        serde_json::value::RawValue::from_string(o.content.clone())
            .map_err(|e| MatrixSendError::Refused(format!("content is not JSON: {e}")))?,
    );
    let txn = <&TransactionId>::from(o.txn_id.as_str());
    match room
        .send_raw(&o.event_type, raw)
        .with_transaction_id(txn)
        .await
    {
        Ok(r) => Ok(r.response.event_id.to_string()),
        Err(e) => {
            use matrix_sdk::ruma::api::error::ErrorKind;
            let why = e.to_string();
            match e.client_api_error_kind() {
                None | Some(ErrorKind::LimitExceeded(_)) | Some(ErrorKind::Unknown) => {
                    Err(MatrixSendError::Transient(why))
                }
                Some(_) => Err(MatrixSendError::Refused(why)),
            }
        }
    }
}

/// Starts the sender with room for `capacity` queued events; results go to `events`.
pub fn spawn(
    client: Client,
    capacity: usize,
    e2ee: bool,
    events: mpsc::Sender<MatrixEvent>,
) -> (Sender, JoinHandle<()>) {
    let (sender, mut rx) = Sender::channel(capacity);
    let task = tokio::spawn(async move {
        while let Some(o) = rx.recv().await {
            let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
            let report = loop {
                match send_once(&client, &o, e2ee).await {
                    Ok(event_id) => {
                        if backoff.failures() > 0 {
                            let tries = backoff.failures();
                            info!("Sent to {} after {tries} failed tries", o.room_id);
                        }
                        break MatrixEvent::Sent {
                            id: o.id,
                            room_id: o.room_id.clone(),
                            event_id,
                        };
                    }
                    Err(MatrixSendError::Refused(reason)) => {
                        warn!(
                            "Matrix refused a message for {}: {reason}; dropped",
                            o.room_id
                        );
                        break MatrixEvent::SendFailed { id: o.id, reason };
                    }
                    Err(MatrixSendError::Transient(why)) => {
                        // One warning per outage, then quiet retries.
                        if backoff.failures() == 0 {
                            warn!(
                                "Sending to {} failed: {why}; retrying (the message is kept)",
                                o.room_id
                            );
                        } else {
                            debug!("send to {} failed again: {why}", o.room_id);
                        }
                        tokio::time::sleep(backoff.failed()).await;
                    }
                }
            };
            if events.send(report).await.is_err() {
                return;
            }
        }
    });
    (sender, task)
}
