# Writes ipv6_full.pcap (python3 mk_ipv6_full.py ipv6_full.pcap): fully captured IPv6 packets, most well-formed,
# over the protocols ewpcap_dump_fmt_ipx, _ip6x, _l4x, _routing, _icmp6, _icmp6x and _ndopt decode (ewpcap_dump_diff_SUITE).
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
# ICMPv6 (ewpcap_dump_fmt_icmp6, _ndopt): neighbour discovery with every option tcpdump
# decodes and an unknown one, malformed options (length 0, past the end, bad lengths),
# messages of 1-3 bytes and cut short, errors quoting packets, MLD, MLDv2, mobile IPv6, mtrace
def icmp6(t, code, body, bad=False, hl=255):
    return ip6(58, with_sum(58, bytes([t, code, 0, 0]) + body, 2, bad), hlim=hl)
MAC = bytes.fromhex('020000000001')
sll = bytes([1, 1]) + MAC
tll = bytes([2, 1]) + MAC
pfx = bytes([3, 4, 64, 0xc0]) + struct.pack('>III', 86400, 0xffffffff, 0) + bytes.fromhex('20010db8000000010000000000000000')
mtu = bytes([5, 1, 0, 0]) + struct.pack('>I', 1500)
rdnss = bytes([25, 5, 0, 0]) + struct.pack('>I', 600) + DST + SRC
dnssl = bytes([31, 3, 0, 0]) + struct.pack('>I', 300) + b'\x07example\x03com\x00' + b'\0\0\0'
unk = bytes([200, 1, 1, 2, 3, 4, 5, 6])
advi = bytes([7, 1, 0, 0]) + struct.pack('>I', 5000)
hai = bytes([8, 1, 0, 0]) + struct.pack('>HH', 10, 1800)
rti = bytes([24, 2, 48, 0x08]) + struct.pack('>I', 3600) + bytes.fromhex('20010db800010000')
rh = bytes([4, 3, 0, 0, 0, 0, 0, 0]) + ip6(59, b'')[:16]
# RS, RA, NS, NA, redirect
pk.append(icmp6(133, 0, bytes(4) + sll))
pk.append(icmp6(134, 0, bytes([64, 0xc8]) + struct.pack('>HII', 1800, 30000, 1000) + sll + pfx + mtu + rdnss + dnssl + advi + hai + rti + unk))
pk.append(icmp6(135, 0, bytes(4) + DST + sll))
pk.append(icmp6(136, 0, struct.pack('>I', 0xe0000000) + DST + tll))
pk.append(icmp6(137, 0, bytes(4) + SRC + DST + tll + rh))
# malformed: option of length 0, option past the end, prefix of bad length, MTU of bad length, unknown option then more
pk.append(icmp6(135, 0, bytes(4) + DST + bytes([1, 0, 0, 0, 0, 0, 0, 0])))
pk.append(icmp6(135, 0, bytes(4) + DST + bytes([1, 2]) + MAC))
pk.append(icmp6(134, 0, bytes([64, 0]) + struct.pack('>HII', 0, 0, 0) + bytes([3, 3, 64, 0x80]) + bytes(20) + bytes([5, 2]) + bytes(14)))
pk.append(icmp6(133, 0, bytes(4) + unk + sll))
pk.append(icmp6(134, 0, bytes([64, 0x3a]) + struct.pack(">HII", 0, 0, 0) + bytes([24, 4]) + bytes(30)))
# short messages
pk.append(ip6(58, bytes([135])))
pk.append(ip6(58, bytes([128, 0])))
pk.append(ip6(58, bytes([1, 4, 0])))
pk.append(icmp6(135, 0, bytes(4) + DST[:8]))
# rarer types
pk.append(icmp6(1, 4, bytes(4) + ip6(60, bytes([17, 0, 1, 4, 0, 0, 0, 0]) + struct.pack('>HHHH', 5, 53, 8, 0))))
pk.append(icmp6(1, 4, bytes(4) + ip6(132, bytes(12))))
pk.append(icmp6(1, 2, bytes(4) + ip6(59, b'')))
pk.append(icmp6(1, 9, bytes(4) + ip6(59, b'')))
pk.append(icmp6(3, 0, bytes(4) + ip6(59, b'')))
pk.append(icmp6(3, 1, bytes(4) + ip6(59, b'')))
pk.append(icmp6(4, 1, struct.pack('>I', 40) + ip6(59, b'')))
pk.append(icmp6(4, 7, struct.pack('>I', 40) + ip6(59, b'')))
pk.append(icmp6(130, 0, struct.pack('>HH', 1000, 0) + bytes(16)))
pk.append(icmp6(130, 0, struct.pack('>HH', 40000, 0) + bytes(16) + bytes([0x0a, 200]) + struct.pack('>H', 2) + DST + SRC))
pk.append(icmp6(131, 0, struct.pack('>HH', 0, 0) + DST))
pk.append(icmp6(132, 0, struct.pack('>HH', 0, 0) + DST))
pk.append(icmp6(143, 0, struct.pack('>HH', 0, 2) + bytes([4, 0, 0, 0]) + DST + bytes([1, 0, 0, 1]) + DST + SRC))
pk.append(icmp6(143, 0, struct.pack('>HH', 0, 3) + bytes([9, 0, 0, 0]) + DST))
pk.append(icmp6(144, 0, struct.pack('>HH', 0x1234, 0)))
pk.append(icmp6(145, 0, struct.pack('>HH', 0x1234, 0) + DST + SRC))
pk.append(icmp6(146, 0, struct.pack('>HH', 0x1234, 0)))
pk.append(icmp6(147, 0, struct.pack('>HH', 0x1234, 0xc000) + pfx))
pk.append(icmp6(141, 0, bytes(4) + sll))
pk.append(icmp6(200, 0, bytes(20)))
pk.append(icmp6(201, 0, bytes(20), bad=True))
# checksums after a routing header (tcpdump's over its last address, type 0 and 2; the first
# segment, type 4): right by the route, then right by the header's destination only
FIN = bytes.fromhex('fd000000000000000000000000000009')
def sum_to(nh, data, off, dst):
    data = bytearray(data); data[off:off+2] = b'\0\0'
    c = csum(SRC + dst + struct.pack('>IxxxB', len(data), nh) + bytes(data))
    data[off:off+2] = struct.pack('>H', c); return bytes(data)
