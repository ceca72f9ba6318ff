%%% @doc The options of ICMPv6 neighbour-discovery messages, as tcpdump
%%% 4.99 prints them with -v (ewpcap_dump_fmt_icmp6 calls this): link-layer
%%% addresses, prefix information, MTU, redirected header, RDNSS, DNSSL,
%%% advertisement interval, home agent information and route information
%%% by their fields, others as bytes (-vv: every option's bytes too). An
%%% option of length 0 or past the captured bytes ends the line with
%%% ` [|icmp6]'.
%%% @end
-module(ewpcap_dump_fmt_ndopt).

-include("ewpcap_dump_fmt.hrl").

-export([options/4, bits/2, rtpref/1]).

-import(ewpcap_dump_fmt_ip, [pr/2, host/2, ip6/1, hex2/1]).
-import(ewpcap_dump_fmt_ipx, [unknown_data/3]).

%% @doc The options from byte `Off' of the message `Bin', `Resid' bytes
%% of them by the message's length.
-spec options(binary(), non_neg_integer(), integer(), #printer{}) -> #printer{}.
options(Bin, Off, Resid, P) ->
    opts(Bin, Off, Off, Resid, P).

opts(Bin, Start, Off, Resid, P) when Off < byte_size(Bin) ->
    byte_size(Bin) >= Off + 2 orelse ret(P),
    case binary:part(Bin, Off, 2) of
        _ when Resid =< 0 ->
            P;
        <<_, 0>> ->
            ret(P);
        <<_, L>> when Off + L * 8 > byte_size(Bin) ->
            ret(P);
        <<T, L>> ->
            P1 = pr(P, ["\n\t  ", name(T), " option (", integer_to_list(T), "), length ",
                        integer_to_list(L * 8), " (", integer_to_list(L), "): "]),
            case opt(T, L, Bin, Start, Off, P1) of
                {stop, P2} ->
                    P2;
                P2 ->
                    P3 = case P2#printer.verbose > 1 of
                             true -> pr(P2, unknown_data("\n\t    ", part(Bin, Off + 2),
                                                         L * 8 - 2));
                             false -> P2
                         end,
                    opts(Bin, Start, Off + L * 8, Resid - L * 8, P3)
            end
    end;
opts(_Bin, _Start, _Off, _Resid, P) ->
    P.

name(1) -> "source link-address";
name(2) -> "destination link-address";
name(3) -> "prefix info";
name(4) -> "redirected header";
name(5) -> "mtu";
name(25) -> "rdnss";
name(31) -> "dnssl";
name(7) -> "advertisement interval";
name(8) -> "homeagent information";
name(24) -> "route info";
name(_) -> "unknown".

opt(T, L, Bin, _Start, Off, P) when T =:= 1; T =:= 2 ->
    pr(P, lists:join(":", [hex2(B) || <<B>> <= binary:part(Bin, Off + 2, L * 8 - 2)]));
opt(3, L, Bin, _Start, Off, P) ->
    {A, P1} = addr(Bin, Off + 16, P),
    pr(P1, [A, "/", integer_to_list(u8(Bin, Off + 2, P1)), ["badlen" || L =/= 4],
            ", Flags [", bits(u8(Bin, Off + 3, P1), [{16#80, "onlink"}, {16#40, "auto"},
                                                     {16#20, "router"}]),
            "], valid time ", lifetime(u32(Bin, Off + 4, P1)),
            ", pref. time ", lifetime(u32(Bin, Off + 8, P1))]);
opt(4, L, Bin, Start, _Off, P) ->
    % tcpdump dumps from the first option, not this one
    pr(P, unknown_data("\n\t    ", part(Bin, Start), L * 8));
opt(5, L, Bin, _Start, Off, P) ->
    pr(P, [" ", integer_to_list(u32(Bin, Off + 4, P)), ["bad option length" || L =/= 1]]);
opt(25, L, Bin, _Start, Off, P) ->
    P1 = pr(P, [" lifetime ", integer_to_list(u32(Bin, Off + 4, P)), "s,"]),
    lists:foldl(fun(I, Acc) ->
                        {A, Acc1} = addr(Bin, Off + 8 + I * 16, Acc),
                        pr(Acc1, [" addr: ", A])
                end, P1, lists:seq(0, (L - 1) div 2 - 1));
opt(31, L, Bin, _Start, Off, P) ->
    P1 = pr(P, [" lifetime ", integer_to_list(u32(Bin, Off + 4, P)), "s, domain(s):"]),
    domains(Bin, Off + 8, Off + L * 8, P1);
opt(7, _L, Bin, _Start, Off, P) ->
    pr(P, [" ", integer_to_list(u32(Bin, Off + 4, P)), "ms"]);
opt(8, _L, Bin, _Start, Off, P) ->
    pr(P, [" preference ", integer_to_list(u16(Bin, Off + 4, P)), ", lifetime ",
           integer_to_list(u16(Bin, Off + 6, P))]);
opt(24, L, Bin, _Start, Off, P) ->
    byte_size(Bin) >= Off + 8 orelse ret(P),
    Prefix = case L of
                 1 -> <<0:128>>;
                 2 -> <<(need(Bin, Off + 8, 8, P))/binary, 0:64>>;
                 3 -> need(Bin, Off + 8, 16, P);
                 _ -> ret(P)
             end,
    {A, P1} = host(ip6(Prefix), P),
    pr(P1, [" ", A, "/", integer_to_list(u8(Bin, Off + 2, P1)),
            ", pref=", rtpref(u8(Bin, Off + 3, P1)),
            ", lifetime=", lifetime(u32(Bin, Off + 4, P1))]);
opt(_T, L, Bin, _Start, Off, #printer{verbose = V} = P) when V =< 1 ->
    {stop, pr(P, unknown_data("\n\t  ", part(Bin, Off + 2), L * 8 - 2))};
opt(_T, _L, _Bin, _Start, _Off, P) ->
    P.

%% DNSSL: the names (labels of printable ASCII, no compression) up to a
%% zero byte or the option's end
domains(Bin, Off, End, P) when Off < End ->
    case u8(Bin, Off, P) of
        0 -> P;
        _ -> {Name, Next} = labels(Bin, Off, P, []),
             domains(Bin, Next, End, pr(P, [" ", Name]))
    end;
domains(_Bin, _Off, _End, P) ->
    P.

labels(Bin, Off, P, Acc) ->
    case u8(Bin, Off, P) of
        0 -> {lists:reverse(Acc), Off + 1};
        N when N < 64 -> labels(Bin, Off + 1 + N, P, [".", need(Bin, Off + 1, N, P) | Acc]);
        _ -> ret(P)
    end.

%% @doc tcpdump's bittok2str: the names of the bits set, or "none".
-spec bits(non_neg_integer(), [{non_neg_integer(), string()}]) -> iolist().
bits(V, Names) ->
    case [N || {B, N} <- Names, V band B =/= 0] of
        [] -> "none";
        Set -> lists:join(", ", Set)
    end.

%% @doc A router preference (bits 3-4).
-spec rtpref(byte()) -> string().
rtpref(V) -> lists:nth(((V band 16#18) bsr 3) + 1, ["medium", "high", "rsv", "low"]).

lifetime(16#ffffffff) -> "infinity";
lifetime(V) -> [integer_to_list(V), "s"].

part(Bin, Off) when Off >= byte_size(Bin) -> <<>>;
part(Bin, Off) -> binary:part(Bin, Off, byte_size(Bin) - Off).

need(Bin, Off, N, P) when byte_size(Bin) < Off + N -> ?TRUNC("icmp6", P);
need(Bin, Off, N, _P) -> binary:part(Bin, Off, N).

u8(Bin, Off, P) -> binary:first(need(Bin, Off, 1, P)).
u16(Bin, Off, P) -> binary:decode_unsigned(need(Bin, Off, 2, P)).
u32(Bin, Off, P) -> binary:decode_unsigned(need(Bin, Off, 4, P)).

addr(Bin, Off, P) -> host(ip6(need(Bin, Off, 16, P)), P).

%% tcpdump's goto trunc (a return, not its longjmp): ewpcap_dump_fmt_icmp6
%% prints the marker
-spec ret(#printer{}) -> no_return().
ret(P) -> throw({ewp_icmp6_ret, P}).
