%%% @doc Packet lines as tcpdump prints them, for ewpcap_dump.
%%%
%%% One line per packet: the local time, then the summary of the link,
%%% network and transport layers. Decoded: Ethernet and Linux cooked
%%% captures (link types 1, 113, 276), BSD loopback and raw IP, 802.1Q,
%%% ARP, IPv4, IPv6 (with its extension headers), TCP (relative sequence
%%% numbers as tcpdump's, options), UDP, ICMP and ICMPv6; the text is
%%% tcpdump's, byte for byte, for these. Names of hosts and ports come
%%% from ewpcap_dump_names.
%%% @end
-module(ewpcap_dump_fmt).

-export([new_printer/2, new_printer/4, new_printer/3, format_packet/4, resolved/3, ether/3,
         hex_dump/2]).

-export_type([printer/0]).

-include("ewpcap_dump_fmt.hrl").

%% Text output state: the flags, the name caches and the TCP sequence
%% bases (as tcpdump, sequence numbers print relative to the first ACK
%% of a conversation); see ewpcap_dump_fmt.hrl.
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
    new_printer(Numeric, Mode, #{verbose => Verbose, absolute => Absolute}).

%% @doc A printer with tcpdump's flags: `verbose' (-v, default 0),
%% `absolute' (-S, false), `eflag' (-e, false), `hex' (none; x, xx, 'X',
%% 'XX' for -x, -xx, -X, -XX), `precision' (micro; nano: the packets'
%% times are nanoseconds, printed with 9 digits as tcpdump's `--nano').
-spec new_printer(boolean(), sync | async,
                  #{verbose => non_neg_integer(), absolute => boolean(), eflag => boolean(),
                    hex => none | x | xx | 'X' | 'XX', precision => micro | nano}) -> printer().
new_printer(Numeric, Mode, Flags) ->
    #printer{verbose = maps:get(verbose, Flags, 0), absolute = maps:get(absolute, Flags, false),
             eflag = maps:get(eflag, Flags, false), hex = maps:get(hex, Flags, none),
             precision = maps:get(precision, Flags, micro),
             numeric = Numeric, names = ewpcap_dump_names:new(Numeric, Mode)}.