def rt(nh, typ, addrs): return bytes([nh, 2 * len(addrs), typ, len(addrs)]) + bytes(4) + b''.join(addrs)
u = struct.pack('>HHHH', 4000, 5000, 13, 0) + b'hello'
for d in (FIN, DST):
    pk.append(ip6(43, rt(17, 0, [SRC, FIN]) + sum_to(17, u, 6, d)))
    pk.append(ip6(43, rt(58, 2, [FIN]) + sum_to(58, echo, 2, d)))
    pk.append(ip6(60, bytes([43, 0, 1, 4, 0, 0, 0, 0]) + rt(6, 0, [FIN]) + sum_to(6, tcp, 16, d)))
pk.append(ip6(43, bytes([17, 2, 4, 0, 0, 0, 0, 0]) + FIN + sum_to(17, u, 6, FIN)))
pk.append(ip6(43, rt(112, 0, [FIN]) + sum_to(112, v3, 6, FIN), hlim=255))
pk.append(ip6(43, rt(33, 0, [FIN]) + sum_to(33, dccp, 6, FIN)))
# a payload length of 0: a Jumbo Payload option (valid, past the capture, too small, of a bad
# length, with a payload length, shorter than the headers), none, after other headers
def ip6z(nh, payload, hlim=64):
    return struct.pack('>IHBB', 6 << 28, 0, nh, hlim) + SRC + DST + payload
