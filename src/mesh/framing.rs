//! The radio's stream framing as a sans-IO state machine: `0x94 0xC3`, a big-endian `u16`
//! length, then at most 512 bytes of protobuf. Bytes outside frames are the radio's console text.
//!
//! The decoder owns one fixed buffer the size of the largest frame and a fixed console line
//! buffer; feeding it never allocates, and the only allocation per frame is the decoded message.
//!
//! Recovery rules:
//! - a bad second start byte, or a length over 512, rejects the first start byte only and the
//!   search goes on at the next byte;
//! - a frame whose payload does not decode is dropped, and the search restarts just after its
//!   start bytes, so a good frame hidden inside a truncated one (a wrong length swallowed it)
//!   is still found; the rest of the rejected frame is counted as garbage, not console text;
//! - a partial frame that stays incomplete while the line is quiet is given up the same way
//!   when the caller reports the quiet time ([`Decoder::on_quiet`]).

use std::borrow::Cow;

pub const START1: u8 = 0x94;
pub const START2: u8 = 0xC3;
pub const HEADER_LEN: usize = 4;
pub const MAX_PAYLOAD: usize = 512;
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD;
/// Console lines longer than this are cut into pieces.
pub const MAX_CONSOLE_LINE: usize = 200;
/// What the host writes before its first request: wakes a sleeping radio and resets a
/// half-parsed frame on the radio's side.
pub const WAKE_UP: [u8; 32] = [START2; 32];

/// Frames `payload` into `out` (cleared first).
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameTooLarge> {
    if payload.len() > MAX_PAYLOAD {
        return Err(FrameTooLarge(payload.len()));
    }
    out.clear();
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&[START1, START2]);
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Encodes a protobuf message and frames it.
pub fn encode_message<M: prost::Message>(msg: &M) -> Result<Vec<u8>, FrameTooLarge> {
    let len = msg.encoded_len();
    if len > MAX_PAYLOAD {
        return Err(FrameTooLarge(len));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    out.extend_from_slice(&[START1, START2]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    msg.encode(&mut out).expect("vector grows");
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLarge(pub usize);

impl std::fmt::Display for FrameTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "message of {} bytes is over the radio's {MAX_PAYLOAD}-byte frame limit",
            self.0
        )
    }
}
impl std::error::Error for FrameTooLarge {}

/// What the decoder reports while it reads the stream.
#[derive(Debug)]
pub enum Event<'a, M> {
    /// A frame that decoded.
    Message(M),
    /// One line of the radio's console text (without the line end).
    Console(Cow<'a, str>),
    /// A complete frame whose payload did not decode; it was dropped.
    Malformed {
        len: usize,
        error: prost::DecodeError,
    },
    /// A header whose length is over the limit; its start byte was dropped.
    Oversize { len: usize },
    /// A partial frame given up after a quiet time.
    Stalled { have: usize, want: usize },
}

/// Counters an operator can read in the logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub frames: u64,
    pub malformed: u64,
    pub oversize: u64,
    pub stalled: u64,
    pub console_lines: u64,
    /// Bytes that were neither a frame nor console text (rejected frames' bodies, lone start
    /// bytes).
    pub garbage_bytes: u64,
}

/// The stream decoder. `M` is the message type of the direction being read (`FromRadio` on the
/// host, `ToRadio` in the simulator).
pub struct Decoder<M> {
    buf: [u8; MAX_FRAME],
    len: usize,
    /// Bytes at the front of the stream that belong to a rejected frame: skipped as garbage
    /// unless a new frame starts inside them.
    garbage_left: usize,
    line: heapless::Vec<u8, MAX_CONSOLE_LINE>,
    stats: Stats,
    _msg: std::marker::PhantomData<fn() -> M>,
}

