//! The radio link: the I/O shell around the framing decoder and the session. One task owns the
//! connection; callers hold a cheap [`LinkHandle`] with a bounded send queue and read
//! [`LinkEvent`]s from a bounded channel (rumqttc's handle-plus-event-loop shape).
//!
//! The task connects (serial or TCP), wakes the radio, runs the `want_config` handshake, sends a
//! heartbeat every few minutes, watches for a silent link, and reconnects with exponential
//! backoff and jitter when the link is lost. Sends respect the radio's queue status and a minimum
//! spacing; each send's result (routing ack or error) is reported to its caller.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use log::{debug, info, warn};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

use super::framing::{self, Decoder, Event as FrameEvent, WAKE_UP};
use super::proto::{self, text, to_radio, FromRadio, ToRadio};
use super::radio::{self, node_id, Output, RadioSession};
use super::transport;

/// Packets sent but not yet answered, at most.
const MAX_INFLIGHT: usize = 64;
/// A partial frame or console line is flushed after this much quiet.
const PARTIAL_FLUSH_AFTER: Duration = Duration::from_millis(500);
/// While the radio reports a full queue, ask for its status this often.
const QUEUE_POLL: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

// The caller's side (options, events, outcomes, the handle): in handle.rs.
mod handle;
use crate::clock::unix_now;
use handle::Request;
pub use handle::*;

/// Starts the link task on the current tokio runtime.
pub fn spawn(opts: LinkOptions) -> (LinkHandle, mpsc::Receiver<LinkEvent>, JoinHandle<()>) {
    let (tx, requests) = mpsc::channel(opts.send_queue.max(1));
    let (events, events_rx) = mpsc::channel(256);
    let (stop_tx, stop) = watch::channel(false);
    let link = Link {
        session: RadioSession::new(opts.max_nodes),
        decoder: Decoder::new(),
        opts,
        events,
        requests,
        stop,
        inflight: HashMap::new(),
    };
    let task = tokio::spawn(link.run());
    (
        LinkHandle {
            tx,
            stop: Arc::new(stop_tx),
        },
        events_rx,
        task,
    )
}

struct Inflight {
    reply: oneshot::Sender<SendOutcome>,
    taken: Option<oneshot::Sender<()>>,
    accepted: bool,
    deadline: Instant,
}

enum End {
    Stopped,
    Lost(String),
}

struct Link {
    opts: LinkOptions,
    session: RadioSession,
    decoder: Decoder<FromRadio>,
    events: mpsc::Sender<LinkEvent>,
    requests: mpsc::Receiver<Request>,
    stop: watch::Receiver<bool>,
    inflight: HashMap<u32, Inflight>,
}

pub use crate::clock::{backoff_delay, Backoff};

async fn write_msg<W: AsyncWrite + Unpin>(wr: &mut W, msg: &ToRadio) -> Result<(), String> {
    let bytes = framing::encode_message(msg).map_err(|e| e.to_string())?;
    write_bytes(wr, &bytes).await
}

async fn write_bytes<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> Result<(), String> {
    let write = async {
        wr.write_all(bytes).await?;
        wr.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err(format!("write blocked for {}s", WRITE_TIMEOUT.as_secs())),
    }
}

impl Link {
    async fn run(mut self) {
        let endpoint = self.opts.endpoint.clone();
        let mut backoff = Backoff::new(self.opts.backoff_min, self.opts.backoff_max);
        loop {
            if *self.stop.borrow() {
                return;
            }
            if backoff.failures() == 0 {
                info!("Connecting to the radio ({endpoint})");
            } else {
                info!(
                    "Reconnecting to the radio ({endpoint}), attempt {}",
                    backoff.failures() + 1
                );
            }
            let connected = tokio::select! {
                r = transport::connect(&endpoint) => r,
                _ = self.stop.changed() => return,
            };
            let mut was_ready = false;
            let end = match connected {
                Ok(stream) => self.run_connection(stream, &mut was_ready).await,
                Err(e) => End::Lost(format!("cannot connect: {e}")),
            };
            self.fail_inflight();
            let reason = match end {
                End::Stopped => {
                    info!("Radio link closed");
                    return;
                }
                End::Lost(reason) => reason,
            };
            if was_ready {
                backoff.reset();
            }
            let retrying = self.opts.reconnect;
            let delay = backoff.failed();
            if retrying {
                warn!(
                    "Radio link ({endpoint}) lost: {reason}; retrying in {:.1}s",
                    delay.as_secs_f64()
                );
            } else {
                warn!("Radio link ({endpoint}) lost: {reason}");
            }
            let _ = self
                .events
                .send(LinkEvent::Disconnected { reason, retrying })
                .await;
            if !retrying {
                return;
            }
            tokio::select! {
                _ = sleep(delay) => {}
                _ = self.stop.changed() => return,
            }
        }
    }