u = udp(4000, 5000, b'jumbo!')
def jopt(n): return bytes([0xc2, 4]) + struct.pack('>I', n)
pk.append(ip6z(0, bytes([17, 0]) + jopt(8 + len(u)) + u))          # jumbo: length = all after IPv6
pk.append(ip6z(0, bytes([17, 0]) + jopt(70000) + u))               # jumbo past the capture
pk.append(ip6z(0, bytes([17, 0]) + jopt(1000) + u))                # jumbo < 65536
pk.append(ip6z(0, bytes([17, 0, 1, 4, 0, 0, 0, 0]) + u))           # hop-by-hop, no jumbo
pk.append(ip6z(17, u))                                             # no extension header
pk.append(ip6z(60, bytes([17, 0, 1, 4, 0, 0, 0, 0]) + u))          # destination options, no jumbo
pk.append(ip6(0, bytes([17, 0]) + jopt(8 + len(u)) + u))           # jumbo with a payload length
pk.append(ip6z(0, bytes([58, 0]) + jopt(8 + 12) + with_sum(58, echo, 2)))  # jumbo, ICMPv6
pk.append(ip6z(0, bytes([17, 0, 0xc2, 2, 0, 0, 0, 0]) + u))        # jumbo option of bad length
pk.append(ip6z(0, bytes([17, 0]) + jopt(4) + u))                   # jumbo shorter than the headers
pk.append(ip6z(59, b''))
# node information queries and replies (every qtype, subject and code; names cut short,
# of odd bytes), router renumbering (each code, flags, a match with and without its use, cut short)
N = bytes(range(8))
for qt, fl in [(0,0),(1,0),(1,1),(2,0),(3,0),(3,0x3e),(3,0x7f),(9,0)]:
    pk.append(icmp6(139, 0, struct.pack('>HH', qt, fl) + N + DST))
pk.append(icmp6(139, 0, struct.pack('>HH', 2, 0) + N))           # 03 draft
pk.append(icmp6(139, 1, struct.pack('>HH', 2, 0) + N + b'\x07example\x03com\x00'))
pk.append(icmp6(139, 2, struct.pack('>HH', 2, 0) + N + bytes([10,0,0,1])))
pk.append(icmp6(139, 0, struct.pack('>HH', 2, 0)))               # who-are-you (12 bytes)
for code in (0,1,2,5):
  for qt, fl in [(0,0),(1,1),(2,1),(3,0x7f),(7,0)]:
    body = struct.pack('>HH', qt, fl) + N
    if qt == 2: body += struct.pack('>I', 300) + b'\x07example\x03com\x00'
    if qt == 3: body += struct.pack('>I', 60) + DST + struct.pack('>I', 70) + SRC
    pk.append(icmp6(140, code, body))
# router renumbering
match = bytes([1, 3, 5, 64, 48, 64]) + bytes(2) + bytes.fromhex('20010db8000000000000000000000000')
use = bytes([64, 48, 0xff, 0xc0]) + struct.pack('>III', 3600, 0xffffffff, 0xc0000000) + bytes.fromhex('20010db8000100000000000000000000')
for code, flags in [(0, 0xf8), (1, 0), (255, 0), (2, 0x40)]:
    pk.append(icmp6(138, code, struct.pack('>I', 7) + bytes([1, flags]) + struct.pack('>HI', 100, 0) + match + use))
