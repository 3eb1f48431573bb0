"""Network safety: the loopback-only Fast DDS profile is what an rclpy process really runs on."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from chatpose_ros.ros import netsafe

NS = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
FRAME_BYTES = 640 * 480 * 3  # a VGA rgb8 camera frame
# Each Fast DDS domain's well-known ports: 7400 + 250 * domain + offsets below 250 (RTPS 9.6.1.1).
PORT_BASE, DOMAIN_GAIN = 7400, 250


def test_profile_is_loopback_only_with_room_for_frames():
    root = ET.fromstring(netsafe.FASTDDS_LOOPBACK_PROFILE)
    transports = root.findall(".//f:transport_descriptor", NS)
    kinds = {t.find("f:transport_id", NS).text: t.find("f:type", NS).text for t in transports}
    assert sorted(kinds.values()) == ["SHM", "UDPv4"]
    for t in transports:
        if t.find("f:type", NS).text == "UDPv4":
            assert [a.text for a in t.findall("f:interfaceWhiteList/f:address", NS)] == ["127.0.0.1"]
            # UDP fallback (no shared /dev/shm): a socket buffer holds several fragmented frames.
            assert int(t.find("f:receiveBufferSize", NS).text) >= 4 * FRAME_BYTES
        else:  # the segment holds several fragmented VGA frames (see the netsafe docstring)
            assert int(t.find("f:segment_size", NS).text) >= 4 * FRAME_BYTES
    participant = root.find(".//f:participant[@is_default_profile='true']", NS)
    assert participant.find(".//f:useBuiltinTransports", NS).text == "false"
    assert {e.text for e in participant.findall(".//f:userTransports/f:transport_id", NS)} == set(kinds)
    assert [a.text for a in participant.findall(".//f:initialPeersList//f:address", NS)] == ["127.0.0.1"]
    assert participant.find(".//f:metatrafficMulticastLocatorList", NS) is None


def test_both_profile_variables_set_and_a_given_profile_kept(tmp_path, monkeypatch):
    for var in (*netsafe.PROFILE_VARS, "ROS_DOMAIN_ID", "ROS_LOG_DIR"):
        monkeypatch.delenv(var, raising=False)
    env = netsafe.configure_loopback_only(tmp_path)
    ours = str(tmp_path / "fastdds_loopback_only.xml")
    # Fast DDS 2.x (Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE only, 3.x FASTDDS_DEFAULT_PROFILES_FILE only.
    assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == env["FASTDDS_DEFAULT_PROFILES_FILE"] == ours
    assert 1 <= int(env["ROS_DOMAIN_ID"]) <= 101 and env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    # A deployment's own profile, under either name, wins unless forced.
    monkeypatch.delenv("FASTRTPS_DEFAULT_PROFILES_FILE")
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/robot/profile.xml")
    env = netsafe.configure_loopback_only(tmp_path)
    assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == env["FASTDDS_DEFAULT_PROFILES_FILE"] == "/robot/profile.xml"
    env = netsafe.configure_loopback_only(tmp_path, force=True)
    assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == env["FASTDDS_DEFAULT_PROFILES_FILE"] == ours


# Runs in a fresh process: sets up netsafe, starts a participant with a publisher and a
# subscription, then reports its own UDP sockets and the shared-memory segments it mapped.
_PARTICIPANT = textwrap.dedent("""
    import json, os, sys
    from chatpose_ros.ros.netsafe import configure_loopback_only
    configure_loopback_only(sys.argv[1], domain_id=int(sys.argv[2]), force=True)
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node
    from std_msgs.msg import String
    ctx = Context()
    rclpy.init(context=ctx)
    node = Node("netsafe_probe", context=ctx)
    node.create_publisher(String, "netsafe_probe", 1)
    node.create_subscription(String, "netsafe_probe", lambda m: None, 1)
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    socks = []
    for line in open("/proc/self/net/udp").read().splitlines()[1:]:
        f = line.split()
        if f[9] in inodes:
            hexip, hexport = f[1].split(":")
            ip = ".".join(str(int(hexip[i:i + 2], 16)) for i in (6, 4, 2, 0))
            socks.append([ip, int(hexport, 16)])
    segments = {}
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if path.startswith("/dev/shm/fastrtps_") and "port" not in path:
            segments[path] = os.path.getsize(path)
    node.destroy_node()
    rclpy.shutdown(context=ctx)
    print(json.dumps({"sockets": socks, "segments": segments}))
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/net/udp"), reason="needs Linux /proc")
def test_participant_runs_on_the_profile(tmp_path):
    domain = random.randint(1, 101)
    env = {k: v for k, v in os.environ.items() if k not in netsafe.PROFILE_VARS}
    res = subprocess.run([sys.executable, "-c", _PARTICIPANT, str(tmp_path), str(domain)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    lo, hi = PORT_BASE + DOMAIN_GAIN * domain, PORT_BASE + DOMAIN_GAIN * (domain + 1)
    domain_ports = [(ip, port) for ip, port in out["sockets"] if lo <= port < hi]
    # The participant's discovery and user-data ports are bound to loopback only (on Fast DDS
    # defaults they are bound to 0.0.0.0, reachable from the network).
    assert domain_ports and all(ip == "127.0.0.1" for ip, _ in domain_ports), out["sockets"]
    # The profile's shared-memory segment, not Fast DDS's default 512 KiB one, carries the data.
    assert out["segments"] and max(out["segments"].values()) >= 4 * FRAME_BYTES, out["segments"]
