#!/usr/bin/env python3
"""Writes golden frames with the PyPI `meshtastic` package's protobuf classes (an encoder
independent of ours) into tests/fixtures/: one FromRadio of each kind the relay reads and one
ToRadio of each kind it sends, each framed as the radio frames them (0x94 0xC3, u16 big-endian
length, payload). tests/golden.rs decodes each file and re-encodes it to the same bytes.

Usage: python tests/gen_fixtures.py [OUTPUT_DIR]   (needs `pip install meshtastic==2.7.11`)
"""
import os
import struct
import sys

from meshtastic.protobuf import (
    channel_pb2,
    config_pb2,
    mesh_pb2,
    module_config_pb2,
    portnums_pb2,
    telemetry_pb2,
)

ME = 0x0A0B0C0D
ALICE = 0x1111AAAA
BCAST = 0xFFFFFFFF


def frame(msg):
    payload = msg.SerializeToString()
    assert len(payload) <= 512, len(payload)
    return b"\x94\xc3" + struct.pack(">H", len(payload)) + payload


def user(num, long_name, short_name):
    return mesh_pb2.User(
        id="!%08x" % num,
        long_name=long_name,
        short_name=short_name,
        hw_model=mesh_pb2.HardwareModel.Value("RAK4631"),
        role=config_pb2.Config.DeviceConfig.Role.Value("CLIENT"),
        public_key=bytes(range(32)),
    )


def data_packet(portnum, payload, **kw):
    p = mesh_pb2.MeshPacket(
        to=kw.pop("to", BCAST),
        channel=kw.pop("channel", 0),
        id=kw.pop("id", 0x5EED0001),
        rx_time=kw.pop("rx_time", 1764460800),
        rx_snr=kw.pop("rx_snr", 6.25),
        hop_limit=kw.pop("hop_limit", 2),
        rx_rssi=kw.pop("rx_rssi", -71),
        hop_start=kw.pop("hop_start", 3),
        relay_node=kw.pop("relay_node", 0xAA),
    )
    setattr(p, "from", kw.pop("frm", ALICE))
    p.decoded.portnum = portnum
    p.decoded.payload = payload
    for k, v in kw.items():
        setattr(p.decoded, k, v)
    return p


