%%% @doc The network and transport layers of ewpcap_dump's lines: IPv4,
%%% IPv6 (its extension headers in ewpcap_dump_fmt_ip6x) and UDP (TCP in
%%% ewpcap_dump_fmt_tcp, ICMP and ICMPv6 in ewpcap_dump_fmt_icmp, the
%%% other protocols in ewpcap_dump_fmt_ipx), as
%%% tcpdump 4.99 prints them, broken packets included: the same length
%%% checks, in the same order, the same truncation markers (`[|proto]'),
%%% `bad length', `truncated-ip', `(invalid)' and `-v' header lines and
%%% checksums. Written from tcpdump's behaviour (its printers were read,
%%% not copied); differential tests against tcpdump keep it so
%%% (test/ewpcap_dump_diff_SUITE.erl).
%%%
%%% Each printer takes the captured bytes from its header on (`Bin', cut
%%% to what the layer below says is its payload, as tcpdump's snapend)
%%% and the length the layer below gives it (`Len'), and appends its text
%%% to the printer. Running past `Bin' where tcpdump would is ?TRUNC.
%%% @end
-module(ewpcap_dump_fmt_ip).

-include("ewpcap_dump_fmt.hrl").

-export([ipv4/3, ipv6/3, demux/5, demux/6, pr/2, host/2, port/3, ip4/1, ip6/1]).
-export([cksum/1, should_be/2, hex/1, pad/2, hex2/1, hex4/1, ports/6, pseudo_cksum/5,
         addr_bin/1, cut/2, csum_dst/2]).

%% -n: the text of this many addresses is kept (host/2)
-define(ADDR_CACHE, 4096).
-define(ADDR_COUNT, ewpcap_dump_fmt_addr_count).

%%% ===================================================================
%%% IPv4
%%% ===================================================================

%% @doc An IPv4 packet of (wire) length `Len'.
-spec ipv4(binary(), non_neg_integer(), #printer{}) -> #printer{}.
ipv4(<<V:4, _/bitstring>>, _Len, P) when V =/= 4 ->
    case V of
        6 -> pr(P, "IP6, wrong link-layer encapsulation (invalid)");
        _ -> pr(P, ["IP", integer_to_list(V), " (invalid)"])
    end;
ipv4(<<>>, _Len, P) ->
    ?TRUNC("ip", P);
ipv4(Bin, Len, P0) ->
    P = case P0#printer.eflag of
            true -> P0;
            false -> pr(P0, <<"IP ">>)
        end,
    case Bin of
        <<4:4, IHL:4, Tos, TotLen:16, Id:16, Frag:16, TTL, Proto, Sum:16,
          Src:4/binary, Dst:4/binary, _/binary>> ->
            HLen = IHL * 4,
            if
                Len < 20 ->
                    pr(P, ["truncated-ip ", integer_to_list(Len)]);
                HLen < 20 ->
                    pr(P, ["bad-hlen ", integer_to_list(HLen)]);
                true ->
                    P1 = case Len < TotLen of
                             true -> pr(P, ["truncated-ip - ", integer_to_list(TotLen - Len),
                                            " bytes missing! "]);
                             false -> P
                         end,
                    case TotLen < HLen of
                        true ->
                            pr(P1, ["bad-len ", integer_to_list(TotLen)]);
                        false ->
                            Cut = cut(Bin, min(Len, TotLen)),
                            ipv4_body(Cut, HLen, {Tos, TotLen, Id, Frag, TTL, Proto, Sum},
                                      Src, Dst, P1)
                    end
            end;
        _ ->
            % tcpdump checks and returns (no longjmp): -x skips the link header
            ?TRUNC_RET("ip", P)
    end.

ipv4_body(Bin, HLen, {Tos, TotLen, Id, Frag, TTL, Proto, Sum}, Src, Dst, P0) ->
    Off = Frag band 16#1FFF,
    PayLen = TotLen - HLen,
    V = case P0#printer.verbose of
            0 -> P0;
            _ -> ipv4_verbose(Bin, HLen, {Tos, TotLen, Id, Frag, TTL, Proto, Sum}, P0)
        end,
    SrcA = ip4(Src),
    DstA = ip4(Dst),
    case V of
        {opt_trunc, PT} ->
            % an option past the captured bytes: tcpdump's addresses and
            % marker, and a return (no longjmp)
            ?TRUNC_RET("ip", addrs(SrcA, DstA, PT));
        P ->
            ipv4_demux(Bin, HLen, {Off, PayLen, Frag, TTL, Proto}, SrcA, DstA, P)
    end.

ipv4_demux(Bin, HLen, {Off, PayLen, Frag, TTL, Proto}, SrcA, DstA, P) ->
    case Off of
        0 ->
            P1 = case lists:member(Proto, [6, 17, 33, 132]) of
                     true -> P;
                     false -> addrs(SrcA, DstA, P)
                 end,
            case Bin of
                <<_:HLen/binary, Payload/binary>> ->
                    CDst = case HLen of
                               20 -> none;
                               _ -> <<_:20/binary, Opts:(HLen - 20)/binary, _/binary>> = Bin,
                                    ewpcap_dump_fmt_ipopt:final_dst(Opts, DstA)
                           end,
                    demux(Proto, Payload, PayLen, {4, SrcA, DstA, Frag band 16#2000 =/= 0, TTL},
                          P1#printer{ip_proto = Proto, csum_dst = CDst});
                _ ->
                    P2 = pr(P1, [" [remaining caplen(", integer_to_list(byte_size(Bin)),
                                 ") < header length(", integer_to_list(HLen), ")]"]),
                    ?TRUNC("ip", P2)
            end;
        _ ->
            {SH, P1} = host(SrcA, P),
            {DH, P2} = host(DstA, P1),
            pr(P2, [SH, " > ", DH, ":", $\s, proto_word(Proto, P2)])
    end.

%% -v: the header's fields, then the rest on a second, indented line.
ipv4_verbose(Bin, HLen, {Tos, TotLen, Id, Frag, TTL, Proto, Sum}, P) ->
    Ecn = case Tos band 3 of
              1 -> ",ECT(1)";
              2 -> ",ECT(0)";
              3 -> ",CE";
              0 -> ""
          end,
    Flags = case [N || {B, N} <- [{16#2000, "+"}, {16#4000, "DF"}, {16#8000, "rsvd"}],
                       Frag band B =/= 0] of
                [] -> "none";
                Fs -> lists:join(", ", Fs)
            end,
    Head = ["(tos 0x", hex(Tos), Ecn,
            [[", ttl ", integer_to_list(TTL)] || TTL >= 1],
            ", id ", integer_to_list(Id), ", offset ", integer_to_list((Frag band 16#1FFF) * 8),
            ", flags [", Flags, "], proto ", proto_name(Proto), " (", integer_to_list(Proto),
            "), length ", integer_to_list(TotLen)],
    OptLen = HLen - 20,
    Opts = case OptLen of
               0 -> [];
               _ ->
                   % option by option, as far as the bytes go
                   <<_:20/binary, O/binary>> = Bin,
                   case ewpcap_dump_fmt_ipopt:options(O, OptLen, P) of
                       {ok, Done, _} -> {ok, [", options (", Done, ")"]};
                       {trunc_opt, Part, _} -> {opt_trunc, [", options (", Part,
                                                            " [truncated-option])"]};
                       {trunc, Part, PT} -> ?TRUNC("ip", pr(PT, [Head, ", options (", Part]))
                   end
           end,
    case Opts of
        {opt_trunc, OT} ->
            {opt_trunc, cksum_ip(Bin, HLen, Sum, pr(P, [Head, OT]))};
        {ok, OT} ->
            cksum_ip(Bin, HLen, Sum, pr(P, [Head, OT]));
        [] ->
            cksum_ip(Bin, HLen, Sum, pr(P, Head))
    end.

cksum_ip(Bin, HLen, Sum, P) ->
    Checked = case Bin of
                  <<H:HLen/binary, _/binary>> ->
                      case cksum(H) of
                          0 -> [];
                          S -> [", bad cksum ", integer_to_list(Sum, 16), " (->",
                                integer_to_list(should_be(Sum, S), 16), ")!"]
                      end;
                  _ -> []
              end,
    pr(P, [string:lowercase(iolist_to_binary(Checked)), ")\n    "]).

%%% ===================================================================
%%% IPv6
%%% ===================================================================

%% @doc An IPv6 packet of (wire) length `Len'.
-spec ipv6(binary(), non_neg_integer(), #printer{}) -> #printer{}.
ipv6(Bin, Len, P0) ->
    P = case P0#printer.eflag of
            true -> P0;
            false -> pr(P0, <<"IP6 ">>)
        end,
    case Bin of
        <<V:4, Class:8, Flow:20, PayLen:16, Next, HLim, Src:16/binary, Dst:16/binary, _/binary>> ->
            if
                Len < 40 ->
                    pr(P, ["truncated-ip6 ", integer_to_list(Len)]);
                V =/= 6 ->
                    pr(P, ["version error: ", integer_to_list(V), " != 6"]);
                true ->
                    Total = case PayLen of
                                0 -> Len;
                                _ -> PayLen + 40
                            end,
                    P1 = case Total > Len of
                             true -> pr(P, ["truncated-ip6 - ", integer_to_list(Total - Len),
                                            " bytes missing!"]);
                             false -> P
                         end,
                    P2 = case P1#printer.verbose of
                             0 -> P1;
                             _ -> pr(P1, ["(",
                                          [["class 0x", hex2(Class), ", "] || Class =/= 0],
                                          [["flowlabel 0x", pad(integer_to_list(Flow, 16), 5), ", "]
                                           || Flow =/= 0],
                                          "hlim ", integer_to_list(HLim), ", next-header ",
                                          proto_name(Next), " (", integer_to_list(Next),
                                          ") payload length: ", integer_to_list(PayLen), ") "])
                         end,
                    Cut = cut(Bin, min(Len, Total)),
                    <<_:40/binary, Rest/binary>> = Cut,
                    Ctx = {6, ip6(Src), ip6(Dst), false, HLim},
                    P3 = case lists:member(Next, [6, 17, 33, 132]) of
                             true -> P2;
                             false -> addrs(element(2, Ctx), element(3, Ctx), P2)
                         end,
                    CDst = case Next of
                               _ when Next =:= 6; Next =:= 17 -> none;
                               _ -> ewpcap_dump_fmt_ip6x:final_dst(Next, Rest, element(3, Ctx))
                           end,
                    ewpcap_dump_fmt_ip6x:next(Next, Rest, Total - 40, Ctx, PayLen,
                                              P3#printer{ip_proto = Next, csum_dst = CDst})
            end;
        _ ->
            % (the header is checked before "IP6 " is printed; tcpdump
            % returns there, no longjmp: -x still skips the link header)
            ?TRUNC_RET("ip6", P0)
    end.

%%% ===================================================================
%%% Upper layers
%%% ===================================================================

%% Ctx: {Version, Src, Dst, Fragmented, TTL or hop limit}; the printers
%% of TCP, UDP, ICMP and ICMPv6 take it without the TTL.
demux(Proto, Bin, Len, {V, Src, Dst, Frag, Ttl}, P) ->
    demux(Proto, Bin, Len, {V, Src, Dst, Frag}, Ttl, P).

demux(6, Bin, Len, Ctx, _Ttl, P) -> ewpcap_dump_fmt_tcp:tcp(Bin, Len, Ctx, P);
demux(17, Bin, Len, Ctx, _Ttl, P) -> udp(Bin, Len, Ctx, P);
demux(1, Bin, Len, {4, _, _, _} = Ctx, _Ttl, P) -> ewpcap_dump_fmt_icmp:icmp(Bin, Len, Ctx, P);
demux(58, Bin, Len, {6, _, _, _} = Ctx, _Ttl, P) -> ewpcap_dump_fmt_icmp6:icmp6(Bin, Len, Ctx, P);
demux(108, <<_:16, Cpi:16, _/binary>>, _Len, _Ctx, _Ttl, P) ->
    % IPComp: the parameter index (tcpdump does not decompress either)
    pr(P, ["IPComp(cpi=0x", hex4(Cpi), ")"]);
demux(108, _Bin, _Len, _Ctx, _Ttl, P) ->
    ?TRUNC("ipcomp", P);
demux(Proto, Bin, Len, Ctx, Ttl, P) ->
    case ewpcap_dump_fmt_ipx:demux(Proto, Bin, Len, Ctx, Ttl, P) of
        false -> pr(P, [$\s, proto_word(Proto, P), $\s, integer_to_list(Len)]);
        P1 -> P1
    end.

%%% UDP

udp(Bin, Len, {V, Src, Dst, Frag} = Ctx, P) ->
    case Bin of
        <<SP:16, DP:16, Rest/binary>> ->
            P1 = case Len < 8 of
                     true -> ports(udp, Src, SP, Dst, DP, P);
                     false -> P
                 end,
            if
                Len < 8 ->
                    pr(P1, ["truncated-udp ", integer_to_list(Len)]);
                true ->
                    case Rest of
                        <<ULen0:16, Sum:16, _/binary>> ->
                            ULen = case ULen0 =:= 0 andalso Len > 65535 of
                                       true -> Len;
                                       false -> ULen0
                                   end,
                            P2 = ports(udp, Src, SP, Dst, DP, P1),
                            if
                                ULen < 8 ->
                                    pr(P2, ["truncated-udplength ", integer_to_list(ULen)]);
                                ULen > Len, Frag ->
                                    % a fragment: the rest is in the others
                                    pr(P2, [<<"UDP, length ">>, integer_to_binary(ULen - 8)]);
                                ULen > Len ->
                                    % the checksum first, over what the IP length gives
                                    P3 = udp_cksum(Bin, Len, Sum, Ctx, Frag, P2),
                                    pr(P3, ["UDP, bad length ", integer_to_list(ULen - 8), " > ",
                                            integer_to_list(Len - 8)]);
                                true ->
                                    Data = min(ULen, Len) - 8,
                                    P3 = udp_cksum(Bin, Data + 8, Sum, Ctx, Frag, P2),
                                    _ = V,
                                    pr(P3, [<<"UDP, length ">>, integer_to_binary(Data)])
                            end;
                        _ ->
                            ?TRUNC_RET("udp", ports(udp, Src, SP, Dst, DP, P1))
                    end
            end;
        _ ->
            case bare(udp, P) of
                true -> ?TRUNC_RET("udp", P);
                false -> ?TRUNC_RET("udp", addrs(Src, Dst, P))
            end
    end.

udp_cksum(_Bin, _L, _Sum, _Ctx, true, P) -> P;
udp_cksum(_Bin, _L, _Sum, _Ctx, _, #printer{verbose = 0} = P) -> P;
udp_cksum(_Bin, _L, _Sum, {4, _, _, _}, _, #printer{verbose = 1} = P) -> P;
udp_cksum(_Bin, _L, 0, {4, _, _, _}, _, P) -> pr(P, "[no cksum] ");
udp_cksum(Bin, L, Sum, {V, Src, Dst, _}, _, P) when byte_size(Bin) >= L ->
    case pseudo_cksum(V, Src, csum_dst(Dst, P), 17, binary:part(Bin, 0, L)) of
        0 -> pr(P, "[udp sum ok] ");
        S -> pr(P, ["[bad udp cksum 0x", hex4(Sum), " -> 0x", hex4(should_be(Sum, S)), "!] "])
    end;
udp_cksum(_Bin, _L, _Sum, _Ctx, _, P) -> P.

%%% ===================================================================
%%% Helpers
%%% ===================================================================

%% @doc Appends text to the packet's line.
-spec pr(#printer{}, iodata()) -> #printer{}.
pr(#printer{out = O} = P, Text) ->
    P#printer{out = [O | Text]}.

%% @doc The destination of a checksum's pseudo-header: a source route's
%% last address, or the header's.
-spec csum_dst(inet:ip_address(), #printer{}) -> inet:ip_address().
csum_dst(Dst, #printer{csum_dst = none}) -> Dst;
csum_dst(_Dst, #printer{csum_dst = D}) -> D.

%% @doc The captured bytes, cut to a layer's length (tcpdump's snapend).
-spec cut(binary(), non_neg_integer()) -> binary().
cut(Bin, N) when byte_size(Bin) > N -> binary:part(Bin, 0, N);
cut(Bin, _) -> Bin.

addrs(Src, Dst, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    pr(P2, [SH, <<" > ">>, DH, <<": ">>]).

%% @doc `Src.SP > Dst.DP: ', names as the flags say.
-spec ports(tcp | udp, inet:ip_address(), 0..65535, inet:ip_address(), 0..65535, #printer{}) ->
    #printer{}.
ports(Proto, Src, SP, Dst, DP, P) ->
    {SPs, P1} = port(Proto, SP, P),
    {DPs, P2} = port(Proto, DP, P1),
    case bare(Proto, P2) of
        true ->
            % under an extension header or AH: the addresses are printed
            pr(P2, [SPs, <<" > ">>, DPs, <<": ">>]);
        false ->
            {SH, P3} = host(Src, P2),
            {DH, P4} = host(Dst, P3),
            pr(P4, [SH, $., SPs, <<" > ">>, DH, $., DPs, <<": ">>])
    end.

bare(tcp, #printer{ip_proto = N}) -> N =/= 6;
bare(udp, #printer{ip_proto = N}) -> N =/= 17.

proto_name(0) -> "Options";
proto_name(1) -> "ICMP";
proto_name(2) -> "IGMP";
proto_name(4) -> "IPIP";
proto_name(6) -> "TCP";
proto_name(8) -> "EGP";
proto_name(9) -> "IGRP";
proto_name(17) -> "UDP";
proto_name(33) -> "DCCP";
proto_name(41) -> "IPv6";
proto_name(43) -> "Routing";
proto_name(44) -> "Fragment";
proto_name(46) -> "RSVP";
proto_name(47) -> "GRE";
proto_name(50) -> "ESP";
proto_name(51) -> "AH";
proto_name(55) -> "Mobile IP";
proto_name(58) -> "ICMPv6";
proto_name(62) -> "Mobile IP (old)";
proto_name(88) -> "EIGRP";
proto_name(89) -> "OSPF";
proto_name(103) -> "PIM";
proto_name(108) -> "Compressed IP";
proto_name(112) -> "VRRP";
proto_name(113) -> "PGM";
proto_name(132) -> "SCTP";
proto_name(135) -> "Mobility";
proto_name(143) -> "Ethernet";
proto_name(_) -> "unknown".

%% A protocol as a word: its /etc/protocols name, or ip-proto-N (-n).
proto_word(Proto, P) ->
    case ewpcap_dump_names:numeric(P#printer.names) of
        true -> ["ip-proto-", integer_to_list(Proto)];
        false ->
            case lists:keyfind(Proto, 1, [{1, "icmp"}, {2, "igmp"}, {4, "ipencap"}, {6, "tcp"},
                                          {17, "udp"}, {41, "ipv6"}, {47, "gre"}, {50, "esp"},
                                          {51, "ah"}, {58, "ipv6-icmp"}, {132, "sctp"}]) of
                {_, N} -> N;
                false -> ["ip-proto-", integer_to_list(Proto)]
            end
    end.

%% @doc The Internet checksum of a binary (0: correct).
-spec cksum(binary()) -> 0..16#FFFF.
cksum(Bin) ->
    (bnot fold(sum16(Bin, 0))) band 16#FFFF.

sum16(<<A:16, Rest/binary>>, Acc) -> sum16(Rest, Acc + A);
sum16(<<A>>, Acc) -> Acc + (A bsl 8);
sum16(<<>>, Acc) -> Acc.

fold(S) when S > 16#FFFF -> fold((S band 16#FFFF) + (S bsr 16));
fold(S) -> S.

%% @doc The checksum of a TCP or UDP segment with its pseudo-header (0:
%% correct).
-spec pseudo_cksum(4 | 6, inet:ip_address(), inet:ip_address(), byte(), binary()) ->
    0..16#FFFF.
pseudo_cksum(4, Src, Dst, Proto, Seg) ->
    cksum(<<(addr_bin(Src))/binary, (addr_bin(Dst))/binary, 0, Proto, (byte_size(Seg)):16,
            Seg/binary>>);
pseudo_cksum(6, Src, Dst, Proto, Seg) ->
    cksum(<<(addr_bin(Src))/binary, (addr_bin(Dst))/binary, (byte_size(Seg)):32, 0:24, Proto,
            Seg/binary>>).

%% @doc The checksum the field should hold (tcpdump's in_cksum_shouldbe).
-spec should_be(0..16#FFFF, 0..16#FFFF) -> non_neg_integer().
should_be(Sum, Computed) ->
    fold(Sum + Computed).

%% @doc Lowercase hex digits; pad/2 with leading zeros to a width.
-spec hex(non_neg_integer()) -> string().
hex(N) -> lower(integer_to_list(N, 16)).

%% @doc A byte (hex4/1: 16 bits) in hexadecimal, lower case, zero-padded.
-spec hex2(byte()) -> string().
hex2(B) -> pad(integer_to_list(B, 16), 2).
-spec hex4(0..16#FFFF) -> string().
hex4(B) -> pad(integer_to_list(B, 16), 4).

-spec pad(string(), pos_integer()) -> string().
pad(S, N) when length(S) < N -> pad([$0 | S], N);
pad(S, _) -> lower(S).

%% Hexadecimal digits in lower case ($0..$9 have the bit already).
lower(S) -> [C bor 32 || C <- S].

%% @doc An address's bytes.
-spec addr_bin(inet:ip_address()) -> binary().
addr_bin({A, B, C, D}) -> <<A, B, C, D>>;
addr_bin(T) when tuple_size(T) =:= 8 -> << <<X:16>> || X <- tuple_to_list(T) >>.

%% @doc An IPv4 address from its 4 bytes.
-spec ip4(<<_:32>>) -> inet:ip4_address().
ip4(<<A, B, C, D>>) -> {A, B, C, D}.

%% @doc An IPv6 address from its 16 bytes.
-spec ip6(<<_:128>>) -> inet:ip6_address().
ip6(<<A:16, B:16, C:16, D:16, E:16, F:16, G:16, H:16>>) -> {A, B, C, D, E, F, G, H}.

%% @doc A host's name, or its address (-n).
-spec host(inet:ip_address(), #printer{}) -> {iodata(), #printer{}}.
host(IP, #printer{numeric = true} = P) ->
    % -n: the address's text, kept (the process's dictionary, as the
    % time's; emptied past ?ADDR_CACHE addresses): formatting them
    % (inet:ntoa/1 for IPv6) costs more than the rest of a line
    case get(IP) of
        undefined -> {addr_text(IP), P};
        Text -> {Text, P}
    end;
host(IP, #printer{names = N} = P) ->
    {Name, N1} = ewpcap_dump_names:host(IP, N),
    {Name, P#printer{names = N1}}.

addr_text(IP) ->
    Text = case IP of
               {A, B, C, D} ->
                   <<(integer_to_binary(A))/binary, $., (integer_to_binary(B))/binary, $.,
                     (integer_to_binary(C))/binary, $., (integer_to_binary(D))/binary>>;
               _ ->
                   list_to_binary(inet:ntoa(IP))
           end,
    Count = case get(?ADDR_COUNT) of
                C0 when is_integer(C0), C0 < ?ADDR_CACHE -> C0 + 1;
                _ -> _ = [erase(K) || K <- get_keys(), is_tuple(K)], 1
            end,
    put(?ADDR_COUNT, Count),
    put(IP, Text),
    Text.

%% @doc A port's name, or its number (-n).
-spec port(tcp | udp, 0..65535, #printer{}) -> {iodata(), #printer{}}.
port(_Proto, Port, #printer{numeric = true} = P) ->
    {integer_to_binary(Port), P};
port(Proto, Port, #printer{names = N} = P) ->
    {Name, N1} = ewpcap_dump_names:port(Proto, Port, N),
    {Name, P#printer{names = N1}}.
