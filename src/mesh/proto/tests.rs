use super::*;
use prost::Message;

#[test]
fn unknown_fields_and_oneof_tags_decode() {
    // FromRadio with id=5, then an unknown oneof tag 17 (deviceuiConfig) holding bytes,
    // then an unknown varint field 99.
    let bytes = [0x08, 0x05, 0x8a, 0x01, 0x02, 0x08, 0x01, 0x98, 0x06, 0x07];
    let msg = FromRadio::decode(&bytes[..]).unwrap();
    assert_eq!(msg.id, 5);
    assert_eq!(msg.payload, None);
}

#[test]
fn unknown_enum_values_survive() {
    let data = Data {
        portnum: 4242,
        payload: b"x".to_vec(),
        ..Default::default()
    };
    let back = Data::decode(data.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back.portnum, 4242);
    assert!(PortNum::try_from(back.portnum).is_err());
}

#[test]
fn invalid_utf8_in_names_is_not_an_error() {
    let user = User {
        long_name: vec![b'A', 0xff, 0xfe, b'B'],
        ..Default::default()
    };
    let back = User::decode(user.encode_to_vec().as_slice()).unwrap();
    assert_eq!(text(&back.long_name), "A\u{fffd}\u{fffd}B");
}

#[test]
fn packet_fields_use_fixed32_where_upstream_does() {
    let p = MeshPacket {
        from: 1,
        to: BROADCAST,
        id: 0x01020304,
        ..Default::default()
    };
    let b = p.encode_to_vec();
    // field 1 fixed32 (tag 0x0d), field 2 fixed32 (0x15), field 6 fixed32 (0x35)
    assert_eq!(
        b,
        [0x0d, 1, 0, 0, 0, 0x15, 0xff, 0xff, 0xff, 0xff, 0x35, 4, 3, 2, 1]
    );
}