def from_radio():
    out = {}
    P = portnums_pb2.PortNum

    m = mesh_pb2.FromRadio(id=1)
    m.my_info.my_node_num = ME
    m.my_info.reboot_count = 7
    m.my_info.min_app_version = 30200
    m.my_info.device_id = bytes(range(16))
    m.my_info.pio_env = "rak4631"
    m.my_info.nodedb_count = 42
    out["my_info"] = m

    m = mesh_pb2.FromRadio(id=2)
    m.node_info.num = ALICE
    m.node_info.user.CopyFrom(user(ALICE, "Alice Base \U0001F4E1", "ALC"))
    m.node_info.position.latitude_i = 525200000
    m.node_info.position.longitude_i = 134050000
    m.node_info.position.altitude = 34
    m.node_info.position.time = 1764460000
    m.node_info.snr = 5.5
    m.node_info.last_heard = 1764460700
    m.node_info.device_metrics.battery_level = 91
    m.node_info.device_metrics.voltage = 4.1
    m.node_info.hops_away = 1
    m.node_info.is_favorite = True
    out["node_info"] = m

    m = mesh_pb2.FromRadio(id=3)
    m.config.lora.use_preset = True
    m.config.lora.modem_preset = config_pb2.Config.LoRaConfig.ModemPreset.Value("LONG_FAST")
    m.config.lora.region = config_pb2.Config.LoRaConfig.RegionCode.Value("EU_868")
    m.config.lora.hop_limit = 5
    m.config.lora.tx_enabled = True
    m.config.lora.tx_power = 27
    m.config.lora.ignore_incoming.extend([0x1234, 0x5678])
    m.config.lora.config_ok_to_mqtt = True
    out["config_lora"] = m

    m = mesh_pb2.FromRadio(id=4)
    m.config.security.public_key = bytes(range(32))
    m.config.security.admin_key.append(bytes(range(32, 64)))
    m.config.security.serial_enabled = True
    m.config.security.debug_log_api_enabled = True
    out["config_security"] = m

    m = mesh_pb2.FromRadio(id=5)
    m.config.device.role = config_pb2.Config.DeviceConfig.Role.Value("ROUTER")
    out["config_device"] = m

    m = mesh_pb2.FromRadio(id=6)
    m.log_record.message = "Rx packet 0x1234 from !1111aaaa"
    m.log_record.time = 1764460801
    m.log_record.source = "Router"
    m.log_record.level = mesh_pb2.LogRecord.Level.Value("INFO")
    out["log_record"] = m

    out["config_complete_id"] = mesh_pb2.FromRadio(id=7, config_complete_id=123456789)
    out["rebooted"] = mesh_pb2.FromRadio(id=8, rebooted=True)

    m = mesh_pb2.FromRadio(id=9)
    m.moduleConfig.mqtt.enabled = True
    m.moduleConfig.mqtt.address = "mqtt.example.org"
    out["module_config"] = m

    m = mesh_pb2.FromRadio(id=10)
    m.channel.index = 1
    m.channel.role = channel_pb2.Channel.Role.Value("SECONDARY")
    m.channel.settings.psk = bytes(range(16))
    m.channel.settings.name = "Ops"
    m.channel.settings.id = 0xC0FFEE
    m.channel.settings.uplink_enabled = True
    m.channel.settings.module_settings.position_precision = 13
    out["channel"] = m

    m = mesh_pb2.FromRadio(id=11)
    m.queueStatus.res = 0
    m.queueStatus.free = 14
    m.queueStatus.maxlen = 16
    m.queueStatus.mesh_packet_id = 0x5EED0002
    out["queue_status"] = m

    m = mesh_pb2.FromRadio(id=12)
    m.metadata.firmware_version = "2.7.11.ee68575"
    m.metadata.device_state_version = 24
    m.metadata.canShutdown = True
    m.metadata.hasBluetooth = True
    m.metadata.role = config_pb2.Config.DeviceConfig.Role.Value("CLIENT")
    m.metadata.position_flags = 811
    m.metadata.hw_model = mesh_pb2.HardwareModel.Value("RAK4631")
    m.metadata.hasPKC = True
    out["metadata"] = m

    m = mesh_pb2.FromRadio(id=13)
    m.clientNotification.reply_id = 0x5EED0003
    m.clientNotification.time = 1764460802
    m.clientNotification.level = mesh_pb2.LogRecord.Level.Value("WARNING")
    m.clientNotification.message = "Duty cycle limit exceeded"
    out["client_notification"] = m

    # Packets: a text, a reply, a reaction, a position, telemetry, a nodeinfo, a routing ack,
    # and one the radio could not decrypt.
    def pkt(name, p):
        m = mesh_pb2.FromRadio(id=20 + len(out))
        m.packet.CopyFrom(p)
        out[name] = m

    pkt("packet_text", data_packet(P.Value("TEXT_MESSAGE_APP"), "Hello mesh \U0001F44B".encode(), channel=1))
    pkt("packet_reply", data_packet(P.Value("TEXT_MESSAGE_APP"), b"Right back", id=0x5EED0004, reply_id=0x5EED0001))
    pkt("packet_reaction", data_packet(P.Value("TEXT_MESSAGE_APP"), "\U0001F44D".encode(), id=0x5EED0005, reply_id=0x5EED0001, emoji=1))
    pos = mesh_pb2.Position(latitude_i=525200000, longitude_i=134050000, altitude=34, time=1764460000, precision_bits=32)
    pkt("packet_position", data_packet(P.Value("POSITION_APP"), pos.SerializeToString(), id=0x5EED0006))
    tel = telemetry_pb2.Telemetry(time=1764460000)
    tel.device_metrics.battery_level = 91
    tel.device_metrics.voltage = 4.1
    tel.device_metrics.channel_utilization = 3.5
    tel.device_metrics.air_util_tx = 0.75
    tel.device_metrics.uptime_seconds = 86400
    pkt("packet_telemetry", data_packet(P.Value("TELEMETRY_APP"), tel.SerializeToString(), id=0x5EED0007))
    pkt("packet_nodeinfo", data_packet(P.Value("NODEINFO_APP"), user(ALICE, "Alice Base", "ALC").SerializeToString(), id=0x5EED0008))
    ack = mesh_pb2.Routing(error_reason=mesh_pb2.Routing.Error.Value("NONE"))
    pkt("packet_routing_ack", data_packet(P.Value("ROUTING_APP"), ack.SerializeToString(), id=0x5EED0009, frm=ME, to=ME, request_id=0x5EED0002))
    nak = mesh_pb2.Routing(error_reason=mesh_pb2.Routing.Error.Value("MAX_RETRANSMIT"))
    pkt("packet_routing_error", data_packet(P.Value("ROUTING_APP"), nak.SerializeToString(), id=0x5EED000A, frm=ME, to=ME, request_id=0x5EED0003))
    enc = mesh_pb2.MeshPacket(to=BCAST, channel=8, id=0x5EED000B, encrypted=bytes(range(40)), hop_limit=3)
    setattr(enc, "from", ALICE)
    pkt("packet_encrypted", enc)
    return out


