//! Helpers shared by the integration tests: a simulated radio on loopback and a link with
//! short timers.
#![allow(dead_code)]

pub mod cli;
pub mod one_room;
pub mod relay;
pub mod synapse;

use std::time::Duration;

use mmrelay::mesh::link::{self, LinkEvent, LinkHandle, LinkOptions};
use mmrelay::mesh::radio::RadioInfo;
use mmrelay::mesh::transport::Endpoint;
use mmrelay::sim::{SimConfig, SimEvent, Simulator};
use tokio::sync::{broadcast, mpsc};

pub const WAIT: Duration = Duration::from_secs(10);

pub async fn tcp_sim(cfg: SimConfig) -> (Simulator, Endpoint) {
    let sim = Simulator::new(cfg);
    let (addr, _task) = sim.listen_tcp("127.0.0.1:0").await.expect("listen");
    let ep = Endpoint::Tcp {
        host: "127.0.0.1".into(),
        port: addr.port(),
    };
    (sim, ep)
}

/// Link options with timers short enough for tests.
pub fn fast(endpoint: Endpoint) -> LinkOptions {
    let mut o = LinkOptions::new(endpoint);
    o.heartbeat_interval = Duration::from_secs(30);
    o.silence_timeout = Duration::from_secs(60);
    o.config_timeout = Duration::from_secs(5);
    o.send_spacing = Duration::from_millis(10);
    o.ack_timeout = Duration::from_secs(5);
    o.backoff_min = Duration::from_millis(100);
    o.backoff_max = Duration::from_millis(400);
    o
}

pub struct Running {
    pub link: LinkHandle,
    pub events: mpsc::Receiver<LinkEvent>,
    pub task: tokio::task::JoinHandle<()>,
}

pub fn start(opts: LinkOptions) -> Running {
    let (link, events, task) = link::spawn(opts);
    Running { link, events, task }
}

impl Running {
    /// The next event that `pick` accepts; panics after [`WAIT`].
    pub async fn next<T>(&mut self, what: &str, mut pick: impl FnMut(LinkEvent) -> Option<T>) -> T {
        let fut = async {
            loop {
                match self.events.recv().await {
                    Some(ev) => {
                        if let Some(t) = pick(ev) {
                            return t;
                        }
                    }
                    None => panic!("link ended while waiting for {what}"),
                }
            }
        };
        tokio::time::timeout(WAIT, fut)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    pub async fn ready(&mut self) -> RadioInfo {
        self.next("ready", |e| match e {
            LinkEvent::Ready(i) => Some(*i),
            _ => None,
        })
        .await
    }

    pub async fn disconnected(&mut self) -> (String, bool) {
        self.next("disconnect", |e| match e {
            LinkEvent::Disconnected { reason, retrying } => Some((reason, retrying)),
            _ => None,
        })
        .await
    }
}

/// The next simulator event that `pick` accepts.
pub async fn sim_next<T>(
    rx: &mut broadcast::Receiver<SimEvent>,
    what: &str,
    mut pick: impl FnMut(SimEvent) -> Option<T>,
) -> T {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Some(t) = pick(ev) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("simulator events ended: {e}"),
            }
        }
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for simulator {what}"))
}

/// The texts the simulated radio got from the relay, after the first `skip` packets.
pub fn mesh_texts(sim: &Simulator, skip: usize) -> Vec<String> {
    sim.received()
        .iter()
        .skip(skip)
        .filter_map(|p| p.decoded())
        .map(|d| String::from_utf8_lossy(&d.payload).into_owned())
        .collect()
}

/// Waits up to `secs` until the simulated radio has got at least `n` packets.
pub async fn wait_mesh(sim: &Simulator, n: usize, secs: u64, what: &str) {
    let t0 = std::time::Instant::now();
    while sim.received().len() < n {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{what}: {} of {n} packets reached the radio: {:?}",
            sim.received().len(),
            mesh_texts(sim, 0)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
