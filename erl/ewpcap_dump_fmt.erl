%%% @doc Packet lines as tcpdump prints them, for ewpcap_dump.
%%%
%%% One line per packet: the local time, then the summary of the link,
%%% network and transport layers. Decoded: Ethernet and Linux cooked
%%% captures (link types 1, 113, 276), BSD loopback and raw IP, 802.1Q,
%%% ARP, IPv4, IPv6 (with its extension headers), TCP (relative sequence
%%% numbers as tcpdump's, options), UDP, ICMP and ICMPv6; the text is
%%% tcpdump's, byte for byte, for these. Names of hosts and ports come
%%% from ewpcap_dump_names. Also the `-D' listing and the link type names.
%%% @end
-module(ewpcap_dump_fmt).

-export([new_printer/2, new_printer/4, format_packet/4, resolved/3,
         format_ifaddrs/1, linktype_name/1, linktype_desc/1]).

-export_type([printer/0]).

%% Text output state: the name caches and the TCP sequence bases (as
%% tcpdump, sequence numbers print relative to the first ACK of a
%% conversation).
-record(printer, {
    absolute = false :: boolean(),   % -S: absolute TCP sequence numbers
    verbose = 0 :: non_neg_integer(), % -v
    names :: ewpcap_dump_names:names(),
    tcp = #{} :: #{term() => {non_neg_integer(), non_neg_integer()}}
}).

-opaque printer() :: #printer{}.

%%% ===================================================================
%%% API
%%% ===================================================================

%% @doc A printer for format_packet/4: names looked up on the spot
%% (`sync') unless `Numeric'.
-spec new_printer(Numeric :: boolean(), Verbose :: non_neg_integer()) -> printer().
new_printer(Numeric, Verbose) ->
    new_printer(Numeric, Verbose, false, sync).

%% @doc A printer: `Absolute' TCP sequence numbers (`-S'); names looked up
%% on the spot (`sync') or in the background (`async', see
%% ewpcap_dump_names).
-spec new_printer(boolean(), non_neg_integer(), boolean(), sync | async) -> printer().
new_printer(Numeric, Verbose, Absolute, Mode) ->
    #printer{verbose = Verbose, absolute = Absolute,
             names = ewpcap_dump_names:new(Numeric, Mode)}.

