//! Opening the byte stream to a radio: a serial port (115200 baud, DTR on, RTS off) or a TCP
//! connection (port 4403 by default). Nothing here knows about frames.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub const DEFAULT_TCP_PORT: u16 = 4403;
pub const SERIAL_BAUD: u32 = 115_200;
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the radio is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Serial(PathBuf),
    Tcp { host: String, port: u16 },
}

impl Endpoint {
    /// Parses `HOST`, `HOST:PORT` or `[IPv6]:PORT` for a TCP radio.
    pub fn parse_tcp(s: &str) -> Result<Endpoint, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the radio's host name is empty".into());
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("'{s}' opens '[' without closing it"))?;
            (h, after.strip_prefix(':'))
        } else if s.matches(':').count() == 1 {
            let (h, p) = s.split_once(':').expect("one colon");
            (h, Some(p))
        } else {
            (s, None)
        };
        let port = match port {
            None => DEFAULT_TCP_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("'{p}' is not a TCP port (1-65535)"))?,
        };
        Ok(Endpoint::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Serial(p) => write!(f, "serial port {}", p.display()),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "tcp [{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp {host}:{port}"),
        }
    }
}

/// A connected byte stream to the radio.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Opens the stream. Errors are worded for the operator's log.
pub async fn connect(endpoint: &Endpoint) -> Result<Box<dyn Stream>, String> {
    match endpoint {
        Endpoint::Tcp { host, port } => {
            let stream = tokio::time::timeout(
                TCP_CONNECT_TIMEOUT,
                TcpStream::connect((host.as_str(), *port)),
            )
            .await
            .map_err(|_| format!("no answer within {}s", TCP_CONNECT_TIMEOUT.as_secs()))?
            .map_err(|e| e.to_string())?;
            let _ = stream.set_nodelay(true);
            Ok(Box::new(stream))
        }
        Endpoint::Serial(path) => open_serial(path),
    }
}

fn open_serial(path: &std::path::Path) -> Result<Box<dyn Stream>, String> {
    use tokio_serial::{SerialPort, SerialPortBuilderExt};
    let name = path.to_string_lossy();
    let mut port = tokio_serial::new(name.as_ref(), SERIAL_BAUD)
        .dtr_on_open(true)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
        .map_err(|e| match e.kind {
            tokio_serial::ErrorKind::NoDevice => format!("{e} (is the radio plugged in?)"),
            tokio_serial::ErrorKind::Io(std::io::ErrorKind::PermissionDenied) => {
                format!("{e} (add the user to the 'dialout' group)")
            }
            _ => e.to_string(),
        })?;
    // Toggling RTS resets some ESP32 boards; keep it low. A pty has no modem lines.
    if let Err(e) = port.write_request_to_send(false) {
        log::debug!("could not clear RTS on {name}: {e}");
    }
    Ok(Box::new(port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_endpoints_parse() {
        let t = |h: &str, p| Endpoint::Tcp {
            host: h.into(),
            port: p,
        };
        assert_eq!(Endpoint::parse_tcp("radio.lan"), Ok(t("radio.lan", 4403)));
        assert_eq!(
            Endpoint::parse_tcp("10.0.0.5:4000"),
            Ok(t("10.0.0.5", 4000))
        );
        assert_eq!(Endpoint::parse_tcp("[::1]:4404"), Ok(t("::1", 4404)));
        assert_eq!(Endpoint::parse_tcp("::1"), Ok(t("::1", 4403)));
        assert!(Endpoint::parse_tcp("host:0").is_err());
        assert!(Endpoint::parse_tcp("host:abc").is_err());
        assert!(Endpoint::parse_tcp("").is_err());
        assert_eq!(t("::1", 1).to_string(), "tcp [::1]:1");
    }
}