pk.append(icmp6(139, 0, struct.pack('>HH', 2, 0) + N + DST + b'xx'))                 # subject of a bad length
pk.append(icmp6(139, 2, struct.pack('>HH', 3, 0) + N + bytes([10, 0, 0, 1, 9])))
pk.append(icmp6(139, 1, struct.pack('>HH', 2, 0) + N + b'\x05hello'))                # 03 draft subject
pk.append(icmp6(139, 1, struct.pack('>HH', 2, 0) + N + b'\x03a\x01b\x00\x00\x07'))    # ??? after the end
pk.append(icmp6(139, 1, struct.pack('>HH', 2, 0) + N + b'\x09ab'))                    # label past the end
pk.append(icmp6(139, 7, struct.pack('>HH', 2, 0) + N + b'abcd'))                      # unknown subject
pk.append(icmp6(140, 0, struct.pack('>HH', 2, 1) + N + struct.pack('>I', 9) + b'\x04\x80\x01x\x7f'))  # pascal, odd chars
pk.append(icmp6(140, 0, struct.pack('>HH', 2, 0) + N + struct.pack('>I', 9) + b'\x03www\x00\x00'))
pk.append(icmp6(140, 0, struct.pack('>HH', 2, 0) + N + b'\x00\x00'))                  # no name
pk.append(icmp6(140, 0, struct.pack('>HH', 3, 0) + N + struct.pack('>I', 60) + DST + b'abc'))
pk.append(icmp6(140, 1, struct.pack('>HH', 0, 0)))                                    # reply cut short
match1 = bytes([2, 7, 5, 64, 48, 64]) + bytes(2) + bytes.fromhex('20010db8000000000000000000000000')
pk.append(icmp6(138, 0, struct.pack('>I', 8) + bytes([2, 0]) + struct.pack('>HI', 5, 0xabc) + match1 + use))
pk.append(icmp6(138, 0, struct.pack('>I', 8) + bytes([2, 0]) + struct.pack('>HI', 5, 0) + match1))  # its use missing
pk.append(icmp6(138, 0, struct.pack('>I', 8) + bytes([2, 0]) + struct.pack('>HI', 5, 0) + bytes([9, 4]) + match1[2:] + use))  # bad match length
pk.append(icmp6(138, 0, struct.pack('>I', 8) + bytes([2, 0]) + struct.pack('>HI', 5, 0) + match1[:20]))  # match cut short
pk.append(icmp6(138, 1, struct.pack('>I', 8)))                                        # shorter than its header
# RPL: DIS, DIO (with options, cut short, too short), DAO (with and without its DODAG id, cut
# short), DAO-ACK, an unknown code, a secured message
dio = bytes([1, 2]) + struct.pack('>H', 256) + bytes([0x80 | (1 << 3) | 2, 9, 0, 0]) + DST
pk.append(icmp6(155, 0, bytes([0, 0]) + bytes([0, 1, 2, 3])))
pk.append(icmp6(155, 1, dio))
pk.append(icmp6(155, 1, dio + bytes([0, 1, 2, 0, 0, 4, 3, 1, 2, 3])))
pk.append(icmp6(155, 1, dio[:10]))
pk.append(icmp6(155, 2, bytes([7, 0xc0, 0, 5]) + DST + bytes([5, 2, 0, 0])))
pk.append(icmp6(155, 2, bytes([7, 0x80, 0, 5])))
pk.append(icmp6(155, 2, bytes([7, 0x40, 0, 5]) + DST[:6]))
pk.append(icmp6(155, 2, bytes([7])))
pk.append(icmp6(155, 3, bytes([7, 0x80, 5, 0]) + DST))
pk.append(icmp6(155, 3, bytes([7, 0, 5, 1]) + bytes([0, 1, 0])))
pk.append(icmp6(155, 3, bytes([7, 0x80, 5, 1])))
pk.append(icmp6(155, 9, bytes(4)))
pk.append(icmp6(155, 0x81, bytes(4)))
pk.append(icmp6(155, 1, dio + bytes([0, 4, 9])))                 # option past the end
pk.append(icmp6(155, 1, dio + bytes([2])))                       # option of one byte
pk.append(icmp6(155, 1, bytes([1, 2, 1, 0, 0x38, 9, 0, 0]) + DST))  # mop 7, not grounded
out = open(sys.argv[1], 'wb')
out.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
for i, p in enumerate(pk):
    f = eth(p)
    out.write(struct.pack('<IIII', 1700000000 + i, i * 1000, len(f), len(f))); out.write(f)
print(len(pk))
