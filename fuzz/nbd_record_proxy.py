#!/usr/bin/env python3
"""Recording proxy for the NBD fuzz corpus: listens on a unix socket, forwards every connection
to the real server's unix socket, and writes what each client sent (client -> server bytes only)
to OUT_DIR/<prefix>-<n>.bin, capped at --cap bytes per connection (a transcript cut short is still
a valid seed). Used by fuzz/make_nbd_corpus.sh; runs until killed.
Usage: nbd_record_proxy.py LISTEN_PATH SERVER_PATH OUT_DIR [--cap BYTES]"""
import argparse
import os
import selectors
import socket
import threading


def pump(client, server, out_path, cap):
    recorded = bytearray()
    sel = selectors.DefaultSelector()
    sel.register(client, selectors.EVENT_READ, server)
    sel.register(server, selectors.EVENT_READ, client)
    open_sides = 2
    while open_sides:
        for key, _ in sel.select():
            src, dst = key.fileobj, key.data
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                sel.unregister(src)
                open_sides -= 1
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            if src is client and len(recorded) < cap:
                recorded += data[: cap - len(recorded)]
            try:
                dst.sendall(data)
            except OSError:
                open_sides = 0
    client.close()
    server.close()
    with open(out_path, "wb") as f:
        f.write(recorded)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("listen")
    ap.add_argument("server")
    ap.add_argument("out_dir")
    ap.add_argument("--prefix", default="conn")
    ap.add_argument("--cap", type=int, default=16384)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(args.listen)
    lsock.listen(16)
    print("listening", flush=True)
    n = 0
    while True:
        client, _ = lsock.accept()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.connect(args.server)
        n += 1
        path = os.path.join(args.out_dir, f"{args.prefix}-{n:03d}.bin")
        threading.Thread(target=pump, args=(client, server, path, args.cap), daemon=True).start()


if __name__ == "__main__":
    main()