%% @doc Takes the answer of a background name lookup,
%% `{ewpcap_dump_names, IP, Name}'.
-spec resolved(inet:ip_address(), string(), printer()) -> printer().
resolved(IP, Name, #printer{names = N} = P) ->
    P#printer{names = ewpcap_dump_names:resolved(IP, Name, N)}.

%% @doc Formats one packet as tcpdump does: the time (local), then the
%% summary, then (-x, -X) the bytes. `Dlt' is the link type (1 Ethernet,
%% 113 and 276 Linux cooked, 0 BSD loopback, 12/14/101 raw IP, 228 IPv4,
%% 229 IPv6; others are printed as tcpdump prints a link type it does
%% not know); `Time' micro- (or, for a printer made with `precision'
%% `nano', nano-) seconds since the epoch; `Len' the length on
%% the wire. The last argument `line' is reserved for other formats.
%% Returns the text (without the last newline; several lines for hex
%% dumps) and the printer to use for the next packet.
-spec format_packet(non_neg_integer(), {non_neg_integer(), non_neg_integer(), binary()},
                    printer(), line) -> {iolist(), printer()}.
format_packet(_Dlt, {_Time, Len, Packet}, P, line)
  when Packet =:= <<>>; Len =:= 0; Len < byte_size(Packet) ->
    Cap = byte_size(Packet),
    Items = [["caplen==0" || Cap =:= 0],
             [["len==0"] || Len =:= 0],
             [["len(", integer_to_list(Len), ") < caplen(", integer_to_list(Cap), ")"]
              || Len =/= 0, Len < Cap]],
    {["[Invalid header: ", lists:join(", ", [I || I <- Items, I =/= []]), "]"], P};
format_packet(Dlt, {Time, Len, Packet}, P, line) ->
    {HdrLen, P1} =
        try link(Dlt, Len, Packet, P#printer{out = [], ll = 0, ip_proto = 0}) of
            {H, P0} -> {H, P0}
        catch
            throw:{ewp_trunc, Proto, PT} -> {0, pr(PT, [" [|", Proto, "]"])}
        end,
    Hex = case P1#printer.hex of
              none -> [];
              H1 when H1 =:= x; H1 =:= 'X' ->
                  hex_dump(H1, binary:part(Packet, min(HdrLen, byte_size(Packet)),
                                           byte_size(Packet) - min(HdrLen, byte_size(Packet))));
              xx -> hex_dump(x, Packet);
              'XX' -> hex_dump('X', Packet)
          end,
    {[format_time(Time, P1#printer.precision), P1#printer.out, Hex], P1#printer{out = []}}.

%% The local time and a space, the fraction in 6 or 9 digits; the
%% conversion is done once a second (the cache is the process's: a
%% printer is used by one process).
format_time(Micro, micro) ->
    second_time(Micro div 1000000, Micro rem 1000000 + 1000000);
format_time(Nano, nano) ->
    second_time(Nano div 1000000000, Nano rem 1000000000 + 1000000000).

second_time(Sec, Fraction) ->
    <<_, Us/binary>> = integer_to_binary(Fraction),
    case get(ewpcap_dump_fmt_second) of
        {Sec, Text} ->
            [Text, Us, $\s];
        _ ->
            {_, {H, M, S}} = calendar:system_time_to_local_time(Sec, second),
            Text = iolist_to_binary([two(H), $:, two(M), $:, two(S), $.]),
            put(ewpcap_dump_fmt_second, {Sec, Text}),
            [Text, Us, $\s]
    end.

two(N) when N < 10 -> [$0, $0 + N];
two(N) -> integer_to_list(N).

pr(P, Text) ->
    ewpcap_dump_fmt_ip:pr(P, Text).

%% @doc An Ethernet frame inside another protocol (IPv6 next header 143).
-spec ether(binary(), integer(), #printer{}) -> #printer{}.
ether(Bin, Len, #printer{ll = LL} = P) ->
    {_, P1} = link(1, Len, Bin, P),
    P1#printer{ll = LL}.


%%% ===================================================================
%%% Link layers: each returns the length of its header (what -x skips)
%%% ===================================================================

%% Ethernet
link(1, Len, Pkt, P) ->
    Cap = byte_size(Pkt),
    if
        Len < Cap ->
            {Len, pr(P, ["[length ", integer_to_list(Len), " < caplen ", integer_to_list(Cap),
                         "] (invalid)"])};
        Cap < 14 ->
            {Cap, pr(P, " [|ether]")};
        true ->
            <<Dst:6/binary, Src:6/binary, _/binary>> = Pkt,
            P1 = case P#printer.eflag of
                     true -> pr(P, [mac(Src), " > ", mac(Dst), ", "]);
                     false -> P
                 end,
            <<_:12/binary, Rest/binary>> = Pkt,
            ether_type(Rest, Len - 12, Len, 12, {Src, Dst}, false, P1)
    end;
%% Linux cooked v1
link(113, Len, Pkt, P) ->
    case Pkt of
        <<PktType:16, _HaType:16, HaLen:16, Addr:8/binary, Proto:16, Rest/binary>> when Len >= 16 ->
            Head = sll_head(PktType, HaLen, Addr, Proto, Len - 16),
            P1 = case P#printer.eflag of
                     true -> pr(P, Head);
                     false -> P
                 end,
            {16, sll_proto(Proto, Rest, Len - 16, Head, P1#printer{ll = 16})};
        _ ->
            {byte_size(Pkt), pr(P, " [|sll]")}
    end;
%% Linux cooked v2
link(276, Len, Pkt, P) ->
    case Pkt of
        <<Proto:16, _:16, _IfIndex:32, _HaType:16, PktType:8, HaLen:8, Addr:8/binary,
          Rest/binary>> when Len >= 20 ->
            Head = sll_head(PktType, HaLen, Addr, Proto, Len - 20),
            P1 = case P#printer.eflag of
                     true -> pr(P, Head);
                     false -> P
                 end,
            {20, sll_proto(Proto, Rest, Len - 20, Head, P1#printer{ll = 20})};
        _ ->
            {byte_size(Pkt), pr(P, " [|sll2]")}
    end;
%% BSD loopback
link(0, Len, Pkt, P) ->
    case Pkt of
        <<Family:4/binary, Rest/binary>> ->
            AF = case Family of
                     <<0, 0, _, _>> -> binary:decode_unsigned(Family, big);
                     _ -> binary:decode_unsigned(Family, little)
                 end,
            Head = ["AF ", af_name(AF), " (", integer_to_list(AF), "), length ",
                    integer_to_list(Len), ": "],
            P1 = case P#printer.eflag of
                     true -> pr(P, Head);
                     false -> P
                 end,
            P2 = case AF of
                     2 -> ewpcap_dump_fmt_ip:ipv4(Rest, Len - 4, P1#printer{ll = 4});
                     _ when AF =:= 10; AF =:= 24; AF =:= 28; AF =:= 30 ->
                         ewpcap_dump_fmt_ip:ipv6(Rest, Len - 4, P1#printer{ll = 4});
                     _ ->
                         default_print(Rest, case P1#printer.eflag of
                                                 true -> P1;
                                                 false -> pr(P1, Head)
                                             end)
                 end,
            {4, P2};
        _ ->
            {byte_size(Pkt), pr(P, " [|null]")}
    end;
%% Raw IP
link(Raw, Len, Pkt, P) when Raw =:= 12; Raw =:= 14; Raw =:= 101 ->
    P1 = case P#printer.eflag of
             true -> pr(P, "ip: ");
             false -> P
         end,
    {0, case Pkt of
            _ when Len < 1 -> pr(P1, ["truncated-ip ", integer_to_list(Len)]);
            <<4:4, _/bitstring>> -> ewpcap_dump_fmt_ip:ipv4(Pkt, Len, P1);
            <<6:4, _/bitstring>> -> ewpcap_dump_fmt_ip:ipv6(Pkt, Len, P1);
            <<V:4, _/bitstring>> -> pr(P1, ["unknown ip ", integer_to_list(V)]);
            <<>> -> ?TRUNC("ip", P1)
        end};
link(228, Len, Pkt, P) ->
    {0, ewpcap_dump_fmt_ip:ipv4(Pkt, Len, P)};
link(229, Len, Pkt, P) ->
    {0, ewpcap_dump_fmt_ip:ipv6(Pkt, Len, P)};
%% What tcpdump does not decode either
link(Dlt, _Len, _Pkt, P) ->
    Name = case ewpcap_dump_dlt:name(ewpcap_dump_dlt:file_dlt(Dlt)) of
               {N, _} -> N;
               undefined -> "DLT_" ++ integer_to_list(Dlt)
           end,
    {0, pr(P, ["[|", string:lowercase(Name), "]"])}.

%% The Ethernet type (or 802.3 length) at the start of Bin, after the
%% addresses; Hdr bytes of header so far.
ether_type(Bin, Len, Orig, Hdr, Macs, Printed, P) ->
    case Bin of
        <<Type:16, Rest/binary>> ->
            Len1 = Len - 2,
            if
                Type =:= 16#8100; Type =:= 16#88A8; Type =:= 16#9100; Type =:= 16#9200 ->
                    case Rest of
                        <<Tci:16, _/binary>> when Len1 >= 4 ->
                            P1 = case P#printer.eflag of
                                     true ->
                                         pr(P, [ethertype_desc(Type),
                                                case Printed of
                                                    false -> [", length ", integer_to_list(Orig), ": "];
                                                    true -> ", "
                                                end,
                                                "vlan ", integer_to_list(Tci band 16#FFF),
                                                ", p ", integer_to_list(Tci bsr 13),
                                                [", DEI" || Tci band 16#1000 =/= 0], ", "]);
                                     false -> P
                                 end,
                            <<_:16, More/binary>> = Rest,
                            ether_type(More, Len1 - 2, Orig, Hdr + 4, Macs, true, P1);
                        _ ->
                            {Hdr + 2 + min(byte_size(Rest), Len1), pr(P, " [|vlan]")}
                    end;
                Type =< 1500 ->
                    P1 = case P#printer.eflag of
                             true -> pr(P, ["802.3", [[", length ", integer_to_list(min(Len1, Type)), ": "]
                                                      || not Printed]]);
                             false -> P
                         end,
                    % a length field below the frame's length cuts it
                    LlcL = min(Len1, Type),
                    {LlcLen, P2} = llc(ewpcap_dump_fmt_ip:cut(Rest, LlcL), LlcL, Macs, P1),
                    {Hdr + 2 + LlcLen, P2};
                true ->
                    P1 = case P#printer.eflag of
                             true -> pr(P, [ethertype_desc(Type),
                                            case Printed of
                                                false -> [", length ", integer_to_list(Orig), ": "];
                                                true -> ", "
                                            end]);
                             false -> P
                         end,
                    {Hdr + 2, ethertype(Type, Rest, Len1, Orig, Macs, P1#printer{ll = Hdr + 2})}
            end;
        _ ->
            ?TRUNC("ether", P)
    end.

ethertype(16#0800, Rest, Len, _Orig, _Macs, P) ->
    ewpcap_dump_fmt_ip:ipv4(Rest, Len, P);
ethertype(16#86DD, Rest, Len, _Orig, _Macs, P) ->
    ewpcap_dump_fmt_ip:ipv6(Rest, Len, P);
ethertype(T, Rest, Len, _Orig, _Macs, P) when T =:= 16#0806; T =:= 16#8035 ->
    arp(Rest, Len, P);
ethertype(Type, Rest, _Len, Orig, {Src, Dst}, P) ->
    P1 = case P#printer.eflag of
             true -> P;
             false -> pr(P, [mac(Src), " > ", mac(Dst), ", ", ethertype_desc(Type),
                             ", length ", integer_to_list(Orig), ": "])
         end,
    default_print(Rest, P1).

%% 802.2 LLC after an 802.3 length field (`Len'; `Bin' cut to it), as
%% tcpdump prints it: the SAPs and the I, S or U control field; the
%% payloads tcpdump decodes further (SNAP, STP, IP, IPX, NetBEUI, OSI,
%% XID) are not, and print as LLC and the bytes. Returns the header
%% length -x skips, and the printer.
llc(Bin, Len, _Macs, P) when byte_size(Bin) < 3; Len < 3 ->
    {min(byte_size(Bin), Len), default_print(Bin, pr(P, " [|llc]"))};
