//! The health check: the running relay answers on an abstract Unix socket named after its home
//! folder with one line saying whether it is relaying; `mmrelay health` reads that line. For
//! container health checks and monitoring scripts. An abstract socket leaves nothing on disk
//! (no writes to the flash, nothing to clean up after a crash) and is reachable from every
//! process in the relay's network namespace, which in a container is the container.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// How long a reader may take to take its line, and `query` to get it.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The longest line `query` reads.
const MAX_LINE: u64 = 1024;

/// The socket's name for a home folder: the same for every spelling of the path.
pub fn socket_name(home: &Path) -> String {
    let home = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf());
    let digest = Sha256::digest(home.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("mmrelay-health/{hex}")
}

fn address(home: &Path) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(socket_name(home).as_bytes())
}

/// The relay's end.
pub struct HealthListener(UnixListener);

impl HealthListener {
    /// Listens for `home`. Fails when another relay already answers for the same home.
    pub fn bind(home: &Path) -> io::Result<HealthListener> {
        let std = std::os::unix::net::UnixListener::bind_addr(&address(home)?)?;
        std.set_nonblocking(true)?;
        Ok(HealthListener(UnixListener::from_std(std)?))
    }

    /// The next reader.
    pub async fn accept(&self) -> io::Result<UnixStream> {
        self.0.accept().await.map(|(s, _)| s)
    }
}

/// Writes `line` to a reader without holding up the caller: a reader that does not take it
/// within the timeout is dropped.
pub fn answer(mut conn: UnixStream, line: String) {
    tokio::spawn(async move {
        let write = async {
            conn.write_all(line.as_bytes()).await?;
            conn.write_all(b"\n").await?;
            conn.shutdown().await
        };
        match tokio::time::timeout(TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::debug!("health check reader went away: {e}"),
            Err(_) => log::debug!("health check reader took no answer within {TIMEOUT:?}"),
        }
    });
}

/// Asks the relay running for `home` for its line.
pub async fn query(home: &Path) -> io::Result<String> {
    let ask = async {
        let std = std::os::unix::net::UnixStream::connect_addr(&address(home)?)?;
        std.set_nonblocking(true)?;
        let conn = UnixStream::from_std(std)?;
        let mut text = String::new();
        conn.take(MAX_LINE).read_to_string(&mut text).await?;
        Ok::<_, io::Error>(text.trim_end().to_string())
    };
    tokio::time::timeout(TIMEOUT, ask)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the relay did not answer"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_same_for_every_spelling_of_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let a = socket_name(dir.path());
        let b = socket_name(&dir.path().join("."));
        assert_eq!(a, b);
        assert_ne!(a, socket_name(Path::new("/nonexistent/elsewhere")));
        assert!(a.len() < 100, "{a}");
    }

    #[tokio::test]
    async fn a_reader_gets_the_line_and_a_second_relay_cannot_bind() {
        let dir = tempfile::tempdir().unwrap();
        let l = HealthListener::bind(dir.path()).unwrap();
        assert!(HealthListener::bind(dir.path()).is_err());
        let q = tokio::spawn({
            let home = dir.path().to_path_buf();
            async move { query(&home).await }
        });
        let conn = l.accept().await.unwrap();
        answer(conn, "healthy: test".into());
        assert_eq!(q.await.unwrap().unwrap(), "healthy: test");
        drop(l);
        let e = query(dir.path()).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    }
}
