#!/usr/bin/env python3
"""The real tinyproto 3.0 (PyPI) as a peer of our echo_server / echo_client.

  tinyproto_peer.py server
      A TinyProtoServer on a free loopback port whose connections echo every message;
      prints `listening on 127.0.0.1:P` once it listens; runs until killed.
  tinyproto_peer.py client --port P --sizes 0,1,1000,1048576 --count N
      A TinyProtoClient that sends N messages of each size, one at a time (tinyproto is
      half duplex), checks every echo byte for byte, prints `ok TOTAL` and exits 0; exits 1
      with a reason on a wrong echo, a tinyproto error or no answer within 60 s.
"""
import argparse
import socket
import sys
import threading

from tinyproto import (TinyProtoClient, TinyProtoConnection,
                       TinyProtoConnectionDetails, TinyProtoServer)


def payload(i, size):
    return bytearray((i * 7 + j) % 26 + 97 for j in range(size))


class Echo(TinyProtoConnection):
    def transmission_received(self, msg):
        self.transmit(msg)


def serve():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    class Server(TinyProtoServer):
        def pre_loop(self):
            print(f"listening on 127.0.0.1:{port}", flush=True)

    Server([TinyProtoConnectionDetails("127.0.0.1", port)], connection_handler=Echo).start()


def drive(port, sizes, count):
    plan = [payload(i, size) for size in sizes for i in range(count)]
    done = threading.Event()
    result = {}

    class Driver(TinyProtoConnection):
        next = 0

        def send_next(self):
            if self.next == len(plan):
                result["ok"] = len(plan)
                self.shutdown = True
                done.set()
                return
            self.transmit(plan[self.next])

        def pre_loop(self):
            self.send_next()

        def transmission_received(self, msg):
            want = plan[self.next]
            if msg != want:
                result["error"] = (f"message {self.next}: echo of {len(msg)} bytes differs "
                                   f"from the {len(want)} sent")
                self.shutdown = True
                done.set()
                return
            self.next += 1
            self.send_next()

        def post_loop(self):
            done.set()

    client = TinyProtoClient(connection_handler=Driver, timeout=30)
    client.connect_to(TinyProtoConnectionDetails("127.0.0.1", port))
    if not done.wait(60):
        sys.exit("tinyproto_peer: no answer within 60 s")
    if "ok" in result:
        print(f"ok {result['ok']}", flush=True)
        return
    sys.exit(f"tinyproto_peer: {result.get('error', 'the connection ended early')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["server", "client"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--sizes", default="0,1,1000,1048576")
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    if args.mode == "server":
        serve()
    else:
        drive(args.port, [int(s) for s in args.sizes.split(",")], args.count)


if __name__ == "__main__":
    main()