    fn fail_inflight(&mut self) {
        for (_, f) in self.inflight.drain() {
            let _ = f.reply.send(SendOutcome::LinkLost {
                accepted: f.accepted,
            });
        }
    }

    async fn run_connection(
        &mut self,
        stream: Box<dyn transport::Stream>,
        was_ready: &mut bool,
    ) -> End {
        let (mut rd, mut wr) = tokio::io::split(stream);
        self.decoder.reset();
        if let Err(e) = write_bytes(&mut wr, &WAKE_UP).await {
            return End::Lost(e);
        }
        sleep(Duration::from_millis(100)).await;
        let want = self.session.start(fastrand::u32(1..));
        if let Err(e) = write_msg(&mut wr, &want).await {
            return End::Lost(e);
        }
        debug!(
            "asked the radio for its configuration (nonce {})",
            self.session.pending_nonce().unwrap_or(0)
        );

        let start = Instant::now();
        let mut config_deadline = Some(start + self.opts.config_timeout);
        let mut last_rx = start;
        let mut next_heartbeat = start + self.opts.heartbeat_interval;
        let mut next_send = start;
        let mut last_poll = start;
        let mut queue_free: Option<u32> = None;
        let mut buf = [0u8; 1024];
        let mut inbox: Vec<FromRadio> = Vec::with_capacity(16);

        loop {
            let can_send = self.session.is_ready()
                && queue_free != Some(0)
                && self.inflight.len() < MAX_INFLIGHT;
            let send_now = can_send && Instant::now() >= next_send;
            let ack_deadline = self.inflight.values().map(|f| f.deadline).min();
            tokio::select! {
                biased;
                _ = self.stop.changed() => {
                    let _ = write_msg(&mut wr, &radio::disconnect()).await;
                    return End::Stopped;
                }
                r = rd.read(&mut buf) => match r {
                    Ok(0) => return End::Lost("the radio closed the connection".into()),
                    Err(e) => return End::Lost(format!("read failed: {e}")),
                    Ok(n) => {
                        last_rx = Instant::now();
                        self.decoder.feed(&buf[..n], &mut |e| on_frame_event(e, &mut inbox));
                    }
                },
                _ = sleep_until(last_rx + PARTIAL_FLUSH_AFTER), if self.decoder.has_pending() => {
                    self.decoder.on_quiet(&mut |e| on_frame_event(e, &mut inbox));
                }
                _ = sleep_until(last_rx + self.opts.silence_timeout) => {
                    return End::Lost(format!(
                        "no data from the radio for {}s",
                        self.opts.silence_timeout.as_secs()
                    ));
                }
                _ = sleep_until(config_deadline.unwrap_or(start)), if config_deadline.is_some() => {
                    return End::Lost(format!(
                        "the radio did not finish sending its configuration within {}s \
                         (is its serial API enabled, and is no other app connected?)",
                        self.opts.config_timeout.as_secs()
                    ));
                }
                _ = sleep_until(next_heartbeat) => {
                    next_heartbeat = Instant::now() + self.opts.heartbeat_interval;
                    debug!("sending heartbeat");
                    if let Err(e) = write_msg(&mut wr, &radio::heartbeat()).await {
                        return End::Lost(e);
                    }
                }
                _ = sleep_until(last_poll + QUEUE_POLL), if queue_free == Some(0) => {
                    last_poll = Instant::now();
                    debug!("radio queue full; asking for its status");
                    if let Err(e) = write_msg(&mut wr, &radio::heartbeat()).await {
                        return End::Lost(e);
                    }
                }
                _ = sleep_until(ack_deadline.unwrap_or(start)), if ack_deadline.is_some() => {
                    self.expire_inflight();
                }
                _ = sleep_until(next_send), if can_send && !send_now => {}
                req = self.requests.recv(), if send_now => {
                    let Some(req) = req else {
                        // Every handle is gone: nobody can use the link any more.
                        let _ = write_msg(&mut wr, &radio::disconnect()).await;
                        return End::Stopped;
                    };
                    if let Err(e) = self.send(&mut wr, req).await {
                        return End::Lost(e);
                    }
                    next_send = Instant::now() + self.opts.send_spacing;
                    if let Some(free) = queue_free.as_mut() {
                        *free = free.saturating_sub(1);
                        if *free == 0 {
                            last_poll = Instant::now();
                        }
                    }
                }
            }
            for msg in inbox.drain(..) {
                let Some(out) = self.session.on_message(msg, unix_now()) else {
                    continue;
                };
                match out {
                    Output::ConfigComplete => {
                        config_deadline = None;
                        *was_ready = true;
                        let info = self.session.info();
                        info!(
                            "Radio ready: node {} ({}), firmware {}, {} channels, {} nodes known",
                            node_id(info.my_node_num),
                            info.my_node().map(|n| n.long_name.as_str()).unwrap_or("?"),
                            info.firmware_version(),
                            info.active_channels().count(),
                            info.nodes.len()
                        );
                        let ev = LinkEvent::Ready(Box::new(info.clone()));
                        if self.events.send(ev).await.is_err() {
                            debug!("link events are no longer read");
                        }
                    }
                    Output::Rebooted => {
                        warn!("The radio rebooted; asking for its configuration again");
                        queue_free = None;
                        let want = self.session.start(fastrand::u32(1..));
                        config_deadline = Some(Instant::now() + self.opts.config_timeout);
                        if let Err(e) = write_msg(&mut wr, &want).await {
                            return End::Lost(e);
                        }
                    }
                    Output::Packet(p) => {
                        let _ = self.events.send(LinkEvent::Packet(p)).await;
                    }
                    Output::NodeUpdated(n) => {
                        let _ = self.events.send(LinkEvent::NodeUpdated(n)).await;
                    }
                    Output::Routing {
                        request_id,
                        error,
                        from,
                    } => {
                        self.on_routing(request_id, error, from);
                    }
                    Output::QueueStatus(q) => {
                        queue_free = Some(q.free);
                        if q.mesh_packet_id != 0 {
                            self.on_queue_status(q.mesh_packet_id, q.res);
                        }
                    }
                    Output::Log(l) => debug!(
                        "radio log [{}] {}",
                        text(&l.source),
                        text(&l.message).trim_end()
                    ),
                    Output::Notification(n) => {
                        info!("Radio notice: {}", text(&n.message).trim_end())
                    }
                }
            }
        }
    }

