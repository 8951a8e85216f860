"""Delta-sync protocol: frames, typed messages, protocol state machines, fault-injecting transport.

See ``docs/protocol.md`` for the wire format and the protocol rules.
"""

from __future__ import annotations

from catopt_dsl.sync.cluster import ClusterResult, LocalCluster
from catopt_dsl.sync.frame import (
    DEFAULT_MAX_PAYLOAD,
    FRAME_MAGIC,
    HEADER_SIZE,
    PROTOCOL_VERSION,
    ZERO_HASH,
    Frame,
    Header,
    MsgType,
    decode_frame,
    encode_frame,
    frame_length,
    spec_hash_bytes,
)
from catopt_dsl.sync.messages import (
    Ack,
    AckStatus,
    Broadcast,
    Delta,
    Envelope,
    Join,
    Leave,
    Message,
    Snapshot,
    SnapshotRequest,
    decode_message,
    encode_message,
    from_frame,
    to_frame,
)
from catopt_dsl.sync.protocol import (
    COORDINATOR_ID,
    BroadcastState,
    BroadcastView,
    Contribution,
    CoordinatorApp,
    CoordinatorProtocol,
    NodeApp,
    NodeOutput,
    NodeProtocol,
    ProtocolStats,
    RoundInput,
    SyncSettings,
)
from catopt_dsl.sync.transport import FaultPlan, FaultyTransport

__all__ = [
    "Ack", "AckStatus", "Broadcast", "BroadcastState", "BroadcastView", "COORDINATOR_ID", "ClusterResult",
    "Contribution", "CoordinatorApp", "CoordinatorProtocol", "DEFAULT_MAX_PAYLOAD", "Delta", "Envelope",
    "FRAME_MAGIC", "FaultPlan", "FaultyTransport", "Frame", "HEADER_SIZE", "Header", "Join", "Leave",
    "LocalCluster", "Message", "MsgType", "NodeApp", "NodeOutput", "NodeProtocol", "PROTOCOL_VERSION",
    "ProtocolStats", "RoundInput", "Snapshot", "SnapshotRequest", "SyncSettings", "ZERO_HASH",
    "decode_frame", "decode_message", "encode_frame", "encode_message", "frame_length", "from_frame",
    "spec_hash_bytes", "to_frame",
]