%% @doc Takes the answer of a background name lookup,
%% `{ewpcap_dump_names, IP, Name}'.
-spec resolved(inet:ip_address(), string(), printer()) -> printer().
resolved(IP, Name, #printer{names = N} = P) ->
    P#printer{names = ewpcap_dump_names:resolved(IP, Name, N)}.

%% @doc Formats one packet: the time (local, as tcpdump), then the
%% summary. `Dlt' is the link type (1 Ethernet, 113 and 276 Linux cooked,
%% 0 BSD loopback, 12/101 raw IP, 228 IPv4, 229 IPv6); `Time' microseconds
%% since the epoch; `Len' the length on the wire. The last argument
%% `line' is reserved for other formats. Returns the line (without
%% newline) and the printer to use for the next packet.
-spec format_packet(non_neg_integer(), {non_neg_integer(), non_neg_integer(), binary()},
                    printer(), line) -> {iolist(), printer()}.
format_packet(Dlt, {Time, Len, Packet}, P, line) ->
    {Summary, P1} = link(Dlt, Len, Packet, P),
    {[format_time(Time), $\s, Summary], P1}.

format_time(Micro) ->
    {_, {H, M, S}} = calendar:system_time_to_local_time(Micro div 1000000, second),
    io_lib:format("~2..0b:~2..0b:~2..0b.~6..0b", [H, M, S, Micro rem 1000000]).

%% Link layers. Len is the wire length of what follows the link header.
link(1, Len, <<Dst:6/binary, Src:6/binary, Type:16, Rest/binary>>, P) ->
    Pre = case P#printer.verbose of
              0 -> [];
              _ -> [mac(Src), " > ", mac(Dst), ", ", ethertype_desc(Type),
                    ", length ", integer_to_list(Len), ": "]
          end,
    {S, P1} = ether(Type, Len - 14, Rest, P),
    {[Pre, S], P1};
link(113, Len, <<_PktType:16, _HaType:16, _HaLen:16, _Addr:8/binary, Proto:16, Rest/binary>>, P) ->
    ether(Proto, Len - 16, Rest, P);
link(276, Len, <<Proto:16, _:16, _IfIndex:32, _HaType:16, _PktType:8, _HaLen:8,
                 _Addr:8/binary, Rest/binary>>, P) ->
    ether(Proto, Len - 20, Rest, P);
link(0, Len, <<Family:4/binary, Rest/binary>>, P) ->
    AF = case Family of
             <<0, 0, _, _>> -> binary:decode_unsigned(Family, big);
             _ -> binary:decode_unsigned(Family, little)
         end,
    case AF of
        2 -> ipv4(Rest, Len - 4, P);
        _ when AF =:= 10; AF =:= 24; AF =:= 28; AF =:= 30 -> ipv6(Rest, Len - 4, P);
        _ -> {["AF ", integer_to_list(AF), ", length ", integer_to_list(Len)], P}
    end;
link(Raw, Len, <<4:4, _/bitstring>> = Packet, P) when Raw =:= 12; Raw =:= 14; Raw =:= 101; Raw =:= 228 ->
    ipv4(Packet, Len, P);
link(Raw, Len, <<6:4, _/bitstring>> = Packet, P) when Raw =:= 12; Raw =:= 14; Raw =:= 101; Raw =:= 229 ->
    ipv6(Packet, Len, P);
link(Dlt, Len, _, P) ->
    {[linktype_name(Dlt), ", length ", integer_to_list(Len), " [|link]"], P}.

ether(16#0800, Len, Rest, P) -> ipv4(Rest, Len, P);
ether(16#86DD, Len, Rest, P) -> ipv6(Rest, Len, P);
ether(16#0806, Len, Rest, P) -> arp(Rest, Len, P);
ether(Tpid, Len, <<Pcp:3, _Dei:1, Vid:12, Type:16, Rest/binary>>, P)
  when Tpid =:= 16#8100; Tpid =:= 16#88A8 ->
    % the tag shows with the link layer (-v), as with tcpdump -e
    {S, P1} = ether(Type, Len - 4, Rest, P),
    case P#printer.verbose of
        0 -> {S, P1};
        _ -> {["vlan ", integer_to_list(Vid), ", p ", integer_to_list(Pcp), ", ",
               ethertype_desc(Type), ", ", S], P1}
    end;
ether(Type, Len, _, P) when Type < 1536 ->
    {["802.3, length ", integer_to_list(Len)], P};
ether(Type, Len, _, P) ->
    {[ethertype_desc(Type), ", length ", integer_to_list(Len)], P}.

ethertype_desc(16#0800) -> "ethertype IPv4 (0x0800)";
ethertype_desc(16#86DD) -> "ethertype IPv6 (0x86dd)";
ethertype_desc(16#0806) -> "ethertype ARP (0x0806)";
ethertype_desc(16#8100) -> "ethertype 802.1Q (0x8100)";
ethertype_desc(16#88CC) -> "ethertype LLDP (0x88cc)";
ethertype_desc(T) -> io_lib:format("ethertype Unknown (0x~4.16.0b)", [T]).

%%% IPv4

ipv4(<<4:4, IHL:4, Tos, TotLen:16, Id:16, _Rsvd:1, DF:1, MF:1, Off:13, TTL, Proto,
       _Sum:16, Src:4/binary, Dst:4/binary, Rest/binary>>, _Len, P)
  when IHL >= 5, TotLen >= IHL * 4 ->
    OptLen = IHL * 4 - 20,
    PayLen = TotLen - IHL * 4,
    Body = case Rest of
               <<_:OptLen/binary, B/binary>> -> binary:part(B, 0, min(byte_size(B), PayLen));
               _ -> <<>>
           end,
    SrcA = ip4(Src),
    DstA = ip4(Dst),
    Head = case P#printer.verbose of
               0 ->
                   "IP ";
               _ ->
                   io_lib:format("IP (tos 0x~.16b, ttl ~b, id ~b, offset ~b, flags [~s], "
                                 "proto ~s (~b), length ~b) ",
                                 [Tos, TTL, Id, Off * 8, frag_flags(DF, MF),
                                  proto_name(Proto), Proto, TotLen])
           end,
    case Off of
        0 ->
            {S, P1} = transport(Proto, SrcA, DstA, Body, PayLen, P),
            {[Head, S], P1};
        _ ->
            {SH, P1} = host(SrcA, P),
            {DH, P2} = host(DstA, P1),
            {[Head, SH, " > ", DH, ": ", proto_frag(Proto)], P2}
    end;
ipv4(<<4:4, _/bitstring>>, _Len, P) ->
    {"IP [|ip]", P};
ipv4(_, _Len, P) ->
    {"IP [|ip]", P}.

frag_flags(0, 0) -> "none";
frag_flags(1, 0) -> "DF";
frag_flags(0, 1) -> "+";
frag_flags(1, 1) -> "DF+".

proto_name(1) -> "ICMP";
proto_name(6) -> "TCP";
proto_name(17) -> "UDP";
proto_name(58) -> "ICMPv6";
proto_name(_) -> "unknown".

proto_frag(6) -> "tcp";
proto_frag(17) -> "udp";
proto_frag(1) -> "icmp";
proto_frag(P) -> ["ip-proto-", integer_to_list(P)].

%%% IPv6

ipv6(<<6:4, Class:8, Flow:20, PayLen:16, Next, HLim, Src:16/binary, Dst:16/binary,
       Rest/binary>>, _Len, P) ->
    Body = binary:part(Rest, 0, min(byte_size(Rest), PayLen)),
    Head = case P#printer.verbose of
               0 ->
                   "IP6 ";
               _ ->
                   ["IP6 (",
                    [io_lib:format("class 0x~2.16.0b, ", [Class]) || Class =/= 0],
                    [io_lib:format("flowlabel 0x~5.16.0b, ", [Flow]) || Flow =/= 0],
                    io_lib:format("hlim ~b, next-header ~s (~b) payload length: ~b) ",
                                  [HLim, proto_name(Next), Next, PayLen])]
           end,
    {Ext, Proto, Body1, PayLen1} = ipv6_ext(Next, Body, PayLen, []),
    {S, P1} = transport(Proto, ip6(Src), ip6(Dst), Body1, PayLen1, P),
    {[Head, Ext, S], P1};
ipv6(_, _Len, P) ->
    {"IP6 [|ip6]", P}.

%% Hop-by-hop, routing, fragment and destination options headers.
ipv6_ext(0, <<Next, HLen, _/binary>> = B, L, Acc) -> ipv6_skip(Next, (HLen + 1) * 8, B, L, ["HBH " | Acc]);
ipv6_ext(60, <<Next, HLen, _/binary>> = B, L, Acc) -> ipv6_skip(Next, (HLen + 1) * 8, B, L, ["DSTOPT " | Acc]);
ipv6_ext(43, <<Next, HLen, _/binary>> = B, L, Acc) -> ipv6_skip(Next, (HLen + 1) * 8, B, L, ["srcrt " | Acc]);
ipv6_ext(44, <<Next, _, Off:13, _:2, M:1, Id:32, _/binary>> = B, L, Acc) ->
    Frag = io_lib:format("frag (0x~8.16.0b:~b|~b) ", [Id, Off * 8, L - 8]),
    case Off of
        0 -> ipv6_skip(Next, 8, B, L, [Frag | Acc]);
        _ -> {lists:reverse([Frag | Acc]), {fragment, Next, M}, <<>>, L - 8}
    end;
ipv6_ext(Next, B, L, Acc) ->
    {lists:reverse(Acc), Next, B, L}.

ipv6_skip(Next, N, B, L, Acc) ->
    case B of
        <<_:N/binary, Rest/binary>> -> ipv6_ext(Next, Rest, L - N, Acc);
        _ -> {lists:reverse(Acc), truncated, <<>>, 0}
    end.

%%% Transport

transport(6, Src, Dst, Body, Len, P) -> tcp(Src, Dst, Body, Len, P);
transport(17, Src, Dst, Body, Len, P) -> udp(Src, Dst, Body, Len, P);
transport(1, Src, Dst, Body, Len, P) -> addrs(Src, Dst, P, fun(P1) -> {icmp(Body, Len, P1), P1} end);
transport(58, Src, Dst, Body, Len, P) -> addrs(Src, Dst, P, fun(P1) -> icmp6(Body, Len, P1) end);
transport({fragment, Proto, _}, Src, Dst, _Body, _Len, P) ->
    addrs(Src, Dst, P, fun(P1) -> {proto_frag(Proto), P1} end);
transport(truncated, Src, Dst, _Body, _Len, P) ->
    addrs(Src, Dst, P, fun(P1) -> {"[|ip6]", P1} end);
transport(Proto, Src, Dst, _Body, Len, P) ->
    addrs(Src, Dst, P, fun(P1) -> {["ip-proto-", integer_to_list(Proto), " ", integer_to_list(Len)], P1} end).

addrs(Src, Dst, P, Then) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    {S, P3} = Then(P2),
    {[SH, " > ", DH, ": ", S], P3}.

udp(Src, Dst, <<SP:16, DP:16, ULen:16, _Sum:16, _/binary>>, _Len, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    {SPs, P3} = port(udp, SP, P2),
    {DPs, P4} = port(udp, DP, P3),
    Text = case ULen >= 8 of
               true -> ["UDP, length ", integer_to_list(ULen - 8)];
               false -> ["UDP, bad length ", integer_to_list(ULen), " < 8"]
           end,
    {[SH, $., SPs, " > ", DH, $., DPs, ": ", Text], P4};
udp(Src, Dst, _, _Len, P) ->
    addrs(Src, Dst, P, fun(P1) -> {"[|udp]", P1} end).

tcp(Src, Dst, <<SP:16, DP:16, Seq0:32, Ack0:32, Off:4, _:4, Flags:8, Win:16, _Sum:16,
                Urp:16, Rest/binary>>, Len, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    {SPs, P3} = port(tcp, SP, P2),
    {DPs, P4} = port(tcp, DP, P3),
    Addr = [SH, $., SPs, " > ", DH, $., DPs, ": "],
    HLen = Off * 4,
    FlagStr = tcp_flags(Flags),
    if
        HLen < 20 ->
            {[Addr, "Flags [", FlagStr, "], tcp ", integer_to_list(Len - HLen),
              " [bad hdr length ", integer_to_list(HLen), " - too short, < 20]"], P4};
        HLen > Len ->
            {[Addr, "Flags [", FlagStr, "] [bad hdr length ", integer_to_list(HLen),
              " - too long, > ", integer_to_list(Len), "]"], P4};
        true ->
            {Seq, Ack, SackBase, P5} = tcp_relative(Src, Dst, SP, DP, Seq0, Ack0, Flags, P4),
            DataLen = Len - HLen,
            SeqStr = case DataLen > 0 orelse (Flags band 16#07) =/= 0 of
                         true ->
                             [", seq ", integer_to_list(Seq),
                              [[$:, integer_to_list((Seq + DataLen) band 16#FFFFFFFF)] || DataLen > 0]];
                         false ->
                             []
                     end,
            AckStr = [[", ack ", integer_to_list(Ack)] || Flags band 16#10 =/= 0],
            UrgStr = [[", urg ", integer_to_list(Urp)] || Flags band 16#20 =/= 0],
            OptLen = HLen - 20,
            OptStr = case OptLen of
                         0 -> [];
                         _ ->
                             case Rest of
                                 <<Opts:OptLen/binary, _/binary>> ->
                                     [", options [", tcp_options(Opts, SackBase, []), "]"];
                                 _ ->
                                     " [|tcp]"
                             end
                     end,
            {[Addr, "Flags [", FlagStr, "]", SeqStr, AckStr, ", win ", integer_to_list(Win),
              UrgStr, OptStr, ", length ", integer_to_list(DataLen)], P5}
    end;
tcp(Src, Dst, <<SP:16, DP:16, _/binary>>, _Len, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    {SPs, P3} = port(tcp, SP, P2),
    {DPs, P4} = port(tcp, DP, P3),
    {[SH, $., SPs, " > ", DH, $., DPs, ": [|tcp]"], P4};
tcp(Src, Dst, _, _Len, P) ->
    addrs(Src, Dst, P, fun(P1) -> {"[|tcp]", P1} end).

tcp_flags(0) ->
    "none";
tcp_flags(F) ->
    [C || {Bit, C} <- [{16#01, $F}, {16#02, $S}, {16#04, $R}, {16#08, $P},
                       {16#10, $.}, {16#20, $U}, {16#40, $E}, {16#80, $W}],
          F band Bit =/= 0].

%% Relative sequence numbers as tcpdump prints them: for segments with
%% ACK set, a conversation's base is recorded at its first such segment
%% (and at every SYN) and later numbers print relative to it.
tcp_relative(_Src, _Dst, _SP, _DP, Seq, Ack, _Flags, #printer{absolute = true} = P) ->
    {Seq, Ack, 0, P};
tcp_relative(_Src, _Dst, _SP, _DP, Seq, Ack, Flags, P) when Flags band 16#10 =:= 0 ->
    {Seq, Ack, 0, P};
tcp_relative(Src, Dst, SP, DP, Seq, Ack, Flags, #printer{tcp = T} = P) ->
    SrcB = addr_bin(Src),
    DstB = addr_bin(Dst),
    Rev = SP > DP orelse (SP =:= DP andalso SrcB > DstB),
    Key = case Rev of
              true -> {DstB, SrcB, DP, SP};
              false -> {SrcB, DstB, SP, DP}
          end,
    M32 = 16#FFFFFFFF,
    case maps:find(Key, T) of
        {ok, {ThSeq, ThAck}} when Flags band 16#02 =:= 0 ->
            {RSeq, RAck, Base} =
                case Rev of
                    true -> {(Seq - ThAck) band M32, (Ack - ThSeq) band M32, ThSeq};
                    false -> {(Seq - ThSeq) band M32, (Ack - ThAck) band M32, ThAck}
                end,
            {RSeq, RAck, Base, P};
        _ ->
            Entry = case Rev of
                        true -> {(Ack - 1) band M32, Seq};
                        false -> {Seq, (Ack - 1) band M32}
                    end,
            {ThSeq, ThAck} = Entry,
            Base = case Rev of
                       true -> ThSeq;
                       false -> ThAck
                   end,
            {Seq, Ack, Base, P#printer{tcp = T#{Key => Entry}}}
    end.

addr_bin({A, B, C, D}) -> <<A, B, C, D>>;
addr_bin(T) when tuple_size(T) =:= 8 -> << <<X:16>> || X <- tuple_to_list(T) >>.

tcp_options(<<>>, _Base, Acc) ->
    lists:join(",", lists:reverse(Acc));
tcp_options(<<0, _/binary>>, _Base, Acc) ->
    lists:join(",", lists:reverse(["eol" | Acc]));
tcp_options(<<1, Rest/binary>>, Base, Acc) ->
    tcp_options(Rest, Base, ["nop" | Acc]);
tcp_options(<<Kind, Len, Rest/binary>>, Base, Acc) when Len >= 2, byte_size(Rest) >= Len - 2 ->
    DLen = Len - 2,
    <<Data:DLen/binary, More/binary>> = Rest,
    tcp_options(More, Base, [tcp_option(Kind, Data, Base) | Acc]);
tcp_options(_, _Base, Acc) ->
    [lists:join(",", lists:reverse(Acc)), [[","] || Acc =/= []], "[bad opt]"].

tcp_option(2, <<Mss:16>>, _) -> ["mss ", integer_to_list(Mss)];
tcp_option(3, <<Ws>>, _) -> ["wscale ", integer_to_list(Ws)];
tcp_option(4, <<>>, _) -> "sackOK";
tcp_option(5, Blocks, Base) when byte_size(Blocks) rem 8 =:= 0 ->
    ["sack ", integer_to_list(byte_size(Blocks) div 8), " ",
     [io_lib:format("{~b:~b}", [(S - Base) band 16#FFFFFFFF, (E - Base) band 16#FFFFFFFF])
      || <<S:32, E:32>> <= Blocks]];
tcp_option(5, _, _) -> "sack invalid sack";
tcp_option(8, <<Val:32, Ecr:32>>, _) -> ["TS val ", integer_to_list(Val), " ecr ", integer_to_list(Ecr)];
tcp_option(Kind, Data, _) ->
    Name = case lists:keyfind(Kind, 1, [{19, "md5"}, {20, "scps"}, {28, "uto"}, {29, "tcp-ao"},
                                         {30, "mptcp"}, {34, "tfo"}, {254, "exp"}]) of
               {_, N} -> N;
               false -> ["unknown-", integer_to_list(Kind)]
           end,
    [Name, [[" 0x", [io_lib:format("~2.16.0b", [B]) || <<B>> <= Data]] || Data =/= <<>>]].

icmp(<<Type, Code, _Sum:16, Rest/binary>>, Len, P) ->
    ["ICMP ", icmp_text(Type, Code, Rest, P), ", length ", integer_to_list(Len)];
icmp(_, _Len, _P) ->
    "[|icmp]".

icmp_text(0, _, <<Id:16, Seq:16, _/binary>>, _) ->
    io_lib:format("echo reply, id ~b, seq ~b", [Id, Seq]);
icmp_text(8, _, <<Id:16, Seq:16, _/binary>>, _) ->
    io_lib:format("echo request, id ~b, seq ~b", [Id, Seq]);
icmp_text(3, Code, <<_:32, Inner/binary>>, P) ->
    case {Code, Inner} of
        {3, <<4:4, IHL:4, _:8/binary, Proto, _:16, _:4/binary, Dst:4/binary, Rest/binary>>}
          when Proto =:= 17 orelse Proto =:= 6 ->
            OL = IHL * 4 - 20,
            case Rest of
                <<_:OL/binary, _SP:16, DP:16, _/binary>> ->
                    PT = case Proto of 17 -> udp; 6 -> tcp end,
                    {DH, P1} = host(ip4(Dst), P),
                    {DPs, _} = port(PT, DP, P1),
                    [DH, " ", atom_to_list(PT), " port ", DPs, " unreachable"];
                _ ->
                    "udp port unreachable"
            end;
        {_, <<4:4, _:4, _:8/binary, Proto, _:16, _:4/binary, Dst:4/binary, _/binary>>} ->
            {DH, _} = host(ip4(Dst), P),
            case Code of
                0 -> ["net ", DH, " unreachable"];
                1 -> ["host ", DH, " unreachable"];
                2 -> [DH, " protocol ", integer_to_list(Proto), " unreachable"];
                _ -> [DH, " unreachable - code ", integer_to_list(Code)]
            end;
        _ ->
            "unreachable"
    end;
icmp_text(11, 0, _, _) -> "time exceeded in-transit";
icmp_text(11, 1, _, _) -> "ip reassembly time exceeded";
icmp_text(5, _, _, _) -> "redirect";
icmp_text(13, _, _, _) -> "time stamp query";
icmp_text(14, _, _, _) -> "time stamp reply";
icmp_text(Type, _, _, _) -> ["type-#", integer_to_list(Type)].

icmp6(<<Type, Code, _Sum:16, Rest/binary>>, Len, P) ->
    {Text, P1} = icmp6_text(Type, Code, Rest, P),
    {["ICMP6, ", Text, ", length ", integer_to_list(Len)], P1};
icmp6(_, _Len, P) ->
    {"[|icmp6]", P}.

icmp6_text(128, _, <<Id:16, Seq:16, _/binary>>, P) ->
    {io_lib:format("echo request, id ~b, seq ~b", [Id, Seq]), P};
icmp6_text(129, _, <<Id:16, Seq:16, _/binary>>, P) ->
    {io_lib:format("echo reply, id ~b, seq ~b", [Id, Seq]), P};
icmp6_text(135, _, <<_:32, Tgt:16/binary, _/binary>>, P) ->
    {H, P1} = host(ip6(Tgt), P),
    {["neighbor solicitation, who has ", H], P1};
icmp6_text(136, _, <<_:32, Tgt:16/binary, _/binary>>, P) ->
    {H, P1} = host(ip6(Tgt), P),
    {["neighbor advertisement, tgt is ", H], P1};
icmp6_text(2, _, <<Mtu:32, _/binary>>, P) ->
    {["packet too big, mtu ", integer_to_list(Mtu)], P};
icmp6_text(143, _, <<_:16, N:16, _/binary>>, P) ->
    {["multicast listener report v2, ", integer_to_list(N), " group record(s)"], P};
icmp6_text(1, 4, <<_:32, 6:4, _:28, _:16, NH, _, _:16/binary, Dst:16/binary, SP:16, DP:16,
                   _/binary>>, P) when NH =:= 17; NH =:= 6 ->
    _ = SP,
    PT = case NH of 17 -> udp; 6 -> tcp end,
    {H, P1} = host(ip6(Dst), P),
    {DPs, P2} = port(PT, DP, P1),
    {["destination unreachable, unreachable port, ", H, " ", atom_to_list(PT), " port ", DPs], P2};
icmp6_text(Type, _, _, P) ->
    Names = [{1, "destination unreachable"}, {3, "time exceeded in-transit"},
             {4, "parameter problem"}, {130, "multicast listener query"},
             {131, "multicast listener report"}, {132, "multicast listener done"},
             {133, "router solicitation"}, {134, "router advertisement"},
             {137, "redirect"}],
    case lists:keyfind(Type, 1, Names) of
        {_, N} -> {N, P};
        false -> {["unknown icmp6 type (", integer_to_list(Type), ")"], P}
    end.

%%% ARP

arp(<<1:16, 16#0800:16, 6, 4, Op:16, Sha:6/binary, Spa:4/binary, Tha:6/binary,
      Tpa:4/binary, _/binary>>, Len, P) ->
    {SH, P1} = host(ip4(Spa), P),
    {TH, P2} = host(ip4(Tpa), P1),
    Text = case Op of
               1 ->
                   ["Request who-has ", TH,
                    [[" (", mac(Tha), ")"] || Tha =/= <<0:48>>],
                    " tell ", SH];
               2 ->
                   ["Reply ", SH, " is-at ", mac(Sha)];
               3 ->
                   ["Reverse Request who-is ", mac(Tha), " tell ", mac(Sha)];
               4 ->
                   ["Reverse Reply ", mac(Tha), " at ", TH];
               _ ->
                   ["op ", integer_to_list(Op)]
           end,
    {["ARP, ", Text, ", length ", integer_to_list(Len)], P2};
arp(<<HT:16, PT:16, _/binary>>, Len, P) ->
    {io_lib:format("ARP, hardware type ~b, protocol type 0x~4.16.0b, length ~b", [HT, PT, Len]), P};
arp(_, _Len, P) ->
    {"ARP, [|arp]", P}.

%%% Addresses, names

ip4(<<A, B, C, D>>) -> {A, B, C, D}.

ip6(Bin) -> list_to_tuple([X || <<X:16>> <= Bin]).

mac(Bin) ->
    lists:join($:, [io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin]).

host(IP, #printer{names = N} = P) ->
    {Name, N1} = ewpcap_dump_names:host(IP, N),
    {Name, P#printer{names = N1}}.

port(Proto, Port, #printer{names = N} = P) ->
    {Name, N1} = ewpcap_dump_names:port(Proto, Port, N),
    {Name, P#printer{names = N1}}.

%% @doc tcpdump's name of a link type, and its description.
-spec linktype_name(integer()) -> nonempty_string().
linktype_name(0) -> "NULL";
linktype_name(1) -> "EN10MB";
linktype_name(12) -> "RAW";
linktype_name(14) -> "RAW";
linktype_name(101) -> "RAW";
linktype_name(113) -> "LINUX_SLL";
linktype_name(228) -> "IPV4";
linktype_name(229) -> "IPV6";
linktype_name(276) -> "LINUX_SLL2";
linktype_name(N) -> "DLT_" ++ integer_to_list(N).

%% @doc tcpdump's description of a link type, `"EN10MB (Ethernet)"'.
-spec linktype_desc(integer() | undefined) -> string().
linktype_desc(undefined) ->
    "unknown";