llc(<<_, _, C, _/binary>> = Bin, Len, _Macs, P) when C band 3 =/= 3, byte_size(Bin) < 4 orelse Len < 4 ->
    {min(byte_size(Bin), Len), default_print(Bin, pr(P, " [|llc]"))};
llc(<<DsapF, SsapF, C1, Rest/binary>> = Bin, Len, {Src, Dst}, P) ->
    {IsU, HLen, Ctl} = case C1 band 3 of
                           3 -> {true, 3, C1};
                           _ -> <<C2, _/binary>> = Rest, {false, 4, C1 bor (C2 bsl 8)}
                       end,
    Dsap = DsapF band 16#FE,
    Ssap = SsapF band 16#FE,
    Special = (DsapF =:= 16#FF andalso SsapF =:= 16#FF)
        orelse (Dsap =:= Ssap andalso Ctl =:= 3
                andalso lists:member(Dsap, [16#AA, 16#42, 16#06, 16#E0, 16#FE]))
        orelse (Dsap =:= 16#F0 andalso Ssap =:= 16#F0 andalso (Ctl band 1 =:= 0 orelse Ctl =:= 3))
        orelse (IsU andalso Ctl band 16#EF =:= 16#AF),
    case Special of
        true ->
            {0, default_print(Bin, pr(P, "LLC "))};
        false ->
            P1 = case P#printer.eflag of
                     true ->
                         pr(P, ["LLC, dsap ", sap_name(Dsap, "Unknown"), " (0x", hex2(Dsap), ") ",
                                case DsapF band 1 of 0 -> "Individual"; 1 -> "Group" end,
                                ", ssap ", sap_name(Ssap, "Unknown"), " (0x", hex2(Ssap), ") ",
                                case SsapF band 1 of 0 -> "Command"; 1 -> "Response" end,
                                ", ctrl 0x", case IsU of
                                                 true -> hex2(Ctl);
                                                 false -> hex4(Ctl)
                                             end, ": "]);
                     false ->
                         DName = sap_name(Dsap, ["Unknown DSAP 0x", hex2(Dsap)]),
                         pr(P, case Dsap =:= Ssap of
                                   true -> [mac(Src), " > ", mac(Dst), " ", DName, " "];
                                   false -> [mac(Src), " ", sap_name(Ssap, ["Unknown SSAP 0x", hex2(Ssap)]),
                                             " > ", mac(Dst), " ", DName, " "]
                               end)
                 end,
            Flags = fun(Poll) ->
                            case (SsapF band 1) bor (Ctl band Poll) of
                                0 -> "Command";
                                1 -> "Response";
                                Poll -> "Poll";
                                _ -> "Final"
                            end
                    end,
            Length = integer_to_list(Len),
            if
                IsU ->
                    Cmd = case Ctl band 16#EF of
                              16#03 -> "ui"; 16#E3 -> "test"; 16#63 -> "ua"; 16#43 -> "disc";
                              16#0F -> "dm"; 16#6F -> "sabme"; 16#87 -> "frmr";
                              Other -> hex2(Other)
                          end,
                    {HLen, default_print(Bin, pr(P1, ["Unnumbered, ", Cmd, ", Flags [", Flags(16#10),
                                                      "], length ", Length]))};
                Ctl band 1 =:= 1 ->
                    S = case (Ctl bsr 2) band 3 of
                            0 -> "Receiver Ready"; 1 -> "Receiver not Ready"; 2 -> "Reject"; 3 -> "?"
                        end,
                    {HLen, pr(P1, ["Supervisory, ", S, ", rcv seq ", integer_to_list((Ctl bsr 9) band 16#7F),
                                   ", Flags [", Flags(16#100), "], length ", Length])};
                true ->
                    {HLen, default_print(Bin, pr(P1, ["Information, send seq ",
                                                      integer_to_list((Ctl bsr 1) band 16#7F),
                                                      ", rcv seq ", integer_to_list((Ctl bsr 9) band 16#7F),
                                                      ", Flags [", Flags(16#100), "], length ", Length]))}
            end
    end.

sap_name(16#00, _) -> "Null";
sap_name(16#02, _) -> "802.1B I";
sap_name(16#04, _) -> "SNA";
sap_name(16#06, _) -> "IP";
sap_name(16#0E, _) -> "ProWay NM";
sap_name(16#42, _) -> "STP";
sap_name(16#4E, _) -> "RS511";
sap_name(16#7E, _) -> "ISO8208";
sap_name(16#8E, _) -> "ProWay";
sap_name(16#AA, _) -> "SNAP";
sap_name(16#E0, _) -> "IPX";
sap_name(16#F0, _) -> "NetBeui";
sap_name(16#FE, _) -> "OSI";
sap_name(_, Unknown) -> Unknown.

sll_head(PktType, HaLen, Addr, Proto, Len) ->
    Dir = case PktType of
              0 -> " In";
              1 -> "  B";
              2 -> "  M";
              3 -> "  P";
              4 -> "Out";
              _ -> "  ?"
          end,
    [Dir, " ", [[mac(binary:part(Addr, 0, 6)), " "] || HaLen =:= 6],
     case Proto of
         1 -> "802.3";
         4 -> "802.2";
         _ when Proto =< 1500 -> ["ethertype Unknown (0x", hex4(Proto), ")"];
         _ -> ethertype_desc(Proto)
     end, ", length ", integer_to_list(Len), ": "].

sll_proto(16#0800, Rest, Len, _Head, P) -> ewpcap_dump_fmt_ip:ipv4(Rest, Len, P);
sll_proto(16#86DD, Rest, Len, _Head, P) -> ewpcap_dump_fmt_ip:ipv6(Rest, Len, P);
sll_proto(T, Rest, Len, _Head, P) when T =:= 16#0806; T =:= 16#8035 -> arp(Rest, Len, P);
sll_proto(_, Rest, _Len, Head, P) ->
    default_print(Rest, case P#printer.eflag of
                            true -> P;
                            false -> pr(P, Head)
                        end).

%% What tcpdump prints for data it does not decode: the bytes, unless
%% -x or -X print them all anyway.
default_print(Bin, #printer{hex = none} = P) ->
    pr(P, hex_dump('X', Bin));
default_print(_Bin, P) ->
    P.

af_name(2) -> "IPv4";
af_name(AF) when AF =:= 10; AF =:= 24; AF =:= 28; AF =:= 30 -> "IPv6";
af_name(_) -> "Unknown".

ethertype_desc(T) ->
    ["ethertype ", ethertype_name(T), " (0x", hex4(T), ")"].

ethertype_name(16#0800) -> "IPv4";
ethertype_name(16#86DD) -> "IPv6";
ethertype_name(16#0806) -> "ARP";
ethertype_name(16#8035) -> "Reverse ARP";
ethertype_name(16#8100) -> "802.1Q";
ethertype_name(16#88A8) -> "802.1Q-QinQ";
ethertype_name(16#9100) -> "802.1Q-9100";
ethertype_name(16#9200) -> "802.1Q-9200";
ethertype_name(16#88CC) -> "LLDP";
ethertype_name(16#8863) -> "PPPoE D";
ethertype_name(16#8864) -> "PPPoE S";
ethertype_name(16#8847) -> "MPLS unicast";
ethertype_name(16#8848) -> "MPLS multicast";
ethertype_name(16#888E) -> "EAPOL";
ethertype_name(16#88E5) -> "MACsec";
ethertype_name(16#9000) -> "Loopback";
ethertype_name(_) -> "Unknown".

%%% ARP

arp(Bin, Len, P) ->
    case Bin of
        <<Hrd:16, Pro:16, HLn, PLn, Op:16, Rest/binary>>
          when byte_size(Rest) >= 2 * HLn + 2 * PLn ->
            <<Sha:HLn/binary, Spa:PLn/binary, Tha:HLn/binary, Tpa:PLn/binary, _/binary>> = Rest,
            P1 = case P#printer.eflag of
                     true -> P;
                     false -> pr(P, "ARP, ")
                 end,
            Odd = (Pro =/= 16#0800 andalso Pro =/= 16#1000) orelse PLn =/= 4 orelse HLn =:= 0,
            P2 = case Odd orelse P1#printer.verbose > 0 of
                     true ->
                         pr(P1, [arp_hrd(Hrd), " (len ", integer_to_list(HLn), "), ",
                                 arp_pro(Pro), " (len ", integer_to_list(PLn), ")"]);
                     false -> P1
                 end,
            case Odd andalso P2#printer.verbose =:= 0 of
                true ->
                    pr(P2, [", length ", integer_to_list(Len)]);
                false ->
                    arp_op(Op, {Pro, Sha, Spa, Tha, Tpa}, Bin, Len, P2)
            end;
        _ ->
            ?TRUNC("arp", P)
    end.

arp_op(Op, {Pro, Sha, Spa, Tha, Tpa}, Bin, Len, P) ->
    Sep = case P#printer.verbose of
              0 -> "";
              _ -> ", "
          end,
    OpName = case lists:keyfind(Op, 1, [{1, "Request"}, {2, "Reply"}, {3, "Reverse Request"},
                                        {4, "Reverse Reply"}, {8, "Inverse Request"},
                                        {9, "Inverse Reply"}, {10, "NACK Reply"}]) of
                 {_, N} -> N;
                 false -> ["Unknown (", integer_to_list(Op), ")"]
             end,
    P1 = pr(P, [Sep, OpName, " "]),
    {TP, P2} = arp_ip(Pro, Tpa, P1),
    {SP, P3} = arp_ip(Pro, Spa, P2),
    Text = case Op of
               1 -> ["who-has ", TP, [[" (", mac(Tha), ")"] || Tha =/= <<0:(bit_size(Tha))>>],
                     " tell ", SP];
               2 -> [SP, " is-at ", mac(Sha)];
               3 -> ["who-is ", mac(Tha), " tell ", mac(Sha)];
               4 -> [mac(Tha), " at ", TP];
               8 -> ["who-is ", mac(Tha), " tell ", mac(Sha)];
               9 -> [mac(Tha), " at ", SP];
               _ -> default
           end,
    case Text of
        default -> default_print(Bin, P3);
        _ -> pr(P3, [Text, ", length ", integer_to_list(Len)])
    end.

arp_ip(Pro, _, P) when Pro =/= 16#0800, Pro =/= 16#1000 -> {"<wrong proto type>", P};
arp_ip(_, <<A:4/binary>>, P) -> ewpcap_dump_fmt_ip:host(ewpcap_dump_fmt_ip:ip4(A), P);
arp_ip(_, _, P) -> {"<wrong len>", P}.

arp_hrd(1) -> "Ethernet";
arp_hrd(H) ->
    case lists:keyfind(H, 1, [{6, "TokenRing"}, {7, "ArcNet"}, {15, "FrameRelay"},
                              {16, "ATM"}, {19, "ATM"}, {24, "IEEE1394"}, {32, "InfiniBand"}]) of
        {_, N} -> N;
        false -> ["Unknown Hardware (", integer_to_list(H), ")"]
    end.

arp_pro(16#0800) -> "IPv4";
arp_pro(P) ->
    case ethertype_name(P) of
        "Unknown" -> ["Unknown Protocol (0x", hex4(P), ")"];
        N -> N
    end.

%%% Hex dumps: -x (hex), -X and data not decoded (hex and ASCII)

%% @doc Bytes as -x (`x') or -X (`X') prints them, each line after "\n\t".
-spec hex_dump(x | 'X', binary()) -> iolist().
hex_dump(Kind, Bin) ->
    hex_lines(Kind, Bin, 0).

hex_lines(_Kind, <<>>, _Off) ->
    [];
hex_lines(Kind, Bin, Off) ->
    {Line, Rest} = case Bin of
                       <<L:16/binary, R/binary>> -> {L, R};
                       _ -> {Bin, <<>>}
                   end,
    Hex = hex_groups(Line),
    Text = case Kind of
               x -> ["\n\t0x", hex4(Off), ": ", Hex];
               'X' ->
                   Pad = lists:duplicate(40 - iolist_size(Hex), $\s),
                   ["\n\t0x", hex4(Off), ": ", Hex, Pad, "  ",
                    [case B >= 16#21 andalso B =< 16#7E of true -> B; false -> $. end
                     || <<B>> <= Line]]
           end,
    [Text | hex_lines(Kind, Rest, Off + 16)].

hex_groups(<<A, B, Rest/binary>>) -> [$\s, hex2(A), hex2(B) | hex_groups(Rest)];
hex_groups(<<A>>) -> [$\s, hex2(A)];
hex_groups(<<>>) -> [].

hex2(B) when B < 16 -> [$0, hd(integer_to_list(B, 16)) bor 32];
hex2(B) -> [C bor 32 || C <- integer_to_list(B, 16)].

hex4(N) -> ewpcap_dump_fmt_ip:pad(integer_to_list(N, 16), 4).

mac(Bin) ->
    lists:join($:, [hex2(B) || <<B>> <= Bin]).
