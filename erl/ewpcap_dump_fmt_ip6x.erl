%%% @doc IPv6 extension headers as tcpdump 4.99 prints them, for
%%% ewpcap_dump_fmt_ip: hop-by-hop and destination options (their
%%% options with -v, as tcpdump checks them for a jumbo payload, whose
%%% length replaces a payload length of 0),
%%% fragments, routing headers (types 0, 2 and 4) and mobility headers,
%%% then the upper layer (ewpcap_dump_fmt_ip:demux/5). Written from
%%% tcpdump's behaviour; test/ewpcap_dump_diff_SUITE.erl compares the
%%% two.
%%% @end
-module(ewpcap_dump_fmt_ip6x).

-include("ewpcap_dump_fmt.hrl").

-export([next/6, final_dst/3]).

-import(ewpcap_dump_fmt_ip, [pr/2, host/2, ip6/1, hex/1, hex2/1, hex4/1]).
-import(ewpcap_dump_fmt_ipx, [hex8/1]).

%% @doc The headers from next header `Next' on: `Bin' the captured bytes
%% after the IPv6 header, `Len' what the payload length leaves, `Ctx'
%% the upper layers' context (with the hop limit), `PayLen' the header's payload length.
-spec next(byte(), binary(), integer(), tuple(), non_neg_integer(), #printer{}) -> #printer{}.
next(Next, Bin, Len, Ctx, PayLen, P) ->
    next(Next, Bin, Len, Ctx, #{plen => PayLen, hbh => false, start => Len, jumbo => none}, P,
         first).

next(0, _Bin, _Len, _Ctx, #{hbh := true}, P, _) ->
    pr(P, "[The Hop-by-Hop Options header was already found] (invalid)");
next(Next, Bin, Len, Ctx, St, P, _) when Next =:= 0; Next =:= 60 ->
    {Name, Proto} = case Next of
                        0 -> {"HBH ", "hbhopt"};
                        60 -> {"DSTOPT ", "dstopt"}
                    end,
    case Bin of
        <<Nh, HL, _/binary>> ->
            N = (HL + 1) * 8,
            case Bin of
                <<_:16, Opts:(N - 2)/binary, Rest/binary>> ->
                    P1 = pr(P, Name),
                    Check = Next =:= 0 orelse P#printer.verbose > 0,
                    {Ok, P2} = case Check of
                                   true -> options(Opts, 0, {Next, St, false}, P1);
                                   false -> {ok, P1}
                               end,
                    if
                        Next =:= 0, not is_integer(Ok), map_get(plen, St) =:= 0 ->
                            % (after the marker of options cut short)
                            pr(P2, [[[" [|", Proto, "]"] || Ok =:= trunc],
                                    "[No valid Jumbo Payload Hop-by-Hop option found] (invalid)"]);
                        Ok =:= trunc ->
                            ?TRUNC_RET(Proto, P2);
                        is_integer(Ok) ->
                            more(Nh, Rest, Len, N, Ctx, St#{hbh := true, jumbo := Ok}, P2);
                        true ->
                            more(Nh, Rest, Len, N, Ctx, St#{hbh := map_get(hbh, St) orelse Next =:= 0}, P2)
                    end;
                _ ->
                    ?TRUNC_RET(Proto, P)
            end;
        _ ->
            ?TRUNC(Proto, P)
    end;
next(44, Bin, Len, Ctx, St, P, _) ->
    % the length left after it, unsigned in tcpdump (a size_t)
    Left = integer_to_list((Len - 8) band 16#FFFFFFFFFFFFFFFF),
    P1 = case {P#printer.verbose, Bin} of
             {0, <<_:16, Off:13, _:3, _/binary>>} ->
                 pr(P, ["frag (", integer_to_list(Off * 8), "|", Left, ")"]);
             {V, <<_:16, Off:13, _:3, Id:32, _/binary>>} when V > 0 ->
                 pr(P, ["frag (0x", hex8(Id), ":", integer_to_list(Off * 8), "|", Left, ")"]);
             _ ->
                 ?TRUNC("frag6", P)
         end,
    <<Nh, _, Off1:13, _:3, _/binary>> = Bin,
    case {Off1, Bin} of
        {0, <<_:8/binary, Rest/binary>>} when Rest =/= <<>> ->
            % any fragment header makes the packet "fragmented" for tcpdump
            more(Nh, Rest, Len, 8, setelement(4, Ctx, true), St, pr(P1, " "));
        {0, _} ->
            pr(P1, " ");
        _ ->
            P1
    end;
next(43, <<>>, _Len, _Ctx, _St, P, _) ->
    ?TRUNC_RET("ip6", P);
next(43, Bin, Len, Ctx, St, P, _) ->
    routing(Bin, Len, Ctx, St, pr(P, "RT6"));
next(Next, Bin, _Len, _Ctx, _St, P, _) when Next =:= 135; Next =:= 62 ->
    mobility(Bin, P);
next(Next, Bin, Len, Ctx, #{plen := 0, start := Start, jumbo := J}, P, _) ->
    % a payload length of 0: the upper layer's length from a Jumbo
    % Payload option; without one, none (and a header before it is cut
    % short)
    Advance = 40 + Start - Len,
    if
        J =:= none, Advance =:= 40 ->
            ewpcap_dump_fmt_ip:demux(Next, <<>>, 0, Ctx, P);
        J =:= none; J + 40 < Advance ->
            ?TRUNC_RET("ip6", P);
        true ->
            P1 = case Start + 40 < J + 40 of
                     true -> pr(P, ["truncated-ip6 - ", integer_to_list(J - Start),
                                    " bytes missing!"]);
                     false -> P
                 end,
            ewpcap_dump_fmt_ip:demux(Next, ewpcap_dump_fmt_ip:cut(Bin, J + 40 - Advance),
                                     J + 40 - Advance, Ctx, P1)
    end;
next(Next, Bin, Len, Ctx, _St, P, _) ->
    ewpcap_dump_fmt_ip:demux(Next, Bin, Len, Ctx, P).

%% After a header of Adv bytes (the next one is printed even when none
%% of it is captured, as tcpdump's).
more(Next, Bin, Len, Adv, Ctx, St, P) when Len >= Adv ->
    next(Next, Bin, Len - Adv, Ctx, St, P, more);
more(_Next, _Bin, _Len, _Adv, _Ctx, _St, P) ->
    pr(P, " [|ip6]").

%%% Options of hop-by-hop and destination headers: {ok | trunc, P}, or
%%% {Length, P} after a valid Jumbo Payload option

options(Opts, I, Acc, P) when I >= byte_size(Opts) ->
    {case Acc of {_, _, {valid, J}} -> J; _ -> ok end,
     pr(P, [" " || P#printer.verbose > 0])};
options(Opts, I, Acc, P) ->
    Len = byte_size(Opts),
    V = P#printer.verbose > 0,
    case Opts of
        <<_:I/binary, 0, _/binary>> ->
            options(Opts, I + 1, Acc, pr(P, ["(pad1)" || V]));
        <<_:I/binary, _>> ->
            {trunc, P};
        <<_:I/binary, _, OL, _/binary>> when I + OL + 2 > Len ->
            {trunc, P};
        <<_:I/binary, T, OL, Data/binary>> ->
            Next = fun(Text, A) -> options(Opts, I + OL + 2, A, pr(P, [Text || V])) end,
            case T of
                1 ->
                    Next("(padn)", Acc);
                5 when OL =/= 2 ->
                    {trunc, pr(P, ["(rtalert: invalid len ", integer_to_list(OL), ")"])};
                5 ->
                    <<A:16, _/binary>> = Data,
                    Next(["(rtalert: 0x", hex4(A), ") "], Acc);
                16#C2 when OL =/= 4 ->
                    {trunc, pr(P, ["(jumbo: invalid len ", integer_to_list(OL), ")"])};
                16#C2 ->
                    <<J:32, _/binary>> = Data,
                    {Hdr, St, Seen} = Acc,
                    JT = integer_to_list(J),
                    if
                        Seen =/= false -> Next(["(jumbo: ", JT, " - already seen) "], Acc);
                        Hdr =:= 60 -> Next(["(jumbo: ", JT, " - not a hop-by-hop option) "], {Hdr, St, true});
                        map_get(plen, St) =/= 0 -> Next(["(jumbo: ", JT, " - payload len != 0) "], {Hdr, St, true});
                        J < 65536 -> Next(["(jumbo: ", JT, " - < 65536) "], {Hdr, St, true});
                        true -> Next(["(jumbo: ", JT, ") "], {Hdr, St, {valid, J}})
                    end;
                16#C9 when Len - I < 18 ->
                    {trunc, pr(P, "(homeaddr: trunc)")};
                16#C9 ->
                    <<A:16/binary, _/binary>> = Data,
                    {H, P1} = host(ip6(A), P),
                    options(Opts, I + OL + 2, Acc, pr(P1, [["(homeaddr: ", H, ") "] || V]));
                _ ->
                    Next(["(opt_type 0x", hex2(T), ": len=", integer_to_list(OL), ")"], Acc)
            end
    end.

%%% Routing header

%% @doc The destination tcpdump's checksums use (its ip6_finddst): the
%% last address of a routing header of type 0 or 2 (as far as captured),
%% the first segment of type 4, found through hop-by-hop, destination,
%% fragment and mobility headers; else `Dst'.
-spec final_dst(byte(), binary(), inet:ip6_address()) -> inet:ip6_address().
final_dst(Nh, <<Next, HL, _/binary>> = Bin, Dst) when Nh =:= 0; Nh =:= 60; Nh =:= 62;
                                                      Nh =:= 135 ->
    final_dst(Next, skip(Bin, (HL + 1) * 8), Dst);
final_dst(44, <<Next, _/binary>> = Bin, Dst) ->
    final_dst(Next, skip(Bin, 8), Dst);
final_dst(43, <<_, HL, Type, _, _:32, Addrs/binary>>, Dst) when (Type =:= 0 orelse Type =:= 2),
                                                               HL rem 2 =:= 0 ->
    case [A || <<A:16/binary>> <= binary:part(Addrs, 0, min(byte_size(Addrs) div 16,
                                                              HL div 2) * 16)] of
        [] -> Dst;
        As -> ip6(lists:last(As))
    end;
final_dst(43, <<_, HL, 4, _, _:32, First:16/binary, _/binary>>, _Dst) when HL rem 2 =:= 0 ->
    ip6(First);
final_dst(_Nh, _Bin, Dst) ->
    Dst.

skip(Bin, N) when byte_size(Bin) > N -> binary:part(Bin, N, byte_size(Bin) - N);
skip(_Bin, _N) -> <<>>.

routing(<<_, HL, _/binary>> = Bin, _Len, _Ctx, _St, P) when byte_size(Bin) < 4 ->
    % the fields as far as they are captured
    P1 = pr(P, [" (len=", integer_to_list(HL)]),
    case Bin of
        <<_, _, Type>> ->
            ?TRUNC("rt6", pr(P1, [", type=", integer_to_list(Type), [" [Deprecated]" || Type =:= 0]]));
        _ ->
            ?TRUNC("rt6", P1)
    end;
routing(Bin, Len, Ctx, St, P) ->
    case Bin of
        <<Nh, HL, Type, SegLeft, Rest/binary>> ->
            P1 = pr(P, [" (len=", integer_to_list(HL), ", type=", integer_to_list(Type),
                        [" [Deprecated]" || Type =:= 0], ", segleft=", integer_to_list(SegLeft)]),
            Adv = (HL + 1) * 8,
            case Type of
                T when T =:= 0; T =:= 2 ->
                    case Rest of
                        <<Rsv:32, Addrs/binary>> ->
                            P2 = pr(P1, [[", rsv=0x", hex(Rsv)] || Rsv =/= 0 orelse P1#printer.verbose > 0]),
                            case HL rem 2 of
                                1 ->
                                    pr(P2, [" [invalid length ", integer_to_list(HL), "] (invalid)"]);
                                0 ->
                                    P3 = route_addrs(Addrs, 0, HL div 2, P2),
                                    rt_more(Nh, Bin, Adv, Len, Ctx, St, pr(P3, ") "))
                            end;
                        _ ->
                            ?TRUNC("rt6", P1)
                    end;
                4 ->
                    case Rest of
                        <<Last, Flags, Tag:16, Addrs/binary>> ->
                            P2 = pr(P1, [", last-entry=", integer_to_list(Last),
                                         [[", flags=0x", hex(Flags)] || Flags =/= 0 orelse P1#printer.verbose > 0],
                                         ", tag=", hex(Tag)]),
                            % as many as the header's length holds
                            P3 = route_addrs(Addrs, 0, min(Last + 1, HL div 2), P2),
                            rt_more(Nh, Bin, Adv, Len, Ctx, St, pr(P3, ") "));
                        <<Last, _/binary>> ->
                            ?TRUNC("rt6", pr(P1, [", last-entry=", integer_to_list(Last)]));
                        _ ->
                            ?TRUNC("rt6", P1)
                    end;
                _ ->
                    pr(P1, " (unknown type) (invalid)")
            end;
        _ ->
            ?TRUNC("rt6", P)
    end.

route_addrs(_Bin, N, N, P) ->
    P;
route_addrs(<<A:16/binary, Rest/binary>>, I, N, P) ->
    {H, P1} = host(ip6(A), P),
    route_addrs(Rest, I + 1, N, pr(P1, [", [", integer_to_list(I), "]", H]));
route_addrs(_Bin, _I, _N, P) ->
    ?TRUNC("rt6", P).

rt_more(Nh, Bin, Adv, Len, Ctx, St, P) ->
    Rest = binary:part(Bin, min(Adv, byte_size(Bin)), byte_size(Bin) - min(Adv, byte_size(Bin))),
    more(Nh, Rest, Len, Adv, Ctx, St, P).

%%% Mobility (next header 135 and the old 62)

%% A mobility header: tcpdump prints no more of the packet.
mobility(<<_, HLen, Rest/binary>>, P) ->
    MhLen = (HLen + 1) * 8,
    case Rest of
        <<Type, _/binary>> ->
            Min = case Type of
                      0 -> 8; 1 -> 16; 2 -> 16; 3 -> 24; 4 -> 24; 5 -> 12; 6 -> 12; 7 -> 24;
                      _ -> 0
                  end,
            case MhLen < Min of
                true ->
                    ?TRUNC_RET("mobility", pr(P, ["(header length ", integer_to_list(MhLen),
                                                  " is too small for type ",
                                                  integer_to_list(Type), ")"]));
                false ->
                    Names = {"BRR", "HoTI", "CoTI", "HoT", "CoT", "BU", "BA", "BE"},
                    P1 = pr(P, ["mobility: ", case Type =< 7 of
                                                   true -> element(Type + 1, Names);
                                                   false -> ["type-#", integer_to_list(Type)]
                                               end]),
                    Bin = <<0, HLen, Rest/binary>>,
                    mobility_body(Type, Bin, MhLen, P1)
            end;
        _ ->
            ?TRUNC("mobility", P)
    end;
mobility(_Bin, P) ->
    ?TRUNC_RET("mobility", P).

mobility_body(Type, Bin, _MhLen, P) when Type > 7 ->
    <<_, HLen, _/binary>> = Bin,
    pr(P, [" len=", integer_to_list(HLen)]);
mobility_body(Type, Bin, MhLen, P) ->
    V = P#printer.verbose > 0,
    Who = case Type of 1 -> "Home"; 3 -> "Home"; _ -> "Care-of" end,
    Get = fun(Off, Size, PT) ->
                  case Bin of
                      <<_:Off/binary, X:Size/unit:8, _/binary>> -> X;
                      _ -> ?TRUNC("mobility", PT)
                  end
          end,
    Cookie = fun(Off, Text, PT) ->
                     A = Get(Off, 4, PT),
                     B = Get(Off + 4, 4, PT),
                     pr(PT, [" ", Who, Text, hex8(A), ":", hex8(B)])
             end,
    {HLen, P1} =
        case Type of
            0 ->
                {8, P};
            T when T =:= 1; T =:= 2 ->
                {16, case V of true -> Cookie(8, " Init Cookie=", P); false -> P end};
            T when T =:= 3; T =:= 4 ->
                Pa = pr(P, [" nonce id=0x", hex(Get(6, 2, P))]),
                Pb = case V of true -> Cookie(8, " Init Cookie=", Pa); false -> Pa end,
                {24, case V of true -> Cookie(16, " Keygen Token=", Pb); false -> Pb end};
            5 ->
                Pa = pr(P, [" seq#=", integer_to_list(Get(6, 2, P))]),
                F = Get(8, 1, Pa),
                Pb = pr(Pa, [[[" " || F band 16#F0 =/= 0],
                              [C || {Bit, C} <- [{16#80, $A}, {16#40, $H}, {16#20, $L}, {16#10, $K}],
                                    F band Bit =/= 0]]]),
                {12, pr(Pb, [" lifetime=", integer_to_list(Get(10, 2, Pb) bsl 2)])};
            6 ->
                Pa = pr(P, [" status=", integer_to_list(Get(6, 1, P))]),
                Pb = pr(Pa, [" K" || Get(7, 1, Pa) band 16#80 =/= 0]),
                Pc = pr(Pb, [" seq#=", integer_to_list(Get(8, 2, Pb))]),
                {12, pr(Pc, [" lifetime=", integer_to_list(Get(10, 2, Pc) bsl 2)])};
            7 ->
                Pa = pr(P, [" status=", integer_to_list(Get(6, 1, P))]),
                case Bin of
                    <<_:8/binary, A:16/binary, _/binary>> ->
                        {H, Pb} = host(ip6(A), Pa),
                        {24, pr(Pb, [" homeaddr ", H])};
                    _ ->
                        ?TRUNC("mobility", Pa)
                end
        end,
    case V of
        true -> mobility_opts(Bin, HLen, MhLen, P1);
        false -> P1
    end.

%% -v: the options after the fixed fields, up to the header's length
mobility_opts(_Bin, I, MhLen, P) when I >= MhLen ->
    P;
mobility_opts(Bin, I, MhLen, P) ->
    case Bin of
        <<_:I/binary, 0, _, _/binary>> ->
            mobility_opts(Bin, I + 1, MhLen, pr(P, "(pad1)"));
        <<_:I/binary, 0>> ->
            ?TRUNC_RET("mobility", P);
        <<_:I/binary, _>> ->
            ?TRUNC_RET("mobility", P);
        <<_:I/binary, _, OL, _/binary>> when I + 1 >= MhLen; I + OL + 2 > MhLen ->
            % the option runs past the header
            ?TRUNC_RET("mobility", P);
        <<_:I/binary, T, OL, _/binary>> ->
            OptLen = OL + 2,
            case byte_size(Bin) > I + OptLen of
                false -> ?TRUNC_RET("mobility", P);
                true -> mobility_opts(Bin, I + OptLen, MhLen, mobility_opt(T, OL, Bin, I, MhLen, P))
            end;
        _ ->
            ?TRUNC("mobility", P)
    end.

mobility_opt(1, _OL, _Bin, _I, _MhLen, P) ->
    pr(P, "(padn)");
mobility_opt(2, _OL, Bin, I, _MhLen, P) ->
    <<_:I/binary, _:16, R:16, _/binary>> = Bin,
    pr(P, ["(refresh: ", integer_to_list(R bsl 2), ")"]);
mobility_opt(5, _OL, _Bin, _I, _MhLen, P) ->
    pr(P, "(auth)");
mobility_opt(T, OL, _Bin, _I, _MhLen, P) ->
    pr(P, ["(type-0x", hex2(T), ": len=", integer_to_list(OL), ")"]).
