//! How the simulated radio is reached: a TCP listener, a pty (with a stable symlink, so the
//! "device" can be unplugged and plugged back), and the per-connection loop that answers
//! requests and forwards injected frames.

use super::*;

/// A pty the simulator serves; dropping it (or [`SimPty::close`]) makes the device disappear.
pub struct SimPty {
    pub path: PathBuf,
    link: Option<PathBuf>,
    task: JoinHandle<()>,
}

impl SimPty {
    /// The path a client should open: the stable link when one was asked for.
    pub fn device(&self) -> &Path {
        self.link.as_deref().unwrap_or(&self.path)
    }

    /// Unplugs the device: closes both ends of the pty and removes the link.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for SimPty {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(link) = &self.link {
            let _ = std::fs::remove_file(link);
        }
    }
}

impl Simulator {
    /// Listens for API clients on `addr` (port 0 picks a free port).
    pub async fn listen_tcp(&self, addr: &str) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let sim = self.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        log::debug!("sim: client connected from {peer}");
                        let _ = stream.set_nodelay(true);
                        let sim = sim.clone();
                        tokio::spawn(async move { sim.serve(stream, true).await });
                    }
                    Err(e) => {
                        log::warn!("sim: accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok((local, task))
    }

    /// Opens a pty and serves it; `link` (if given) is made a symlink to the pty's device, the
    /// way udev names a radio, so the device can vanish and come back at the same path.
    pub fn open_pty(&self, link: Option<&Path>) -> std::io::Result<SimPty> {
        let (master, slave) =
            tokio_serial::SerialStream::pair().map_err(|e| std::io::Error::other(e.to_string()))?;
        let path = {
            use tokio_serial::SerialPort;
            slave
                .name()
                .map(PathBuf::from)
                .ok_or_else(|| std::io::Error::other("pty has no name"))?
        };
        if let Some(link) = link {
            let _ = std::fs::remove_file(link);
            std::os::unix::fs::symlink(&path, link)?;
        }
        let sim = self.clone();
        let task = tokio::spawn(async move {
            // Holding the slave open keeps the master readable while no client is attached.
            let _slave = slave;
            sim.serve(master, false).await;
        });
        Ok(SimPty {
            path,
            link: link.map(Path::to_path_buf),
            task,
        })
    }

    fn emit(&self, ev: SimEvent) {
        let _ = self.shared.events.send(ev);
    }

    /// Serves one client connection until it closes or the simulator drops it. A TCP
    /// connection ends when the client says `disconnect`; a serial port stays open.
    pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        close_on_disconnect: bool,
    ) {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut outbound = self.shared.outbound.subscribe();
        let mut drops = self.shared.drop_clients.subscribe();
        let mut decoder: Decoder<ToRadio> = Decoder::new();
        let mut buf = [0u8; 1024];
        let mut inbox = Vec::new();
        self.emit(SimEvent::ClientConnected);
        'conn: loop {
            tokio::select! {
                _ = drops.recv() => break,
                frame = outbound.recv() => match frame {
                    Ok(bytes) => {
                        if wr.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        log::warn!("sim: a slow client missed {n} injected frames");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                r = rd.read(&mut buf) => {
                    let n = match r {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    decoder.feed(&buf[..n], &mut |e| match e {
                        FrameEvent::Message(m) => inbox.push(m),
                        FrameEvent::Malformed { len, .. } => {
                            let _ = self.shared.events.send(SimEvent::Malformed(len));
                        }
                        _ => {}
                    });
                    for msg in inbox.drain(..) {
                        let Some(replies) = self.on_to_radio(msg) else {
                            if close_on_disconnect {
                                break 'conn;
                            }
                            continue;
                        };
                        for r in replies {
                            let frame = framing::encode_message(&r).expect("fits");
                            if wr.write_all(&frame).await.is_err() {
                                break 'conn;
                            }
                        }
                    }
                }
            }
        }
        let _ = wr.shutdown().await;
        self.emit(SimEvent::ClientGone);
    }

    /// Handles one request; `None` closes the connection.
    fn on_to_radio(&self, msg: ToRadio) -> Option<Vec<FromRadio>> {
        use from_radio::Payload as P;
        match msg.payload {
            Some(to_radio::Payload::WantConfigId(nonce)) => {
                self.emit(SimEvent::ConfigRequested(nonce));
                Some(self.config_stream(nonce))
            }
            Some(to_radio::Payload::Heartbeat(hb)) => {
                self.emit(SimEvent::Heartbeat(hb.nonce));
                if self.shared.answer_heartbeats.load(Ordering::SeqCst) {
                    Some(vec![self.frame_msg(P::QueueStatus(self.queue_status(0)))])
                } else {
                    Some(vec![])
                }
            }
            Some(to_radio::Payload::Packet(p)) => {
                let repeat = {
                    let mut recent = self.shared.recent_ids.lock().unwrap();
                    let seen = p.id != 0 && recent.contains(&p.id);
                    if !seen {
                        if recent.len() == 20 {
                            recent.pop_front();
                        }
                        recent.push_back(p.id);
                    }
                    seen
                };
                if repeat {
                    self.emit(SimEvent::Duplicate(p.id));
                } else {
                    let mut rec = self.shared.received.lock().unwrap();
                    if rec.len() == RECORD_LIMIT {
                        rec.pop_front();
                    }
                    rec.push_back(p.clone());
                    drop(rec);
                    self.emit(SimEvent::Packet(p.clone()));
                }
                let mut out = vec![self.frame_msg(P::QueueStatus(self.queue_status(p.id)))];
                let me = self.shared.config.lock().unwrap().me.num;
                let mode = *self.shared.ack_mode.lock().unwrap();
                let code = match mode {
                    AckMode::Ack => Some(0),
                    AckMode::Error(c) => Some(c),
                    AckMode::Silent => None,
                };
                if let Some(code) = code {
                    let routing = Routing {
                        variant: Some(proto::routing::Variant::ErrorReason(code)),
                    };
                    let ack = MeshPacket {
                        from: me,
                        to: me,
                        id: fastrand::u32(1..),
                        priority: proto::priority::ACK,
                        rx_time: unix_now(),
                        payload: Some(mesh_packet::Payload::Decoded(Data {
                            portnum: PortNum::RoutingApp as i32,
                            payload: routing.encode_to_vec(),
                            request_id: p.id,
                            ..Default::default()
                        })),
                        ..Default::default()
                    };
                    out.push(self.frame_msg(P::Packet(ack)));
                }
                Some(out)
            }
            Some(to_radio::Payload::Disconnect(_)) => {
                self.emit(SimEvent::Disconnect);
                None
            }
            None => Some(vec![]),
        }
    }
}