def to_radio():
    out = {}
    p = mesh_pb2.MeshPacket(to=BCAST, channel=1, id=0x5EED0002, hop_limit=3, want_ack=True,
                            priority=mesh_pb2.MeshPacket.Priority.Value("RELIABLE"))
    p.decoded.portnum = portnums_pb2.PortNum.Value("TEXT_MESSAGE_APP")
    p.decoded.payload = "[Alice/Home]: hi from Matrix \u00fc".encode()
    out["packet_text"] = mesh_pb2.ToRadio(packet=p)
    r = mesh_pb2.MeshPacket(to=ALICE, channel=0, id=0x5EED0003, hop_limit=5, want_ack=True,
                            priority=mesh_pb2.MeshPacket.Priority.Value("RELIABLE"))
    r.decoded.portnum = portnums_pb2.PortNum.Value("TEXT_MESSAGE_APP")
    r.decoded.payload = "\U0001F44D".encode()
    r.decoded.reply_id = 0x5EED0001
    r.decoded.emoji = 1
    out["packet_reaction_dm"] = mesh_pb2.ToRadio(packet=r)
    out["want_config_id"] = mesh_pb2.ToRadio(want_config_id=3735928559)
    out["disconnect"] = mesh_pb2.ToRadio(disconnect=True)
    hb = mesh_pb2.ToRadio()
    hb.heartbeat.SetInParent()
    out["heartbeat"] = hb
    hb1 = mesh_pb2.ToRadio()
    hb1.heartbeat.nonce = 7
    out["heartbeat_nonce"] = hb1
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "fixtures")
    os.makedirs(dest, exist_ok=True)
    n = 0
    for prefix, msgs in (("from", from_radio()), ("to", to_radio())):
        for name, msg in msgs.items():
            with open(os.path.join(dest, f"{prefix}_{name}.bin"), "wb") as f:
                f.write(frame(msg))
            n += 1
    # Newer firmware: a FromRadio whose oneof tag we do not know (deviceuiConfig, 17) and an
    # unknown top-level field; it must decode (to "no payload") without error.
    m = mesh_pb2.FromRadio(id=99)
    m.deviceuiConfig.version = 1
    m.deviceuiConfig.screen_brightness = 200
    with open(os.path.join(dest, "future_from_unknown_variant.bin"), "wb") as f:
        f.write(frame(m))
    n += 1
    print(f"wrote {n} fixtures to {dest}")


if __name__ == "__main__":
    main()