    async fn send<W: AsyncWrite + Unpin>(
        &mut self,
        wr: &mut W,
        req: Request,
    ) -> Result<(), String> {
        let hop_limit = self.session.info().hop_limit();
        let packet = match req.msg.to_packet(req.id, hop_limit) {
            Ok(p) => p,
            Err(e) => {
                // Validated when queued; cannot happen, but never panic on it.
                warn!("dropping an invalid send: {e}");
                let _ = req.reply.send(SendOutcome::Rejected { code: -1 });
                return Ok(());
            }
        };
        debug!(
            "sending packet {:#010x} to {} on channel {} ({} bytes)",
            req.id,
            if req.msg.to == proto::BROADCAST {
                "everyone".to_string()
            } else {
                node_id(req.msg.to)
            },
            req.msg.channel,
            req.msg.text.len()
        );
        self.inflight.insert(
            req.id,
            Inflight {
                reply: req.reply,
                taken: Some(req.taken),
                accepted: false,
                deadline: Instant::now() + self.opts.ack_timeout,
            },
        );
        let msg = ToRadio {
            payload: Some(to_radio::Payload::Packet(packet)),
        };
        write_msg(wr, &msg).await
    }

    fn on_routing(&mut self, request_id: u32, error: i32, from: u32) {
        let Some(f) = self.inflight.remove(&request_id) else {
            debug!(
                "routing answer for packet {request_id:#010x} that is not ours or already settled"
            );
            return;
        };
        let outcome = if error == 0 {
            debug!(
                "packet {request_id:#010x} acknowledged by {}",
                node_id(from)
            );
            SendOutcome::Acked
        } else {
            warn!(
                "packet {request_id:#010x} failed: {}",
                proto::routing_error_name(error)
            );
            SendOutcome::Failed { error }
        };
        let _ = f.reply.send(outcome);
    }

    fn on_queue_status(&mut self, id: u32, res: i32) {
        if res == 0 {
            if let Some(f) = self.inflight.get_mut(&id) {
                f.accepted = true;
                if let Some(t) = f.taken.take() {
                    let _ = t.send(());
                }
            }
        } else if let Some(f) = self.inflight.remove(&id) {
            warn!("the radio refused packet {id:#010x} (code {res})");
            let _ = f.reply.send(SendOutcome::Rejected { code: res });
        }
    }

    fn expire_inflight(&mut self) {
        let now = Instant::now();
        let expired: Vec<u32> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(f) = self.inflight.remove(&id) {
                debug!("no answer for packet {id:#010x}");
                let _ = f.reply.send(if f.accepted {
                    SendOutcome::NoAck
                } else {
                    SendOutcome::LinkLost { accepted: false }
                });
            }
        }
    }
}

/// Logs decoder faults and console text; collects decoded messages.
fn on_frame_event(e: FrameEvent<'_, FromRadio>, inbox: &mut Vec<FromRadio>) {
    match e {
        FrameEvent::Message(m) => inbox.push(m),
        FrameEvent::Console(line) => debug!("radio console: {line}"),
        FrameEvent::Malformed { len, error } => {
            warn!("dropped a frame from the radio that does not decode ({len} bytes): {error}")
        }
        FrameEvent::Oversize { len } => {
            debug!("skipped a frame header claiming {len} bytes (over 512)")
        }
        FrameEvent::Stalled { have, want } => {
            warn!("gave up a partial frame from the radio ({have} of {want} bytes)")
        }
    }
}

#[cfg(test)]
mod tests;