impl<M: prost::Message + Default> Default for Decoder<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: prost::Message + Default> Decoder<M> {
    pub fn new() -> Self {
        Decoder {
            buf: [0; MAX_FRAME],
            len: 0,
            garbage_left: 0,
            line: heapless::Vec::new(),
            stats: Stats::default(),
            _msg: std::marker::PhantomData,
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// True while part of a frame is held waiting for more bytes.
    pub fn has_partial(&self) -> bool {
        self.len > 0
    }

    /// True while a partial frame or an unfinished console line waits for more bytes.
    pub fn has_pending(&self) -> bool {
        self.len > 0 || !self.line.is_empty()
    }

    /// Forgets any partial frame and console text (for a new connection).
    pub fn reset(&mut self) {
        self.len = 0;
        self.garbage_left = 0;
        self.line.clear();
    }

    /// Feeds bytes read from the stream; `on_event` sees every frame, console line and fault.
    pub fn feed(&mut self, mut data: &[u8], on_event: &mut dyn FnMut(Event<'_, M>)) {
        while !data.is_empty() {
            let take = (MAX_FRAME - self.len).min(data.len());
            self.buf[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            self.process(on_event);
        }
    }

    /// The line has been quiet for a while: give up a stalled partial frame and flush an
    /// unfinished console line.
    pub fn on_quiet(&mut self, on_event: &mut dyn FnMut(Event<'_, M>)) {
        // No more bytes are coming: nothing held can complete. Give up each partial frame in
        // turn (a rescan may find another inside it) until the buffer is empty.
        while self.len > 0 {
            if self.len >= 2 && self.buf[0] == START1 && self.buf[1] == START2 {
                let want = if self.len >= HEADER_LEN {
                    HEADER_LEN + u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize
                } else {
                    HEADER_LEN
                };
                self.stats.stalled += 1;
                on_event(Event::Stalled {
                    have: self.len,
                    want,
                });
                self.reject_frame_start(self.len.min(want));
            } else {
                // A lone start byte at the end of the stream.
                self.consume_outside(1, on_event);
            }
            self.process(on_event);
        }
        self.flush_line(on_event);
    }

    /// Consumes everything it can from the buffer; leaves at most one partial frame.
    fn process(&mut self, on_event: &mut dyn FnMut(Event<'_, M>)) {
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..self.len];
            // Everything before the next start byte lies outside any frame.
            let skip = rest.iter().position(|&b| b == START1).unwrap_or(rest.len());
            if skip > 0 {
                self.consume_outside_at(pos, skip, on_event);
                pos += skip;
            }
            let rest = &self.buf[pos..self.len];
            if rest.len() < 2 {
                break; // empty, or a start byte waiting for its partner
            }
            if rest[1] != START2 {
                self.consume_outside_at(pos, 1, on_event);
                pos += 1;
                continue;
            }
            if rest.len() < HEADER_LEN {
                break;
            }
            let payload_len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
            if payload_len > MAX_PAYLOAD {
                self.stats.oversize += 1;
                on_event(Event::Oversize { len: payload_len });
                self.count_garbage(1);
                pos += 1;
                continue;
            }
            if rest.len() < HEADER_LEN + payload_len {
                break;
            }
            let frame_len = HEADER_LEN + payload_len;
            match M::decode(&rest[HEADER_LEN..frame_len]) {
                Ok(msg) => {
                    self.stats.frames += 1;
                    // A good frame ends any garbage stretch it started inside.
                    self.garbage_left = self.garbage_left.saturating_sub(frame_len);
                    pos += frame_len;
                    on_event(Event::Message(msg));
                }
                Err(error) => {
                    self.stats.malformed += 1;
                    on_event(Event::Malformed {
                        len: payload_len,
                        error,
                    });
                    // Search again just after the start bytes; the rest of this frame is
                    // garbage unless a frame starts inside it.
                    self.count_garbage(2);
                    pos += 2;
                    self.garbage_left = self.garbage_left.max(frame_len - 2);
                }
            }
        }
        // Keep the unconsumed tail at the front.
        self.buf.copy_within(pos..self.len, 0);
        self.len -= pos;
    }

    fn reject_frame_start(&mut self, frame_len: usize) {
        self.count_garbage(2);
        self.buf.copy_within(2..self.len, 0);
        self.len -= 2;
        self.garbage_left = self.garbage_left.max(frame_len.saturating_sub(2));
    }

    fn consume_outside(&mut self, n: usize, on_event: &mut dyn FnMut(Event<'_, M>)) {
        self.consume_outside_at(0, n, on_event);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Bytes `buf[at..at+n]` are outside any frame: garbage while inside a rejected frame,
    /// console text otherwise.
    fn consume_outside_at(&mut self, at: usize, n: usize, on_event: &mut dyn FnMut(Event<'_, M>)) {
        let garbage = n.min(self.garbage_left);
        self.count_garbage(garbage);
        self.garbage_left -= garbage;
        for i in at + garbage..at + n {
            let b = self.buf[i];
            match b {
                b'\n' => self.flush_line(on_event),
                b'\r' => {}
                _ => {
                    if self.line.push(b).is_err() {
                        self.flush_line(on_event);
                        let _ = self.line.push(b);
                    }
                }
            }
        }
    }

    fn count_garbage(&mut self, n: usize) {
        self.stats.garbage_bytes += n as u64;
    }

    fn flush_line(&mut self, on_event: &mut dyn FnMut(Event<'_, M>)) {
        if self.line.is_empty() {
            return;
        }
        self.stats.console_lines += 1;
        on_event(Event::Console(String::from_utf8_lossy(&self.line)));
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::proto::{from_radio, FromRadio, QueueStatus};
    use prost::Message;

    #[derive(Debug, PartialEq)]
    #[allow(clippy::large_enum_variant)]
    enum Got {
        Msg(FromRadio),
        Line(String),
        Malformed(usize),
        Oversize(usize),
        Stalled(usize, usize),
    }

    fn collect(dec: &mut Decoder<FromRadio>, chunks: &[&[u8]], quiet: bool) -> Vec<Got> {
        let mut got = Vec::new();
        let mut f = |e: Event<'_, FromRadio>| {
            got.push(match e {
                Event::Message(m) => Got::Msg(m),
                Event::Console(l) => Got::Line(l.into_owned()),
                Event::Malformed { len, .. } => Got::Malformed(len),
                Event::Oversize { len } => Got::Oversize(len),
                Event::Stalled { have, want } => Got::Stalled(have, want),
            })
        };
        for c in chunks {
            dec.feed(c, &mut f);
        }
        if quiet {
            dec.on_quiet(&mut f);
        }
        got
    }

    fn msg(id: u32) -> FromRadio {
        FromRadio {
            id,
            payload: Some(from_radio::Payload::QueueStatus(QueueStatus {
                res: 0,
                free: 16,
                maxlen: 16,
                mesh_packet_id: id,
            })),
        }
    }

    fn frame(m: &FromRadio) -> Vec<u8> {
        encode_message(m).unwrap()
    }

    #[test]
    fn encode_frame_writes_header_and_rejects_oversize() {
        let mut out = Vec::new();
        encode_frame(&[1, 2, 3], &mut out).unwrap();
        assert_eq!(out, [0x94, 0xc3, 0x00, 0x03, 1, 2, 3]);
        assert_eq!(encode_frame(&[0; 513], &mut out), Err(FrameTooLarge(513)));
        encode_frame(&[7; 512], &mut out).unwrap();
        assert_eq!(&out[..4], &[0x94, 0xc3, 0x02, 0x00]);
    }

    #[test]
    fn split_at_every_byte() {
        let mut stream = b"boot ok\n".to_vec();
        stream.extend(frame(&msg(1)));
        stream.extend(frame(&msg(2)));
        for cut in 0..=stream.len() {
            let mut dec = Decoder::new();
            let got = collect(&mut dec, &[&stream[..cut], &stream[cut..]], false);
            assert_eq!(
                got,
                vec![
                    Got::Line("boot ok".into()),
                    Got::Msg(msg(1)),
                    Got::Msg(msg(2))
                ],
                "cut at {cut}"
            );
            assert!(!dec.has_partial());
        }
    }

    #[test]
    fn byte_by_byte_and_many_frames_in_one_read() {
        let mut stream = Vec::new();
        for i in 0..50 {
            stream.extend(frame(&msg(i)));
        }
        let mut dec = Decoder::new();
        let singles: Vec<&[u8]> = stream.chunks(1).collect();
        let got = collect(&mut dec, &singles, false);
        assert_eq!(got.len(), 50);
        let mut dec = Decoder::new();
        let got = collect(&mut dec, &[&stream], false);
        assert_eq!(got, (0..50).map(|i| Got::Msg(msg(i))).collect::<Vec<_>>());
        assert_eq!(dec.stats().frames, 50);
    }

    #[test]
    fn payload_containing_start_bytes() {
        // A log record whose text holds 0x94 0xC3 (not valid UTF-8 on its own, but our text
        // fields are bytes) and a max-size payload.
        let m = FromRadio {
            id: 0x94c3,
            payload: Some(from_radio::Payload::LogRecord(
                crate::mesh::proto::LogRecord {
                    message: vec![0x94, 0xc3, 0x94, 0xc3, 0x02, 0x00],
                    ..Default::default()
                },
            )),
        };
        let mut dec = Decoder::new();
        let got = collect(&mut dec, &[&frame(&m), &frame(&msg(9))], false);
        assert_eq!(got, vec![Got::Msg(m), Got::Msg(msg(9))]);
    }

    #[test]
    fn largest_payload_and_empty_payload() {
        let big = FromRadio {
            id: 1,
            payload: Some(from_radio::Payload::ModuleConfig(vec![0x41; 507])),
        };
        let bytes = frame(&big);
        assert_eq!(bytes.len(), MAX_FRAME);
        let mut dec = Decoder::new();
        let got = collect(&mut dec, &[&bytes, &[0x94, 0xc3, 0, 0]], false);
        assert_eq!(got, vec![Got::Msg(big), Got::Msg(FromRadio::default())]);
    }

    #[test]
    fn oversize_length_restarts_search_at_next_byte() {
        let mut stream = vec![0x94, 0xc3, 0x02, 0x01]; // 513
        stream.extend(frame(&msg(3)));
        let mut dec = Decoder::new();
        let got = collect(&mut dec, &[&stream], false);
        // The three bytes after the rejected start byte hold no start byte: console text.
        assert_eq!(got[0], Got::Oversize(513));
        assert_eq!(*got.last().unwrap(), Got::Msg(msg(3)));
        assert_eq!(dec.stats().oversize, 1);
    }

    #[test]
    fn bad_second_start_byte() {
        let mut stream = vec![0x94, 0x94, 0x41];
        stream.extend(frame(&msg(4)));
        let mut dec = Decoder::new();
        let got = collect(&mut dec, &[&stream], false);
        assert_eq!(*got.last().unwrap(), Got::Msg(msg(4)));
        assert_eq!(got.iter().filter(|g| matches!(g, Got::Msg(_))).count(), 1);
    }

    #[test]
    fn malformed_frame_is_dropped_alone() {
        // 0xff 0xff... is not a valid protobuf (field 0 / bad wire type).
        let mut stream = vec![0x94, 0xc3, 0x00, 0x03, 0xff, 0xff, 0xff];
        stream.extend(frame(&msg(5)));
        let mut dec = Decoder::new();
        let got = collect(&mut dec, &[&stream], false);
        assert_eq!(got, vec![Got::Malformed(3), Got::Msg(msg(5))]);
        assert_eq!(dec.stats().garbage_bytes, 7);
        assert_eq!(dec.stats().console_lines, 0);
    }

    #[test]
    fn truncated_frame_costs_only_itself() {
        // A frame cut short by a lost byte run: its length swallows the next frames.
        let good = frame(&msg(6));
        // The cut frame claims 40 bytes; its payload opens a field longer than that, so it
        // cannot decode, and its length swallows the start of the next frames.
        let mut stream = vec![0x94, 0xc3, 0x00, 40, 0x12, 0x7f, 0x08];
        for i in 10..14 {
            stream.extend(frame(&msg(i)));
        }
        let mut dec = Decoder::new();
        let got = collect(&mut dec, &[&stream, &good], true);
        let ids: Vec<u32> = got
            .iter()
            .filter_map(|g| match g {
                Got::Msg(m) => Some(m.id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, vec![10, 11, 12, 13, 6], "events: {got:?}");
        assert!(!got.iter().any(|g| matches!(g, Got::Line(_))), "{got:?}");
    }

    #[test]
    fn stalled_partial_frame_is_given_up_on_quiet() {
        let mut dec = Decoder::new();
        let partial = &frame(&msg(7))[..6];
        let got = collect(&mut dec, &[partial], true);
        assert_eq!(got, vec![Got::Stalled(6, 4 + msg(7).encoded_len())]);
        assert!(!dec.has_partial());
        let got = collect(&mut dec, &[&frame(&msg(8))], false);
        assert_eq!(got, vec![Got::Msg(msg(8))]);
    }

    #[test]
    fn console_text_lines_are_bounded_and_flushed_on_quiet() {
        let mut dec = Decoder::new();
        let long = vec![b'x'; MAX_CONSOLE_LINE + 10];
        let got = collect(
            &mut dec,
            &[b"INFO | ok\r\nDEBUG | par", b"tial", &long],
            true,
        );
        assert_eq!(got[0], Got::Line("INFO | ok".into()));
        assert_eq!(
            got[1],
            Got::Line(format!("DEBUG | partial{}", "x".repeat(185)))
        );
        assert_eq!(got[2], Got::Line("x".repeat(25)));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn lone_start_byte_at_end_waits_then_is_console_on_quiet() {
        let mut dec = Decoder::new();
        let got = collect(&mut dec, &[b"abc\x94"], false);
        assert!(got.is_empty());
        assert!(dec.has_partial());
        let got = collect(&mut dec, &[&[0xc3, 0, 2]], false);
        assert!(got.is_empty());
        let got = collect(&mut dec, &[&[0x08, 0x07]], false);
        assert_eq!(
            got,
            vec![Got::Msg(FromRadio {
                id: 7,
                payload: None
            })]
        );
        let got = collect(&mut dec, &[], true);
        assert_eq!(got, vec![Got::Line("abc".into())]);
    }
}
