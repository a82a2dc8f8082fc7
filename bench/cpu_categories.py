#!/usr/bin/env python3
"""Where a profile's CPU went, by layer: reads folded stacks (inferno-collapse-perf output,
`frame;frame;...;leaf count` per line) on stdin and prints a markdown table of each layer's
share of the samples.

A stack is charged to the first layer met walking from its leaf towards its root, so a memcpy
under h2 counts as HTTP/2 and a `tcp_sendmsg` under an io_uring submission counts as the
network. The layers and their patterns are below; a stack that matches none is "other".
"""
import re
import sys
from collections import Counter

# (layer, pattern over one frame), tried in this order on each frame from the leaf up.
LAYERS = [
    ("kernel: disk (ext4, block, virtio)", r"ext4_|iomap_|blk_|vp_notify|virtqueue|submit_bio|jbd2"),
    ("kernel: network (TCP, loopback)", r"tcp_|__sys_sendto|__sys_recvfrom|sock_|inet_|ip_|__netif|net_rx|loopback"),
    ("kernel: scheduling, wake-ups, futex", r"finish_task_switch|__schedule|try_to_wake_up|futex|eventfd_|schedule_hrtimeout|native_write_msr"),
    ("kernel: io_uring (timers, cancels, polls)", r"io_uring|io_submit_sqes|io_issue_sqe|io_timeout|io_async_cancel|io_poll|io_cqring|io_wq|io_handle_tw|__io_"),
    ("engine (B+tree, pages, publish)", r"basalt_engine::"),
    ("WAL (records, crc32, queueing)", r"basalt_wal::|crc32fast"),
    ("raft (raft-rs, the node, the Ready loop)", r"^raft::|basalt::node::|raft_member::Member::pump|raft_proto"),
    ("apply (state machine, answers)", r"basalt::server::state_machine::|applier::Applier"),
    ("watch", r"basalt::server::watch::"),
    ("HTTP/2 and gRPC (connection, hpack, framing, protobuf)", r"^h2::|basalt_net::grpc|basalt_net::http2|prost|tokio_util::codec|hpack"),
    ("allocator (mimalloc)", r"^_?mi_|mimalloc"),
    ("executor (glommio)", r"^glommio::"),
    ("services (v3rpc, routing)", r"basalt::server::v3rpc|basalt::server::routing|owner_op"),
]
COMPILED = [(name, re.compile(pattern)) for name, pattern in LAYERS]


def layer_of(stack):
    for frame in reversed(stack.split(";")):
        for name, pattern in COMPILED:
            if pattern.search(frame):
                return name
    return "other"


def main():
    shares = Counter()
    threads = Counter()
    total = 0
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        count = int(count)
        total += count
        shares[layer_of(stack)] += count
        threads[re.sub(r"[-/]\d+$", "", stack.split(";", 1)[0])] += count
    if total == 0:
        sys.exit("no samples")
    print("| layer | share of the samples |")
    print("|---|--:|")
    for name, count in shares.most_common():
        print(f"| {name} | {100 * count / total:.1f} % |")
    print()
    print("| thread | share |")
    print("|---|--:|")
    for name, count in threads.most_common():
        print(f"| {name} | {100 * count / total:.1f} % |")


if __name__ == "__main__":
    main()