linktype_desc(N) ->
    Desc = case N of
               0 -> "BSD loopback";
               1 -> "Ethernet";
               12 -> "Raw IP";
               14 -> "Raw IP";
               101 -> "Raw IP";
               113 -> "Linux cooked v1";
               228 -> "Raw IPv4";
               229 -> "Raw IPv6";
               276 -> "Linux cooked v2";
               _ -> "unknown"
           end,
    lists:flatten([linktype_name(N), " (", Desc, ")"]).


%%% -D

%% @doc The `-D' listing: each interface numbered, with its flags and
%% description, then one line per address.
-spec format_ifaddrs([{string(), [term()]}]) -> iolist().
format_ifaddrs(Ifs) ->
    {Lines, _} = lists:mapfoldl(
                   fun({Name, Attrs}, N) ->
                           {[integer_to_list(N), $., Name, if_flags(Name, Attrs), $\n,
                             [["\t", A, $\n] || A <- if_addrs(Attrs)]], N + 1}
                   end, 1, Ifs),
    Lines.

if_flags(Name, Attrs) ->
    Desc = case proplists:get_value(description, Attrs) of
               undefined -> [];
               D -> [" (", D, ")"]
           end,
    Loop = case proplists:get_value(flag, Attrs, []) of
               Flags when is_list(Flags) ->
                   [" [Loopback]" || lists:member(loopback, Flags)];
               _ ->
                   []
           end,
    _ = Name,
    [Desc, Loop].

%% Each {addr, A} starts an address; netmask, broadaddr and dstaddr
%% belong to the address before them.
if_addrs(Attrs) ->
    Groups = lists:foldl(
               fun({addr, A}, Acc) -> [[{addr, A}] | Acc];
                  ({K, V}, [G | Acc]) when K =:= netmask; K =:= broadaddr; K =:= dstaddr ->
                       [[{K, V} | G] | Acc];
                  (_, Acc) -> Acc
               end, [], Attrs),
    [if_addr(lists:reverse(G)) || G <- lists:reverse(Groups)].

if_addr([{addr, A} | More]) ->
    Family = case tuple_size(A) of
                 4 -> "inet ";
                 _ -> "inet6 "
             end,
    [Family, inet:ntoa(A),
     [[" ", key_word(K), " ", inet:ntoa(V)] || {K, V} <- More]].

key_word(netmask) -> "netmask";
key_word(broadaddr) -> "broadcast";
key_word(dstaddr) -> "destination".
