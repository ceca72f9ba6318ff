%%% @doc The protocols over IPv4 and IPv6 other than TCP, UDP, ICMP and
%%% ICMPv6, as tcpdump 4.99 prints them: the choice of printer, and IP
%%% and IPv6 in IP, Ethernet over IPv6, GRE, ESP, AH, Mobile IP, VRRP,
%%% ND, `no next header' and the protocols that need the other IP
%%% version (`[ICMP requires IPv4] (invalid)'); the routing protocols
%%% are in ewpcap_dump_fmt_routing, the transports in
%%% ewpcap_dump_fmt_l4x.
%%%
%%% tcpdump decodes some of these deeply (RSVP objects, PIM messages,
%%% SCTP chunks, GRE payloads, ...); here each prints its header as
%%% tcpdump does, with the same length checks, version checks and
%%% truncation markers, which is what malformed and random packets
%%% show. Written from tcpdump's behaviour (its printers were read, not
%%% copied); test/ewpcap_dump_diff_SUITE.erl compares the two.
%%%
%%% Each printer takes the captured bytes from its header on (`Bin', cut
%%% to the IP payload) and the payload's length (`Len'), as the other
%%% printers of ewpcap_dump_fmt_ip; `Ctx' is `{Version, Src, Dst, Frag}',
%%% `Ttl' the IP TTL or hop limit.
%%% @end
-module(ewpcap_dump_fmt_ipx).

-include("ewpcap_dump_fmt.hrl").

-export([demux/6]).
-export([unknown_data/3, hex8/1, dotted/1]).

-import(ewpcap_dump_fmt_ip, [pr/2, host/2, ip4/1, ip6/1, cksum/1, hex/1, hex2/1, pad/2]).

%% @doc The upper layer `Proto', or `false' when tcpdump prints it as
%% `ip-proto-N LEN' (ewpcap_dump_fmt_ip does).
-spec demux(byte(), binary(), non_neg_integer(), tuple(), byte(), #printer{}) ->
    #printer{} | false.
demux(1, _Bin, _Len, {6, _, _, _}, _Ttl, P) -> needs("ICMP", 4, P);
demux(2, _Bin, _Len, {6, _, _, _}, _Ttl, P) -> needs("IGMP", 4, P);
demux(58, _Bin, _Len, {4, _, _, _}, _Ttl, P) -> needs("ICMPv6", 6, P);
demux(143, _Bin, _Len, {4, _, _, _}, _Ttl, P) -> needs("Ethernet", 6, P);
demux(143, Bin, Len, _Ctx, _Ttl, P) -> ewpcap_dump_fmt:ether(Bin, Len, P);
demux(4, Bin, Len, _Ctx, _Ttl, P) -> ewpcap_dump_fmt_ip:ipv4(Bin, Len, P);
demux(41, Bin, Len, _Ctx, _Ttl, P) -> ewpcap_dump_fmt_ip:ipv6(Bin, Len, P);
demux(59, _Bin, _Len, _Ctx, _Ttl, P) -> pr(P, "no next header");
demux(77, _Bin, Len, _Ctx, _Ttl, P) -> pr(P, [" nd ", integer_to_list(Len)]);
demux(55, Bin, Len, _Ctx, _Ttl, P) -> mobile(Bin, Len, P);
demux(8, Bin, Len, _Ctx, _Ttl, P) -> ewpcap_dump_fmt_routing:egp(Bin, Len, P);
demux(112, Bin, Len, Ctx, Ttl, P) -> vrrp(Bin, Len, Ctx, Ttl, P);
demux(47, Bin, Len, _Ctx, _Ttl, P) -> gre(Bin, Len, P);
demux(33, Bin, Len, Ctx, _Ttl, P) -> ewpcap_dump_fmt_l4x:dccp(Bin, Len, Ctx, P);
demux(132, Bin, Len, Ctx, _Ttl, P) -> ewpcap_dump_fmt_l4x:sctp(Bin, Len, Ctx, P);
demux(113, Bin, Len, Ctx, _Ttl, P) -> ewpcap_dump_fmt_l4x:pgm(Bin, Len, Ctx, P);
demux(46, Bin, Len, _Ctx, _Ttl, P) -> ewpcap_dump_fmt_routing:rsvp(Bin, Len, P);
demux(103, Bin, Len, _Ctx, _Ttl, P) -> ewpcap_dump_fmt_routing:pim(Bin, Len, P);
demux(88, Bin, Len, _Ctx, _Ttl, P) -> ewpcap_dump_fmt_routing:eigrp(Bin, Len, P);
demux(9, Bin, Len, _Ctx, _Ttl, P) -> ewpcap_dump_fmt_routing:igrp(Bin, Len, P);
demux(51, <<>>, _Len, _Ctx, _Ttl, P) -> ?TRUNC_RET("ah", P);
demux(51, Bin, Len, Ctx, Ttl, P) -> ah(Bin, Len, Ctx, Ttl, P);
demux(50, <<Spi:32, Seq:32, _, _/binary>>, Len, _Ctx, _Ttl, P) ->
    pr(P, ["ESP(spi=0x", hex8(Spi), ",seq=0x", hex(Seq), "), length ", integer_to_list(Len)]);
demux(50, _Bin, _Len, _Ctx, _Ttl, P) -> ?TRUNC_RET("esp", P);
demux(_Proto, _Bin, _Len, _Ctx, _Ttl, _P) -> false.

%% "[ICMP requires IPv4] (invalid)"
needs(Name, V, P) ->
    pr(P, ["[", Name, " requires IPv", integer_to_list(V), "] (invalid)"]).

%%% AH: its fields, the ICV as far as it is captured, then what it
%%% protects

ah(Bin, Len, Ctx, Ttl, P0) ->
    P = pr(P0, "AH"),
    case Bin of
        <<Nh, AhLen, Rest/binary>> ->
            SumLen = (AhLen + 2) * 4,
            P1 = pr(P, ["(", [["length=", integer_to_list(AhLen), "(", integer_to_list(SumLen),
                               "-bytes),"] || P#printer.verbose > 0]]),
            P2 = case Rest of
                     <<0:16, _/binary>> -> P1;
                     <<Res:16, _/binary>> -> pr(P1, ["reserved=0x", hex(Res), "[MustBeZero],"]);
                     _ -> ?TRUNC("ah", P1)
                 end,
            P3 = case Rest of
                     <<_:16, Spi:32, _/binary>> -> pr(P2, ["spi=0x", hex8(Spi), ","]);
                     _ -> ?TRUNC("ah", P2)
                 end,
            P4 = case Rest of
                     <<_:48, Seq:32, _/binary>> -> pr(P3, ["seq=0x", hex(Seq), ",icv=0x"]);
                     _ -> ?TRUNC("ah", P3)
                 end,
            IcvLen = max(0, SumLen - 12),
            case Rest of
                <<_:80, Icv:IcvLen/binary, _/binary>> ->
                    P5 = pr(P4, [[hex2(B) || <<B>> <= Icv], "): "]),
                    More = binary:part(Bin, min(SumLen, byte_size(Bin)),
                                       byte_size(Bin) - min(SumLen, byte_size(Bin))),
                    ewpcap_dump_fmt_ip:demux(Nh, More, Len - SumLen, Ctx, Ttl, P5);
                <<_:80, Part/binary>> ->
                    ?TRUNC("ah", pr(P4, [hex2(B) || <<B>> <= Part]))
            end;
        _ ->
            ?TRUNC("ah", P)
    end.

%%% GRE: versions 0 and 1 (PPTP); source routes print their address
%%% family only

gre(<<Flags:16, _/binary>> = Bin, Len, P) when Len >= 2 ->
    Ver = Flags band 7,
    P1 = pr(P, ["GREv", integer_to_list(Ver)]),
    case Ver of
        0 -> gre0(Flags, Bin, Len, P1);
        1 -> gre1(Flags, Bin, Len, P1);
        _ -> pr(P1, " ERROR: unknown-version")
    end;
gre(_Bin, _Len, P) ->
    ?TRUNC_RET("gre", P).

gre_flags(Flags, #printer{verbose = V} = P) when V > 0 ->
    Names = [N || {B, N} <- [{16#8000, "checksum present"}, {16#4000, "routing present"},
                             {16#2000, "key present"}, {16#1000, "sequence# present"},
                             {16#0800, "source routing present"}, {16#0080, "ack present"}],
                  Flags band B =/= 0],
    pr(P, [", Flags [", case Names of [] -> "none"; _ -> lists:join(", ", Names) end, "]"]);
gre_flags(_Flags, P) ->
    P.

%% Fields: {Bits, Bytes, Printer}; each needs its bytes captured and
%% within the length, else " [|gre]"
gre_field(Size, Bin, Off, Len, P) ->
    case Bin of
        <<_:Off/binary, V:Size/unit:8, _/binary>> when Len - Off >= Size -> V;
        _ -> throw({gre_trunc, P})
    end.

gre0(Flags, Bin, Len, P0) ->
    P = gre_flags(Flags, P0),
    try
        Prot = gre_field(2, Bin, 2, Len, P),
        {Off1, P1} = case Flags band 16#C000 of
                         0 ->
                             {4, P};
                         _ ->
                             Sum = gre_field(2, Bin, 4, Len, P),
                             Pa = pr(P, [[", sum 0x", hex(Sum)] || P#printer.verbose > 0]),
                             Off = gre_field(2, Bin, 6, Len, Pa),
                             {8, pr(Pa, [", off 0x", hex(Off)])}
                     end,
        {Off2, P2} = gre_opt(Flags band 16#2000, ", key=0x", Bin, Off1, Len, P1),
        {Off3, P3} = gre_opt(Flags band 16#1000, ", seq ", Bin, Off2, Len, P2),
        {Off4, P4} = case Flags band 16#4000 of
                         0 -> {Off3, P3};
                         _ -> gre_routes(Bin, Off3, Len, P3)
                     end,
        P5 = pr(P4, [[", proto ", gre_proto_name(Prot), " (0x", pad(integer_to_list(Prot, 16), 4),
                      ")"] || P4#printer.eflag]),
        gre_payload(Prot, Bin, Off4, Len, P5)
    catch
        throw:{gre_trunc, PT} -> ?TRUNC_RET("gre", PT)
    end.

gre_opt(0, _Text, _Bin, Off, _Len, P) ->
    {Off, P};
gre_opt(_, Text, Bin, Off, Len, P) ->
    V = gre_field(4, Bin, Off, Len, P),
    {Off + 4, pr(P, [Text, case Text of ", key=0x" -> hex(V); _ -> integer_to_list(V) end])}.

%% Source route entries until the last (family 0, length 0)
gre_routes(Bin, Off, Len, P) ->
    Sre = gre_field(4, Bin, Off, Len, P),
    Af = Sre bsr 16,
    SreLen = Sre band 16#FF,
    case Af =:= 0 andalso SreLen =:= 0 of
        true ->
            {Off + 4, P};
        false ->
            P1 = pr(P, [", (rtaf=0x", hex(Af), ")"]),
            case Len - Off - 4 >= SreLen of
                true -> gre_routes(Bin, Off + 4 + SreLen, Len, P1);
                false -> throw({gre_trunc, P1})
            end
    end.

gre1(Flags, Bin, Len, P0) ->
    P = gre_flags(Flags, P0),
    try
        Prot = gre_field(2, Bin, 2, Len, P),
        {Off1, P1} = case Flags band 16#2000 of
                         0 -> {4, P};
                         _ -> K = gre_field(4, Bin, 4, Len, P),
                              {8, pr(P, [", call ", integer_to_list(K band 16#FFFF)])}
                     end,
        {Off2, P2} = gre_opt(Flags band 16#1000, ", seq ", Bin, Off1, Len, P1),
        {_, P3} = gre_opt(Flags band 16#0080, ", ack ", Bin, Off2, Len, P2),
        P4 = pr(P3, [[", no-payload" || Flags band 16#1000 =:= 0],
                     [[", proto ", gre_proto_name(Prot), " (0x", pad(integer_to_list(Prot, 16), 4), ")"]
                      || P3#printer.eflag],
                     ", length ", integer_to_list(Len)]),
        case Flags band 16#1000 of
            0 -> P4;
            _ -> pr(P4, [gre_demarc(P4), "gre-proto-0x", hex(Prot)])
        end
    catch
        throw:{gre_trunc, PT} -> ?TRUNC_RET("gre", PT)
    end.

gre_payload(Prot, Bin, Off, Len, P) ->
    P1 = pr(P, [", length ", integer_to_list(Len), gre_demarc(P)]),
    Rest = binary:part(Bin, min(Off, byte_size(Bin)), byte_size(Bin) - min(Off, byte_size(Bin))),
    case Prot of
        16#0800 -> ewpcap_dump_fmt_ip:ipv4(Rest, Len - Off, P1);
        16#86DD -> ewpcap_dump_fmt_ip:ipv6(Rest, Len - Off, P1);
        16#6558 -> ewpcap_dump_fmt:ether(Rest, Len - Off, P1);
        _ -> pr(P1, ["gre-proto-0x", hex(Prot)])
    end.

gre_demarc(#printer{verbose = 0}) -> ": ";
gre_demarc(_) -> "\n\t".

gre_proto_name(16#0800) -> "IPv4";
gre_proto_name(16#86DD) -> "IPv6";
gre_proto_name(16#6558) -> "Transparent Ethernet bridging";
gre_proto_name(16#880B) -> "PPP";
gre_proto_name(_) -> "unknown".

%%% Mobile IP (RFC 2004 minimal encapsulation)

mobile(<<Proto:16, Sum:16, ODst:4/binary, OSrc:4/binary, _/binary>> = Bin, Len, P) when Len >= 8 ->
    Osp = Proto band 16#80 =/= 0,
    V = P#printer.verbose > 0,
    P1 = pr(P, "mobile: "),
    P2 = case Osp of
             true ->
                 P1a = pr(P1, "[S] "),
                 case V of
                     true -> {H, P1b} = host(ip4(OSrc), P1a), pr(P1b, [H, " "]);
                     false -> P1a
                 end;
             false ->
                 pr(P1, "[] ")
         end,
    P3 = case V of
             true ->
                 {D, P2a} = host(ip4(ODst), P2),
                 pr(P2a, ["> ", D, " (oproto=", integer_to_list(Proto bsr 8), ")"]);
             false ->
                 P2
         end,
    N = case Osp of true -> 12; false -> 8 end,
    case cksum(binary:part(Bin, 0, N)) of
        0 -> P3;
        _ -> pr(P3, [" (bad checksum ", integer_to_list(Sum), ")"])
    end;
mobile(_Bin, _Len, P) ->
    ?TRUNC_RET("mobile", P).

%%% VRRP

vrrp(<<Ver:4, Type:4, _/binary>> = Bin, Len, Ctx, Ttl, P) ->
    P1 = pr(P, ["VRRPv", integer_to_list(Ver), ", ",
                case Type of
                    1 -> "Advertisement";
                    _ -> ["unknown type (", integer_to_list(Type), ")"]
                end,
                [[", (ttl ", integer_to_list(Ttl), ")"] || Ttl =/= 255]]),
    case Ver >= 2 andalso Ver =< 3 andalso Type =:= 1 of
        false -> P1;
        true -> vrrp_adv(Ver, Bin, Len, Ctx, P1)
    end;
vrrp(_Bin, _Len, _Ctx, _Ttl, P) ->
    ?TRUNC("vrrp", pr(P, "VRRP")).

vrrp_adv(Ver, Bin, Len, Ctx, P) ->
    P1 = case Bin of
             <<_, Vrid, Prio, _/binary>> ->
                 pr(P, [", vrid ", integer_to_list(Vrid), ", prio ", integer_to_list(Prio)]);
             _ ->
                 ?TRUNC("vrrp", P)
         end,
    P2 = case {Ver, Bin} of
             {2, <<_:32, Auth, _/binary>>} ->
                 P1a = pr(P1, [", authtype ", case Auth of
                                                  0 -> "none";
                                                  1 -> "simple";
                                                  2 -> "ah";
                                                  _ -> ["#", integer_to_list(Auth)]
                                              end]),
                 case Bin of
                     <<_:40, Intvl, _/binary>> ->
                         pr(P1a, [", intvl ", integer_to_list(Intvl), "s, length ",
                                  integer_to_list(Len)]);
                     _ ->
                         ?TRUNC("vrrp", P1a)
                 end;
             {3, <<_:36, Intvl:12, _/binary>>} ->
                 pr(P1, [", intvl ", integer_to_list(Intvl), "cs, length ", integer_to_list(Len)]);
             _ ->
                 ?TRUNC("vrrp", P1)
         end,
    case P2#printer.verbose of
        0 -> P2;
        _ -> vrrp_verbose(Ver, Bin, Len, Ctx, P2)
    end.

%% -v: a bad checksum, the addresses, a simple password
vrrp_verbose(Ver, Bin, Len, Ctx, P) ->
    <<_:24, NAddrs, Auth, _/binary>> = Bin,
    Bad = case Bin of
              <<Msg:Len/binary, _/binary>> ->
                  case {vrrp_cksum(Ver, Msg, Ctx, P), Bin} of
                      {0, _} -> [];
                      {_, <<_:48, Sum:16, _/binary>>} -> [", (bad vrrp cksum ", hex(Sum), ")"];
                      _ -> ?TRUNC("vrrp", P)
                  end;
              _ -> []
          end,
    P1 = pr(P, [Bad, ", addrs", [["(", integer_to_list(NAddrs), ")"] || NAddrs > 1], ":"]),
    ASize = case element(1, Ctx) of 4 -> 4; 6 -> 16 end,
    P2 = vrrp_addrs(NAddrs, $\s, Bin, {8, ASize}, P1),
    case Ver =:= 2 andalso Auth =:= 1 of
        false ->
            P2;
        true ->
            case Bin of
                <<_:(8 + ASize * NAddrs)/binary, Pw:8/binary, _/binary>> ->
                    pr(P2, [" auth \"", printable(Pw), "\""]);
                _ ->
                    ?TRUNC_RET("vrrp", P2)
            end
    end.

vrrp_cksum(2, Msg, _Ctx, _P) -> cksum(Msg);
vrrp_cksum(3, Msg, {V, Src, Dst, _}, P) ->
    ewpcap_dump_fmt_ip:pseudo_cksum(V, Src, ewpcap_dump_fmt_ip:csum_dst(Dst, P), 112, Msg).

vrrp_addrs(0, _C, _Bin, _Off, P) ->
    P;
vrrp_addrs(N, C, Bin, {Off, Size}, P) ->
    case Bin of
        <<_:Off/binary, A:Size/binary, _/binary>> ->
            {H, P1} = host(case Size of 4 -> ip4(A); 16 -> ip6(A) end, P),
            vrrp_addrs(N - 1, $,, Bin, {Off + Size, Size}, pr(P1, [C, H]));
        _ ->
            ?TRUNC_RET("vrrp", P)
    end.

%% tcpdump's fn_printn: up to a NUL, other control bytes as ^X, 8-bit
%% bytes as M-
printable(Bin) ->
    printable_chars(Bin).

printable_chars(<<0, _/binary>>) -> [];
printable_chars(<<C, Rest/binary>>) -> [char(C) | printable_chars(Rest)];
printable_chars(<<>>) -> [].

char(C) when C >= 16#80 -> ["M-" | char(C band 16#7F)];
char(C) when C < 16#20; C =:= 16#7F -> [$^, C bxor 16#40];
char(C) -> [C].

%%% Helpers

%% @doc tcpdump's print_unknown_data: up to Len of the captured bytes,
%% each line after Ident.
-spec unknown_data(iodata(), binary(), integer()) -> binary().
unknown_data(Ident, Bin, Len) ->
    Part = binary:part(Bin, 0, max(0, min(Len, byte_size(Bin)))),
    binary:replace(iolist_to_binary(ewpcap_dump_fmt:hex_dump(x, Part)), <<"\n\t">>,
                   iolist_to_binary(Ident), [global]).

%% @doc 32 bits in hexadecimal, 8 digits.
-spec hex8(non_neg_integer()) -> string().
hex8(N) -> pad(integer_to_list(N, 16), 8).

%% @doc Bytes as a dotted decimal.
-spec dotted([byte()]) -> iolist().
dotted(Bytes) ->
    lists:join($., [integer_to_list(B) || B <- Bytes]).
