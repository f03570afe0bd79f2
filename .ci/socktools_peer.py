# -*- coding: utf-8 -*-
"""A real socktools 0.2 node (TCPSock with MsgpackParseMixin, Python 2.7) for p2p_node.

  socktools_peer.py listen [--say TEXT]
      Listens on a free loopback port; prints `listening on 127.0.0.1:P`.
  socktools_peer.py dial PORT [--say TEXT]
      Connects to 127.0.0.1:PORT.

Either way it prints `got TYPE: DATA` for every message a peer sends, answers each message
of type 1 with `(1, "socktools heard: " + DATA)` to its sender, and with --say sends
`(1, TEXT)` to every peer once a second. Runs until killed. socktools prints its own debug
lines to stdout twice; they are silenced here so that only these lines appear.
"""
import sys

import eventlet
eventlet.monkey_patch()

from socktools.msgpack_mixin import MsgpackParseMixin
from socktools.tcp_sock import TCPSock


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Node(MsgpackParseMixin, TCPSock):
    def log_debug(self, msg):
        pass

    def log_error(self, msg, exc=None):
        sys.stderr.write("socktools error: %s %r\n" % (msg, exc))


def main():
    args = sys.argv[1:]
    say = None
    if "--say" in args:
        i = args.index("--say")
        say = args[i + 1]
        del args[i:i + 2]
    mode = args[0]

    def heard(from_addr, msg_type, msg_data):
        out("got %s: %s" % (msg_type, msg_data))
        if msg_type == 1 and not msg_data.startswith("socktools heard"):
            node.send_msg(1, "socktools heard: " + msg_data, to_peer=from_addr)

    if mode == "listen":
        node = Node(bind=("127.0.0.1", 0), handlers={1: [heard]})
        node.start_server(backlog=5)
        out("listening on 127.0.0.1:%d" % node.sock.getsockname()[1])
    else:
        node = Node(handlers={1: [heard]})
        peer = ("127.0.0.1", int(args[1]))
        node.connect_to(peer)
        # socktools raises KeyError if it sends before the peer's greenlet has run.
        while "sendq" not in node.known_peers.get(peer, {}):
            eventlet.sleep(0.01)
        out("connected to 127.0.0.1:%d" % peer[1])
    while True:
        eventlet.sleep(1)
        if say is not None and node.known_peers:
            node.send_msg(1, say)


if __name__ == "__main__":
    main()
