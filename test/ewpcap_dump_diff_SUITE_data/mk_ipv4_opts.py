# Writes ipv4_opts.pcap (python3 mk_ipv4_opts.py ipv4_opts.pcap): IPv4 packets with options
# (ewpcap_dump_fmt_ipopt, ewpcap_dump_diff_SUITE): RR, LSRR, SSRR, TS of each kind, RA, well-formed
# and malformed (bad lengths, pointers, types), cut short, and TCP and UDP checksums after a source
# route (tcpdump's over its last address).
import struct, sys
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('>%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def ip4(proto, opts, payload):
    hl = 20 + len(opts)
    h = struct.pack('>BBHHHBBH4s4s', 0x40 | (hl // 4), 0, hl + len(payload), 7, 0, 64, proto, 0, bytes([10,0,0,1]), bytes([10,0,0,2])) + opts
    c = csum(h); h = h[:10] + struct.pack('>H', c) + h[12:]
    return h + payload
def a(*x): return bytes(x)
A1, A2, A3 = a(192,0,2,1), a(192,0,2,2), a(192,0,2,3)
icmp = bytes([8, 0, 0xf7, 0xfe, 0, 1, 0, 0])
pk = []
rr = a(7, 11, 8) + A1 + A2 + a(0)      # RR, ptr after the first, padded
pk.append(ip4(1, rr, icmp))
pk.append(ip4(1, a(131, 11, 12) + A1 + A2 + a(0), icmp))   # LSRR, all used
pk.append(ip4(1, a(137, 11, 4) + A1 + A2 + a(1), icmp))    # SSRR, none used, NOP
pk.append(ip4(1, a(7, 10, 8) + A1 + A2 + a(0, 0), icmp))    # bad length 10
pk.append(ip4(1, a(7, 11, 6) + A1 + A2 + a(0), icmp))      # bad ptr
pk.append(ip4(1, a(7, 2, 0, 0), icmp))                     # RR of 2 bytes
pk.append(ip4(1, a(68, 12, 5, 0) + struct.pack('>II', 1000, 2000), icmp))  # TS only, ptr at first
pk.append(ip4(1, a(68, 20, 13, 1) + A1 + struct.pack('>I', 1000) + A2 + struct.pack('>I', 2000), icmp))  # TS+ADDR
pk.append(ip4(1, a(68, 12, 21, 0x21) + struct.pack('>II', 1000, 2000), icmp))  # overflow 2, ptr past
pk.append(ip4(1, a(68, 12, 5, 3) + A1 + struct.pack('>I', 5), icmp))  # PRESPEC
pk.append(ip4(1, a(68, 8, 5, 7) + struct.pack('>I', 5), icmp))  # bad ts type
pk.append(ip4(1, a(68, 3, 0, 0), icmp))                    # TS of 3 bytes
pk.append(ip4(1, a(68, 10, 6, 1) + A1 + a(0, 0), icmp))   # TS+ADDR bad length, bad ptr
pk.append(ip4(1, a(148, 4, 0, 0), icmp))                  # RA 0
pk.append(ip4(1, a(148, 4, 0, 5), icmp))                  # RA 5
pk.append(ip4(1, a(148, 3, 0, 0), icmp))                  # RA bad length
pk.append(ip4(17, a(131, 7, 4) + A3 + a(0), struct.pack('>HHHH', 1, 2, 8, 0)))  # UDP after LSRR
pk.append(ip4(6, a(137, 11, 4) + A1 + A3 + a(0), struct.pack('>HHIIBBHHH', 1, 2, 0, 0, 0x50, 2, 100, 0, 0)))  # TCP after SSRR
def l4sum(proto, data, off, dst):
    data = bytearray(data); data[off:off+2] = b'\0\0'
    c = csum(bytes([10, 0, 0, 1]) + dst + struct.pack('>xBH', proto, len(data)) + bytes(data))
    data[off:off+2] = struct.pack('>H', c); return bytes(data)
udp = struct.pack('>HHHH', 1000, 2000, 12, 0) + b'abcd'
tcp = struct.pack('>HHIIBBHHH', 1, 2, 0, 0, 0x50, 2, 100, 0, 0)
for d in (A3, bytes([10, 0, 0, 2])):
    pk.append(ip4(17, a(131, 11, 4) + A1 + A3 + a(0), l4sum(17, udp, 6, d)))
    pk.append(ip4(6, a(1, 137, 7, 4) + A3, l4sum(6, tcp, 16, d)))
pk.append(ip4(17, a(131, 3, 4, 0), l4sum(17, udp, 6, bytes([10, 0, 0, 2]))))  # a route of no address
pk.append(ip4(1, a(1, 1, 7, 39, 4) + bytes(36) + a(0), icmp))                 # RR of 9 slots
out = open(sys.argv[1], 'wb')
out.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
cuts = {len(pk): 14 + 28, len(pk) + 1: 14 + 30, len(pk) + 2: 14 + 35}   # inside RR, TS, TS+ADDR
pk += [pk[0], pk[6], pk[7]]
for i, p in enumerate(pk):
    f = b'\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00' + p
    c = cuts.get(i, len(f))
    out.write(struct.pack('<IIII', 1700000000 + i, 0, c, len(f))); out.write(f[:c])
print(len(pk))
