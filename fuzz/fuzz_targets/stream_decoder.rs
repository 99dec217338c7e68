//! Fuzzes the stream decoder (framing + FromRadio codec + session) with arbitrary bytes fed in
//! arbitrary read sizes. Run: `cargo fuzz run stream_decoder` (see README).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmrelay::mesh::framing::{Decoder, Event, MAX_FRAME};
use mmrelay::mesh::proto::FromRadio;
use mmrelay::mesh::radio::RadioSession;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    // The first byte picks the read size, so frames are cut at every kind of place.
    let chunk = usize::from(split).max(1);
    let mut dec: Decoder<FromRadio> = Decoder::new();
    let mut session = RadioSession::new(16);
    session.start(1);
    let mut msgs = Vec::new();
    for piece in rest.chunks(chunk) {
        dec.feed(piece, &mut |e| {
            if let Event::Message(m) = e {
                msgs.push(m)
            }
        });
        for m in msgs.drain(..) {
            let _ = session.on_message(m, 0);
        }
    }
    dec.on_quiet(&mut |e| {
        if let Event::Console(line) = e {
            assert!(line.len() <= 4 * MAX_FRAME);
        }
    });
    assert!(!dec.has_pending());
});
