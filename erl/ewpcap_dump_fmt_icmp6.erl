%%% @doc ICMPv6 in ewpcap_dump's lines, as tcpdump 4.99 prints it
%%% (ewpcap_dump_fmt_ip calls it for next header 58): every type tcpdump
%%% names, the errors with the packet they quote, MLD and MLDv2, and the
%%% neighbour-discovery messages with their options (-v); node
%%% information, router renumbering and RPL in ewpcap_dump_fmt_icmp6x.
%%% A field
%%% past the captured bytes ends the line with ` [|icmp6]', as tcpdump's
%%% GET_ macros do. Written from tcpdump's behaviour;
%%% test/ewpcap_dump_diff_SUITE.erl compares the two.
%%% @end
-module(ewpcap_dump_fmt_icmp6).

-include("ewpcap_dump_fmt.hrl").

-export([icmp6/4]).

-import(ewpcap_dump_fmt_ip, [pr/2, host/2, port/3, ip6/1, should_be/2, hex4/1,
                             pseudo_cksum/5]).
-import(ewpcap_dump_fmt_ipx, [unknown_data/3]).

-type ctx() :: {6, inet:ip_address(), inet:ip_address(), boolean()}.
%% The IP version, the addresses, whether the packet is a fragment.

%% @doc An ICMPv6 message of `Len' bytes (`Bin', the bytes captured of it).
-spec icmp6(binary(), non_neg_integer(), ctx(), #printer{}) -> #printer{}.
icmp6(_Bin, 0, _Ctx, P) ->
    pr(P, "ICMP6, length 0 (invalid)");
icmp6(Bin0, Len, Ctx, #printer{verbose = V} = P0) ->
    Bin = ewpcap_dump_fmt_ip:cut(Bin0, Len),
    P1 = cksum(Bin, Len, Ctx, P0),
    Type = u8(Bin, 0, P1),
    P2 = pr(P1, [<<"ICMP6, ">>, type_name(Type)]),
    % -v: the length comes before the text for these types
    P3 = case V > 0 andalso lists:member(Type, [133, 134, 135, 136, 137, 145, 147]) of
             true -> pr(P2, [", length ", integer_to_list(Len)]);
             false -> P2
         end,
    Code = u8(Bin, 1, P3),
    try body(Type, Code, Bin, Len, P3) of
        {done, P4} -> P4;
        P4 when V =:= 0 -> pr(P4, [", length ", integer_to_list(Len)]);
        P4 -> P4
    catch
        % tcpdump's goto trunc: the marker, and a return (no longjmp)
        throw:{ewp_icmp6_ret, PT} -> ?TRUNC_RET("icmp6", PT)
    end.

%% -v: the checksum of a whole, unfragmented message, before its text
cksum(Bin, Len, {6, Src, Dst, false}, #printer{verbose = V} = P)
  when V > 0, byte_size(Bin) >= Len ->
    Sum = u16(Bin, 2, P),
    case pseudo_cksum(6, Src, ewpcap_dump_fmt_ip:csum_dst(Dst, P), 58, Bin) of
        0 -> pr(P, "[icmp6 sum ok] ");
        S -> pr(P, ["[bad icmp6 cksum 0x", hex4(Sum), " -> 0x", hex4(should_be(Sum, S)), "!] "])
    end;
cksum(_Bin, _Len, _Ctx, P) ->
    P.

type_name(1) -> <<"destination unreachable">>;
type_name(2) -> <<"packet too big">>;
type_name(3) -> <<"time exceeded in-transit">>;
type_name(4) -> <<"parameter problem">>;
type_name(128) -> <<"echo request">>;
type_name(129) -> <<"echo reply">>;
type_name(130) -> <<"multicast listener query">>;
type_name(131) -> <<"multicast listener report">>;
type_name(132) -> <<"multicast listener done">>;
type_name(133) -> <<"router solicitation">>;
type_name(134) -> <<"router advertisement">>;
type_name(135) -> <<"neighbor solicitation">>;
type_name(136) -> <<"neighbor advertisement">>;
type_name(137) -> <<"redirect">>;
type_name(138) -> <<"router renumbering">>;
type_name(139) -> <<"who-are-you request">>;  % tcpdump's table names 139 and 140 so
type_name(140) -> <<"who-are-you reply">>;    % before node information's names
type_name(141) -> <<"inverse neighbor solicitation">>;
type_name(142) -> <<"inverse neighbor advertisement">>;
type_name(143) -> <<"multicast listener report v2">>;
type_name(144) -> <<"ha discovery request">>;
type_name(145) -> <<"ha discovery reply">>;
type_name(146) -> <<"mobile router solicitation">>;
type_name(147) -> <<"mobile router advertisement">>;
type_name(155) -> <<"RPL">>;
type_name(200) -> <<"mtrace response">>;
type_name(201) -> <<"mtrace message">>;
type_name(T) -> ["unknown icmp6 type (", integer_to_list(T), ")"].

%%% The text after the type's name: a printer, or {done, P} when tcpdump
%%% returns before the length it prints without -v

body(1, Code, Bin, Len, P) ->
    Codes = [{0, "unreachable route"}, {1, " unreachable prohibited"}, {2, "beyond scope"},
             {3, "unreachable address"}, {4, "unreachable port"}],
    P1 = pr(P, [", ", case lists:keyfind(Code, 1, Codes) of
                          {_, N} -> N;
                          false -> ["unknown unreach code (", integer_to_list(Code), ")"]
                      end]),
    if
        Code =:= 0; Code =:= 1; Code =:= 3 ->
            {D, P2} = addr(Bin, 32, P1),
            pr(P2, [" ", D]);
        Code =:= 2 ->
            {D, P2} = addr(Bin, 32, P1),
            {S, P3} = addr(Bin, 16, P2),
            pr(P3, [" ", D, ", source address ", S]);
        Code =:= 4 ->
            {Prot, DPort} = upper_layer(Bin, P1),
            {D, P2} = addr(Bin, 32, P1),
            % (tcpdump finds only TCP and UDP)
            case Prot of
                6 -> {S, P3} = port(tcp, DPort, P2), pr(P3, [", ", D, " tcp port ", S]);
                17 -> {S, P3} = port(udp, DPort, P2), pr(P3, [", ", D, " udp port ", S])
            end;
        P1#printer.verbose =< 1 ->
            {done, pr(P1, unknown_data("\n\t", Bin, Len))};
        true ->
            P1
    end;
body(2, _Code, Bin, _Len, P) ->
    pr(P, [", mtu ", integer_to_list(u32(Bin, 4, P))]);
body(3, 0, Bin, _Len, P) ->
    {D, P1} = addr(Bin, 32, P),
    pr(P1, [" for ", D]);
body(3, 1, _Bin, _Len, P) ->
    pr(P, " (reassembly)");
body(3, Code, _Bin, _Len, P) ->
    pr(P, [", unknown code (", integer_to_list(Code), ")"]);
body(4, Code, Bin, _Len, P) ->
    byte_size(Bin) >= 48 orelse ret(P),
    Names = [{0, "erroneous"}, {1, "next header"}, {2, "option"},
             {3, "incomplete header chain"}],
    case lists:keyfind(Code, 1, Names) of
        {_, N} -> pr(P, [", ", N, " - octet ", integer_to_list(u32(Bin, 4, P))]);
        false -> pr(P, [", code-#", integer_to_list(Code)])
    end;
body(T, _Code, Bin, _Len, P) when T =:= 128; T =:= 129 ->
    pr(P, [", id ", integer_to_list(u16(Bin, 4, P)), ", seq ", integer_to_list(u16(Bin, 6, P))]);
body(130, _Code, Bin, 24, P) ->
    mld(Bin, P);
body(130, _Code, Bin, Len, P) when Len >= 28 ->
    mldv2_query(Bin, Len, pr(P, " v2"));
body(130, _Code, _Bin, Len, P) ->
    pr(P, [" unknown-version (len ", integer_to_list(Len), ") "]);
body(T, _Code, Bin, _Len, P) when T =:= 131; T =:= 132 ->
    mld(Bin, P);
body(133, _Code, Bin, Len, #printer{verbose = V} = P) when V > 0 ->
    ewpcap_dump_fmt_ndopt:options(Bin, 8, Len - 8, P);
body(134, _Code, Bin, Len, #printer{verbose = V} = P) when V > 0 ->
    Flags = u8(Bin, 5, P),
    Text = ["\n\thop limit ", integer_to_list(u8(Bin, 4, P)), ", Flags [",
            ewpcap_dump_fmt_ndopt:bits(Flags, [{16#80, "managed"}, {16#40, "other stateful"},
                                               {16#20, "home agent"}, {16#02, "ipv6 only"}]),
            "], pref ", ewpcap_dump_fmt_ndopt:rtpref(Flags),
            ", router lifetime ", integer_to_list(u16(Bin, 6, P)),
            "s, reachable time ", integer_to_list(u32(Bin, 8, P)),
            "ms, retrans timer ", integer_to_list(u32(Bin, 12, P)), "ms"],
    ewpcap_dump_fmt_ndopt:options(Bin, 16, Len - 16, pr(P, Text));
body(135, _Code, Bin, Len, #printer{verbose = V} = P) ->
    {T, P1} = addr(Bin, 8, P),
    P2 = pr(P1, [", who has ", T]),
    case V > 0 of
        true -> ewpcap_dump_fmt_ndopt:options(Bin, 24, Len - 24, P2);
        false -> P2
    end;
body(136, _Code, Bin, Len, #printer{verbose = V} = P) ->
    {T, P1} = addr(Bin, 8, P),
    P2 = pr(P1, [", tgt is ", T]),
    case V > 0 of
        true ->
            Flags = ewpcap_dump_fmt_ndopt:bits(u32(Bin, 4, P2),
                                               [{16#80000000, "router"},
                                                {16#40000000, "solicited"},
                                                {16#20000000, "override"}]),
            ewpcap_dump_fmt_ndopt:options(Bin, 24, Len - 24,
                                          pr(P2, [", Flags [", Flags, "]"]));
        false ->
            P2
    end;
body(137, _Code, Bin, Len, #printer{verbose = V} = P) ->
    {D, P1} = addr(Bin, 24, P),
    P2 = pr(P1, [", ", D]),
    {T, P3} = addr(Bin, 8, P2),
    P4 = pr(P3, [" to ", T]),
    case V > 0 of
        true -> ewpcap_dump_fmt_ndopt:options(Bin, 40, Len - 40, P4);
        false -> P4
    end;
body(T, _Code, _Bin, _Len, P) when T =:= 141; T =:= 142 ->
    P;
body(T, _Code, Bin, Len, P) when T =:= 139; T =:= 140 ->
    ewpcap_dump_fmt_icmp6x:nodeinfo(Bin, Len, P);
body(138, _Code, Bin, _Len, P) ->
    ewpcap_dump_fmt_icmp6x:rrenum(Bin, P);
body(143, _Code, Bin, Len, P) ->
    mldv2_report(Bin, Len, P);
body(T, _Code, Bin, _Len, P) when T =:= 144; T =:= 146 ->
    pr(P, [", id 0x", hex4(u16(Bin, 4, P))]);
body(145, _Code, Bin, Len, #printer{verbose = V} = P) when V > 0 ->
    P1 = pr(P, [", id 0x", hex4(u16(Bin, 4, P))]),
    ha_addrs(Bin, 8, min(Len, byte_size(Bin)), P1);
body(147, _Code, Bin, Len, #printer{verbose = V} = P) when V > 0 ->
    P1 = pr(P, [", id 0x", hex4(u16(Bin, 4, P))]),
    Flags = u16(Bin, 6, P1),
    P2 = pr(P1, [[" " || Flags band 16#c000 =/= 0], ["M" || Flags band 16#8000 =/= 0],
                 ["O" || Flags band 16#4000 =/= 0]]),
    ewpcap_dump_fmt_ndopt:options(Bin, 8, Len - 8, P2);
body(T, _Code, _Bin, _Len, P) when T >= 133, T =< 147 ->
    % the ND messages without -v
    P;
body(155, Code, Bin, Len, P) ->
    ewpcap_dump_fmt_icmp6x:rpl(Code, {rest(Bin, 4), Len - 4}, P);
body(_Type, _Code, Bin, Len, #printer{verbose = V} = P) ->
    P1 = pr(P, [", length ", integer_to_list(Len)]),
    case V =< 1 of
        true -> {done, pr(P1, unknown_data("\n\t", Bin, Len))};
        false -> {done, P1}
    end.

ha_addrs(Bin, Off, End, P) when Off < End ->
    {A, P1} = addr(Bin, Off, P),
    ha_addrs(Bin, Off + 16, End, pr(P1, [", ", A]));
ha_addrs(_Bin, _Off, _End, P) ->
    P.

%% MLDv1: nothing unless its 24 bytes are there
mld(Bin, P) when byte_size(Bin) >= 24 ->
    {A, P1} = addr(Bin, 8, P),
    pr(P1, ["max resp delay: ", integer_to_list(u16(Bin, 4, P)), " addr: ", A]);
mld(_Bin, P) ->
    P.

mldv2_query(_Bin, Len, P) when Len < 28 ->
    pr(P, [" [invalid len ", integer_to_list(Len), "]"]);
mldv2_query(Bin, Len, #printer{verbose = V} = P) ->
    Mrc = u16(Bin, 4, P),
    Mrt = case Mrc < 32768 of
              true -> Mrc;
              false -> ((Mrc band 16#0fff) bor 16#1000) bsl (((Mrc band 16#7000) bsr 12) + 3)
          end,
    P1 = pr(P, [" [max resp delay=" ++ integer_to_list(Mrt) ++ "]" || V > 0]),
    {G, P2} = addr(Bin, 8, P1),
    P3 = pr(P2, [" [gaddr ", G]),
    P4 = case V > 0 of
             true ->
                 S = u8(Bin, 24, P3),
                 Q = u8(Bin, 25, P3),
                 Qqi = case Q < 128 of
                           true -> Q;
                           false -> ((Q band 16#0f) bor 16#10) bsl (((Q band 16#70) bsr 4) + 3)
                       end,
                 pr(P3, [[" sflag" || S band 8 =/= 0],
                         [" robustness=" ++ integer_to_list(S band 7) || S band 7 =/= 0],
                         " qqi=", integer_to_list(Qqi)]);
             false ->
                 P3
         end,
    N = u16(Bin, 26, P4),
    P5 = if
             N =:= 0 -> P4;
             Len < 28 + N * 16 -> pr(P4, " [invalid number of sources]");
             V > 1 -> pr(addrs(Bin, 28, N, pr(P4, " {")), " }");
             true -> pr(P4, [", ", integer_to_list(N), " source(s)"])
         end,
    pr(P5, "]").

addrs(_Bin, _Off, 0, P) ->
    P;
addrs(Bin, Off, N, P) ->
    {A, P1} = addr(Bin, Off, P),
    addrs(Bin, Off + 16, N - 1, pr(P1, [" ", A])).

mldv2_report(_Bin, Len, P) when Len < 8 ->
    pr(P, [" [invalid len ", integer_to_list(Len), "]"]);
mldv2_report(Bin, Len, P) ->
    N = u16(Bin, 6, P),
    P1 = pr(P, [", ", integer_to_list(N), " group record(s)"]),
    case P1#printer.verbose > 0 of
        true -> groups(Bin, Len, 8, N, P1);
        false -> P1
    end.

groups(_Bin, _Len, _Off, 0, P) ->
    P;
groups(_Bin, Len, Off, _N, P) when Len < Off + 20 ->
    pr(P, " [invalid number of groups]");
groups(Bin, Len, Off, N, P) ->
    {G, P1} = addr(Bin, Off + 4, P),
    RType = u8(Bin, Off, P1),
    Types = [{1, "is_in"}, {2, "is_ex"}, {3, "to_in"}, {4, "to_ex"}, {5, "allow"},
             {6, "block"}],
    P2 = pr(P1, [" [gaddr ", G, " ", case lists:keyfind(RType, 1, Types) of
                                          {_, T} -> T;
                                          false -> [" [v2-report-#", integer_to_list(RType), "]"]
                                      end]),
    NS = u16(Bin, Off + 2, P2),
    if
        Len < Off + 20 + NS * 16 ->
            pr(P2, [" [invalid number of sources ", integer_to_list(NS), "]"]);
        P2#printer.verbose =:= 1 ->
            groups(Bin, Len, Off + 20 + NS * 16, N - 1,
                   pr(P2, [", ", integer_to_list(NS), " source(s)]"]));
        true ->
            P3 = pr(addrs(Bin, Off + 20, NS, pr(P2, " {")), " }]"),
            groups(Bin, Len, Off + 20 + NS * 16, N - 1, P3)
    end.

%% The protocol and destination port of the packet an unreachable port
%% quotes (tcpdump's get_upperlayer): through hop-by-hop, destination,
%% routing, first-fragment and AH headers; ` [|icmp6]' when not found.
upper_layer(Bin, P) ->
    case byte_size(Bin) > 8 + 6 of
        true -> upper_layer(Bin, 8, u8(Bin, 8 + 6, P), 40, P);
        false -> ret(P)
    end.

upper_layer(Bin, Off0, NH, HLen, P) when Off0 < byte_size(Bin) ->
    Off = Off0 + HLen,
    Has = fun(At, N) -> byte_size(Bin) >= At + N end,
    if
        NH =:= 6; NH =:= 17 ->
            case Has(Off + 2, 2) of
                true -> {NH, u16(Bin, Off + 2, P)};
                false -> ret(P)
            end;
        NH =:= 0; NH =:= 60; NH =:= 43 ->
            case Has(Off + 1, 1) of
                true -> upper_layer(Bin, Off, u8(Bin, Off, P), (u8(Bin, Off + 1, P) + 1) * 8, P);
                false -> ret(P)
            end;
        NH =:= 44 ->
            case Has(Off + 2, 2) andalso u16(Bin, Off + 2, P) band 16#fff8 =:= 0 of
                true -> upper_layer(Bin, Off, u8(Bin, Off, P), 8, P);
                false -> ret(P)
            end;
        NH =:= 51 ->
            case Has(Off + 1, 1) of
                true -> upper_layer(Bin, Off, u8(Bin, Off, P), (u8(Bin, Off + 1, P) + 2) * 4, P);
                false -> ret(P)
            end;
        true ->
            ret(P)
    end;
upper_layer(_Bin, _Off, _NH, _HLen, P) ->
    ret(P).

%%% Fields, or the end of the line at the end of the captured bytes

need(Bin, Off, N, P) when byte_size(Bin) < Off + N -> ?TRUNC("icmp6", P);
need(Bin, Off, N, _P) -> binary:part(Bin, Off, N).

u8(Bin, Off, _P) when byte_size(Bin) > Off -> binary:at(Bin, Off);
u8(_Bin, _Off, P) -> ?TRUNC("icmp6", P).
u16(Bin, Off, _P) when byte_size(Bin) >= Off + 2 -> <<_:Off/binary, V:16, _/binary>> = Bin, V;
u16(_Bin, _Off, P) -> ?TRUNC("icmp6", P).
u32(Bin, Off, _P) when byte_size(Bin) >= Off + 4 -> <<_:Off/binary, V:32, _/binary>> = Bin, V;
u32(_Bin, _Off, P) -> ?TRUNC("icmp6", P).

addr(Bin, Off, P) -> host(ip6(need(Bin, Off, 16, P)), P).

-spec ret(#printer{}) -> no_return().
ret(P) -> throw({ewp_icmp6_ret, P}).

rest(Bin, N) when byte_size(Bin) > N -> binary:part(Bin, N, byte_size(Bin) - N);
rest(_Bin, _N) -> <<>>.
