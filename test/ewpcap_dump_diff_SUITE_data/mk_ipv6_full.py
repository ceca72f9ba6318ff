# Writes ipv6_full.pcap (python3 mk_ipv6_full.py ipv6_full.pcap): well-formed, fully captured IPv6 packets
# over the protocols ewpcap_dump_fmt_ipx, _ip6x, _l4x and _routing decode (ewpcap_dump_diff_SUITE).
import struct, sys
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('>%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
SRC = bytes.fromhex('fd000000000000000000000000000001')
DST = bytes.fromhex('fd000000000000000000000000000002')
def pseudo6(nh, data): return SRC + DST + struct.pack('>IxxxB', len(data), nh)
def with_sum(nh, data, off, bad=False):
    data = bytearray(data); data[off:off+2] = b'\0\0'
    c = csum(pseudo6(nh, bytes(data)) + bytes(data))
    if bad: c ^= 0x1234
    data[off:off+2] = struct.pack('>H', c); return bytes(data)
def ip6(nh, payload, hlim=64):
    return struct.pack('>IHBB', 6 << 28, len(payload), nh, hlim) + SRC + DST + payload
def eth(p, et=0x86dd): return b'\x02\0\0\0\0\x02' + b'\x02\0\0\0\0\x01' + struct.pack('>H', et) + p
def udp(sp, dp, data, nh_sum=True):
    u = struct.pack('>HHHH', sp, dp, 8 + len(data), 0) + data
    return with_sum(17, u, 6)
def ip4(proto, payload):
    h = struct.pack('>BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 7, 0, 64, proto, 0, bytes([10,0,0,1]), bytes([10,0,0,2]))
    c = csum(h); h = h[:10] + struct.pack('>H', c) + h[12:]
    return h + payload
pk = []
echo = bytes([128, 0, 0, 0]) + struct.pack('>HH', 7, 1) + b'abcdefgh'
pk.append(ip6(58, with_sum(58, echo, 2)))
pk.append(ip6(58, with_sum(58, echo, 2, bad=True)))
pk.append(ip6(58, with_sum(58, bytes([63, 0, 0, 0]) + b'12345678', 2, bad=True)))
# hop-by-hop (PadN) then UDP: bare ports
u = udp(4000, 5000, b'hello')
pk.append(ip6(0, bytes([17, 0, 1, 4, 0, 0, 0, 0]) + u))
# destination options with an unknown option then TCP SYN
tcp = struct.pack('>HHIIBBHHH', 40000, 80, 1000, 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = with_sum(6, tcp, 16)
pk.append(ip6(60, bytes([6, 0, 0x3e, 4, 1, 2, 3, 4]) + tcp))
# hop-by-hop with router alert, then ICMPv6 echo
pk.append(ip6(0, bytes([58, 0, 5, 2, 0, 0, 1, 0]) + with_sum(58, echo, 2)))
# AH (ICV 12 bytes) then UDP
ah = bytes([17, 4, 0, 0]) + struct.pack('>II', 0x1000, 5) + bytes(range(12))
pk.append(ip6(51, ah + udp(4000, 5000, b'\0' * 12)))
# ESP
pk.append(ip6(50, struct.pack('>II', 0xabcdef01, 9) + bytes(24)))
# routing type 0 with two addresses, then ICMPv6 echo
rt0 = bytes([59, 4, 0, 1]) + b'\0\0\0\0' + DST + SRC
pk.append(ip6(43, rt0))
# routing type 4 (segment routing), one segment
rt4 = bytes([17, 2, 4, 0, 0, 0, 0, 7]) + DST
pk.append(ip6(43, rt4 + udp(1, 2, b'x')))
# fragments: first (offset 0, more) with UDP, and a later one
pk.append(ip6(44, bytes([17, 0, 0, 1]) + struct.pack('>I', 0xdeadbeef) + udp(7, 9, b'frag')))
pk.append(ip6(44, bytes([17, 0, 0x05, 0x18]) + struct.pack('>I', 0xdeadbeef) + b'rest of it'))
# DCCP request (correct, then wrong checksum), with a timestamp option (-vv)
dccp = struct.pack('>HHBBH', 5001, 6001, 6, 0, 0) + bytes([0 << 1 | 1, 0]) + struct.pack('>HI', 0, 77)[0:6] + struct.pack('>I', 42) + bytes([41, 6]) + struct.pack('>I', 123456) + b'\0\0'
pk.append(ip6(33, with_sum(33, dccp, 6)))
pk.append(ip6(33, with_sum(33, dccp, 6, bad=True)))
# VRRPv2 advertisement, hop limit 255, one address, simple password
vrrp = bytes([0x21, 7, 100, 1, 1, 1, 0, 0]) + DST + b'secret\0\0'
vrrp = bytearray(vrrp); c = csum(bytes(vrrp)); vrrp[6:8] = struct.pack('>H', c)
pk.append(ip6(112, bytes(vrrp), hlim=255))
# VRRPv3 (checksum over the IPv6 pseudo-header)
v3 = bytes([0x31, 9, 200, 1, 0, 100, 0, 0]) + DST
pk.append(ip6(112, with_sum(112, v3, 6), hlim=255))
# GRE v0 with key and sequence, carrying IPv4/UDP; GRE v1 (PPTP) without payload
inner = ip4(17, struct.pack('>HHHH', 1111, 2222, 12, 0) + b'abcd')
pk.append(ip6(47, struct.pack('>HHII', 0x3000, 0x0800, 0x42, 17) + inner))
pk.append(ip6(47, struct.pack('>HHHHI', 0x2081, 0x880b, 0, 9, 31)))
# mobility: binding update with a PadN and a refresh option
bu = bytes([59, 2, 5, 0, 0, 0]) + struct.pack('>H', 11) + bytes([0x80, 0]) + struct.pack('>H', 10) + bytes([1, 0, 2, 2]) + struct.pack('>H', 30) + b'\0\0'
pk.append(ip6(135, bu))
# IPv4 in IPv6, IPv6 in IPv6
pk.append(ip6(4, ip4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1]))))
pk.append(ip6(41, ip6(59, b'')))
# EGP v2 poll, IGRP update with one interior route, RSVP v2, PIM v3, EIGRP v3
pk.append(ip6(8, bytes([2, 2, 0, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 10, 1, 2, 0][:16])))
igrp = bytes([0x11, 3, 0, 100, 0, 1, 0, 0, 0, 0, 0, 0]) + bytes([10, 1, 2]) + bytes([0, 0, 100]) + bytes([0, 0, 10]) + struct.pack('>H', 1500) + bytes([255, 1, 0])
pk.append(ip6(9, igrp))
pk.append(ip6(46, bytes([0x20, 1, 0, 0, 64, 0, 0, 8])))
pk.append(ip6(103, bytes([0x30, 0, 0, 0])))
pk.append(ip6(88, bytes([3]) + bytes(19)))
# a first fragment whose UDP length runs past it (no bad length in a fragment),
# a segment routing header whose last entry is past its length, ICMPv6 of length 0
pk.append(ip6(44, bytes([17, 0, 0, 1]) + struct.pack('>I', 5) + struct.pack('>HHHH', 9, 10, 900, 0) + b'part'))
pk.append(ip6(43, bytes([59, 2, 4, 0, 5, 0, 0, 1]) + DST))
pk.append(ip6(0, bytes([58, 0, 1, 4, 0, 0, 0, 0])))
# SCTP: two chunks with nothing more to print, a DATA chunk with its payload, an unknown chunk
sctp = struct.pack('>HHII', 5000, 6000, 0x11223344, 0)
pk.append(ip6(132, sctp + bytes([11, 0, 0, 4]) + bytes([14, 0, 0, 4])))
pk.append(ip6(132, sctp + bytes([0, 3, 0, 21]) + struct.pack('>IHHI', 1, 2, 3, 0) + b'abcde\0\0\0'))
pk.append(ip6(132, sctp + bytes([200, 0, 0, 4])))
# ND, no next header, ICMP over IPv6
pk.append(ip6(77, b'nd'))
pk.append(ip6(59, b''))
pk.append(ip6(1, bytes([8, 0, 0, 0])))
out = open(sys.argv[1], 'wb')
out.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
for i, p in enumerate(pk):
    f = eth(p)
    out.write(struct.pack('<IIII', 1700000000 + i, i * 1000, len(f), len(f))); out.write(f)
print(len(pk))
