"""Keep every DDS packet of this process on the loopback interface.

Call `configure_loopback_only(log_dir)` before `rclpy.init()`. It sets:
- ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (ROS_LOCALHOST_ONLY is ignored by recent distros),
- FASTRTPS_DEFAULT_PROFILES_FILE and FASTDDS_DEFAULT_PROFILES_FILE to a Fast DDS profile with
  the built-in transports off, a shared-memory transport and a UDPv4 transport whitelisted to
  127.0.0.1, initial peer 127.0.0.1 (no multicast leaves the machine). Fast DDS 2.x (Jazzy's
  2.14) reads only FASTRTPS_DEFAULT_PROFILES_FILE, Fast DDS 3.x (Kilted) only the FASTDDS_ name:
  with the FASTDDS_ name alone, Jazzy silently ran on Fast DDS defaults (UDP bound to every
  interface, a 512 KiB shared-memory segment),
- ROS_DOMAIN_ID to a random id in 1..101 unless one is already set,
- ROS_LOG_DIR to `log_dir` unless one is already set.

With ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, Jazzy's rmw_fastrtps adds its own transports to the
profile's: a shared-memory one (512 KiB) and a UDPv4 one without whitelist, which opens output
sockets on every interface (seen: 0.0.0.0 and the host's address, ephemeral ports). Its input
sockets cannot bind (the profile's transport holds the ports on 127.0.0.1), every participant
here announces 127.0.0.1 only and discovery goes to 127.0.0.1 only, so nothing is sent off the
machine (strace: all sends to 127.0.0.1); the range stays LOCALHOST so that a process whose
profile failed to load still does not discover the network.

Values already present in the environment are kept unless `force` is set: a deployment on a
robot that must talk to other machines sets its own ROS_AUTOMATIC_DISCOVERY_RANGE and profile
(either profile variable; both are then set to it).

Shared-memory segment size: each participant writes its samples into its own segment, in
fragments of at most 64 KB (the UDP transport's message size). A best-effort sample whose
fragments are overwritten before the reader copied them is lost, so the segment must hold
several frames: with Fast DDS's default 512 KiB segment, best-effort 640x480 rgb8 frames
(900 kB) from another process arrived at 22-47 % (30 Hz, loaded 2-core machine); with
8 MiB, 100 % (`python -m chatpose_ros.tools.qos_probe`).

UDP socket buffers: where shared memory cannot be used (processes in containers without a
shared /dev/shm), frames go over UDP loopback in 64 KB fragments; the kernel's default 208 KiB
receive buffer holds less than one frame (measured: 48 % delivered best effort); 4 MiB buffers
delivered 100 %. The kernel caps the request at net.core.rmem_max / wmem_max without error.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

# The profile file variable of Fast DDS 2.x (ROS 2 Jazzy) and of Fast DDS 3.x (Kilted and later).
PROFILE_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")

FASTDDS_LOOPBACK_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>chatpose_shm</transport_id>
        <type>SHM</type>
        <segment_size>8388608</segment_size>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>chatpose_udp_loopback</transport_id>
        <type>UDPv4</type>
        <sendBufferSize>4194304</sendBufferSize>
        <receiveBufferSize>4194304</receiveBufferSize>
        <interfaceWhiteList>
          <address>127.0.0.1</address>
        </interfaceWhiteList>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="chatpose_loopback_only" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>chatpose_shm</transport_id>
          <transport_id>chatpose_udp_loopback</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
        <builtin>
          <initialPeersList>
            <locator>
              <udpv4>
                <address>127.0.0.1</address>
              </udpv4>
            </locator>
          </initialPeersList>
        </builtin>
      </rtps>
    </participant>
  </profiles>
</dds>
"""


def write_profile(directory: str | Path) -> Path:
    """Write the loopback-only Fast DDS profile into `directory`; returns its path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "fastdds_loopback_only.xml"
    if not path.exists() or path.read_text() != FASTDDS_LOOPBACK_PROFILE:
        path.write_text(FASTDDS_LOOPBACK_PROFILE)
    return path


def configure_loopback_only(state_dir: str | Path, domain_id: int | None = None, force: bool = False) -> dict[str, str]:
    """Set the environment so that DDS stays on 127.0.0.1. Returns the values set.

    Args:
        state_dir: folder for the Fast DDS profile and (under `ros_log/`) the ROS logs.
        domain_id: ROS_DOMAIN_ID to use; None = keep the environment's or pick one at random.
        force: overwrite values already in the environment (tests use this).
    """
    state = Path(state_dir)
    given = None if force else (os.environ.get(PROFILE_VARS[0]) or os.environ.get(PROFILE_VARS[1]))
    profile = given or str(write_profile(state))
    env = {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        **{var: profile for var in PROFILE_VARS},
        "ROS_DOMAIN_ID": str(domain_id if domain_id is not None else random.randint(1, 101)),
        "ROS_LOG_DIR": str(state / "ros_log"),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
    }
    for key, value in env.items():
        if force or not os.environ.get(key):
            os.environ[key] = value
    Path(os.environ["ROS_LOG_DIR"]).mkdir(parents=True, exist_ok=True)
    return {k: os.environ[k] for k in env}
