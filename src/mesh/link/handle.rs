//! The caller's side of the radio link: its options, the events it reports, the outcome of a
//! send, and the cheap [`LinkHandle`] with its bounded send queue. Re-exported by [`super`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::mesh::proto::{self, MeshPacket};
use crate::mesh::radio::{self, BuildError, NodeEntry, RadioInfo, TextMessage};
use crate::mesh::transport::Endpoint;

/// How the link behaves. [`LinkOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    pub endpoint: Endpoint,
    /// Keep-alive period (firmware drops a silent API client after 15 minutes).
    pub heartbeat_interval: Duration,
    /// No byte at all from the radio for this long means the link is lost.
    pub silence_timeout: Duration,
    /// The handshake must finish within this time.
    pub config_timeout: Duration,
    /// Minimum time between two packets we send.
    pub send_spacing: Duration,
    /// How long to wait for the routing answer to a sent packet.
    pub ack_timeout: Duration,
    /// Capacity of the send queue in front of the link.
    pub send_queue: usize,
    /// Capacity of the node database.
    pub max_nodes: usize,
    /// Reconnect when the link is lost (false: report and stop).
    pub reconnect: bool,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl LinkOptions {
    pub fn new(endpoint: Endpoint) -> Self {
        LinkOptions {
            endpoint,
            heartbeat_interval: Duration::from_secs(300),
            silence_timeout: Duration::from_secs(420),
            config_timeout: Duration::from_secs(60),
            send_spacing: Duration::from_millis(500),
            ack_timeout: Duration::from_secs(60),
            send_queue: 32,
            max_nodes: 2000,
            reconnect: true,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// What the link tells its owner.
#[derive(Debug, Clone)]
pub enum LinkEvent {
    /// The handshake finished (also after each reconnect and reboot).
    Ready(Box<RadioInfo>),
    /// A packet from the mesh.
    Packet(MeshPacket),
    /// A node's name or details changed.
    NodeUpdated(NodeEntry),
    /// The link was lost; `retrying` says whether the link will reconnect.
    Disconnected { reason: String, retrying: bool },
}

/// The final result of one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// The mesh acknowledged the packet.
    Acked,
    /// The radio or the mesh reported a routing error (`proto::routing_error_name`).
    Failed { error: i32 },
    /// The radio refused to queue the packet.
    Rejected { code: i32 },
    /// The radio took the packet but no answer came in time.
    NoAck,
    /// The link was lost first; `accepted` tells whether the radio had taken the packet.
    LinkLost { accepted: bool },
}

impl std::fmt::Display for SendOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendOutcome::Acked => write!(f, "acknowledged"),
            SendOutcome::Failed { error } => {
                write!(f, "failed: {}", proto::routing_error_name(*error))
            }
            SendOutcome::Rejected { code } => write!(f, "refused by the radio (code {code})"),
            SendOutcome::NoAck => write!(f, "sent, but no acknowledgement arrived"),
            SendOutcome::LinkLost { accepted: true } => {
                write!(f, "taken by the radio, then the link was lost")
            }
            SendOutcome::LinkLost { accepted: false } => {
                write!(f, "not sent: the link was lost")
            }
        }
    }
}

/// Why a send was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The send queue is full (backpressure): try later or drop and count.
    QueueFull,
    /// The link task has ended.
    Closed,
    Invalid(BuildError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::QueueFull => write!(f, "the radio send queue is full"),
            SendError::Closed => write!(f, "the radio link has stopped"),
            SendError::Invalid(e) => e.fmt(f),
        }
    }
}
impl std::error::Error for SendError {}

/// A queued send; await [`PendingSend::outcome`] for its result, or [`PendingSend::taken`]
/// for the moment the radio has it.
#[derive(Debug)]
pub struct PendingSend {
    pub packet_id: u32,
    rx: oneshot::Receiver<SendOutcome>,
    taken: Option<oneshot::Receiver<()>>,
}

impl PendingSend {
    /// Resolves when the radio has queued the packet (its queue status names our id): `Ok`.
    /// If the final outcome comes first (older firmware, an error, a lost link), `Err` with it.
    pub async fn taken(&mut self) -> Result<(), SendOutcome> {
        if let Some(taken) = self.taken.as_mut() {
            tokio::select! {
                biased;
                r = taken => {
                    self.taken = None;
                    if r.is_ok() {
                        return Ok(());
                    }
                }
                o = &mut self.rx => {
                    self.taken = None;
                    return Err(o.unwrap_or(SendOutcome::LinkLost { accepted: false }));
                }
            }
        }
        Err(self.rx_outcome().await)
    }

    /// The outcome, borrowing the handle (for `select!` loops).
    pub async fn rx_outcome(&mut self) -> SendOutcome {
        (&mut self.rx)
            .await
            .unwrap_or(SendOutcome::LinkLost { accepted: false })
    }

    pub async fn outcome(self) -> SendOutcome {
        self.rx
            .await
            .unwrap_or(SendOutcome::LinkLost { accepted: false })
    }
}

pub(super) struct Request {
    pub(super) msg: TextMessage,
    pub(super) id: u32,
    pub(super) reply: oneshot::Sender<SendOutcome>,
    pub(super) taken: oneshot::Sender<()>,
}

/// The owner's side of the link: cheap to clone.
#[derive(Clone)]
pub struct LinkHandle {
    pub(super) tx: mpsc::Sender<Request>,
    pub(super) stop: Arc<watch::Sender<bool>>,
}

impl LinkHandle {
    fn request(
        &self,
        msg: TextMessage,
        id: Option<u32>,
    ) -> Result<(Request, PendingSend), SendError> {
        // Validate now, so the caller learns of a bad message at once.
        msg.to_packet(1, radio::DEFAULT_HOP_LIMIT)
            .map_err(SendError::Invalid)?;
        let id = id
            .filter(|i| *i != 0)
            .unwrap_or_else(radio::random_packet_id);
        let (reply, rx) = oneshot::channel();
        let (taken, taken_rx) = oneshot::channel();
        Ok((
            Request {
                msg,
                id,
                reply,
                taken,
            },
            PendingSend {
                packet_id: id,
                rx,
                taken: Some(taken_rx),
            },
        ))
    }

    /// Queues a text, waiting while the queue is full.
    pub async fn send_text(&self, msg: TextMessage) -> Result<PendingSend, SendError> {
        self.send_text_with_id(msg, None).await
    }

    /// Queues a text with a packet id chosen by the caller: sending the same message again with
    /// the same id after a crash lets the radio drop the repeat (it ignores ids it has just
    /// seen), so it reaches the mesh once.
    pub async fn send_text_with_id(
        &self,
        msg: TextMessage,
        id: Option<u32>,
    ) -> Result<PendingSend, SendError> {
        let (req, pending) = self.request(msg, id)?;
        self.tx.send(req).await.map_err(|_| SendError::Closed)?;
        Ok(pending)
    }

    /// Queues a text, or fails at once with [`SendError::QueueFull`].
    pub fn try_send_text(&self, msg: TextMessage) -> Result<PendingSend, SendError> {
        let (req, pending) = self.request(msg, None)?;
        self.tx.try_send(req).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })?;
        Ok(pending)
    }

    /// Asks the link to say goodbye to the radio and end.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}
