%%% @doc IPv4 options in ewpcap_dump's -v lines, as tcpdump 4.99 prints
%%% them (ewpcap_dump_fmt_ip calls this): each option's name, the routes
%%% of RR, LSRR and SSRR (a comma after each address the pointer has
%%% passed), the timestamps of TS with the pointer's place (` ^ ') and
%%% the hops not recorded, RA's value, and tcpdump's `[bad length N]',
%%% `[bad ptr N]' and `[bad ts type N]'. Also the final destination of a
%%% source route, which tcpdump's TCP and UDP checksums use.
%%% @end
-module(ewpcap_dump_fmt_ipopt).

-include("ewpcap_dump_fmt.hrl").

-export([options/3, final_dst/2]).

-import(ewpcap_dump_fmt_ip, [host/2, ip4/1]).

%% @doc The options in `Bin' (the captured bytes from the first option
%% on), `Len' bytes of them by the header: `{ok, Text, P}'; where the
%% captured bytes end first, `{trunc_opt, Text, P}' inside an option
%% (tcpdump's `[truncated-option]', a return) or `{trunc, Text, P}' in
%% its type or length (tcpdump's longjmp).
-spec options(binary(), integer(), #printer{}) -> {ok | trunc | trunc_opt, iodata(), #printer{}}.
options(Bin, Len, P) ->
    opts(Bin, Len, "", [], P).

opts(_Bin, Len, _Sep, Acc, P) when Len =< 0 ->
    {ok, Acc, P};
opts(<<>>, _Len, Sep, Acc, P) ->
    {trunc, [Acc, Sep], P};
opts(<<T, _/binary>> = Bin, Len, Sep, Acc0, P) ->
    Acc = [Acc0, Sep, name(T)],
    case Bin of
        <<0, _/binary>> ->
            {ok, Acc, P};
        <<1, Rest/binary>> ->
            opts(Rest, Len - 1, ",", Acc, P);
        <<_>> ->
            {trunc, Acc, P};
        <<_, L, _/binary>> when L < 2; L > Len ->
            {ok, [Acc, bad_length(L)], P};
        <<_, L, _/binary>> when byte_size(Bin) < L ->
            {trunc_opt, Acc, P};
        <<_, L, _/binary>> ->
            case option(T, L, Bin, P) of
                {ok, Text, P1} ->
                    <<_:L/binary, Rest/binary>> = Bin,
                    opts(Rest, Len - L, ",", [Acc, Text], P1);
                {trunc_opt, Text, P1} ->
                    {trunc_opt, [Acc, Text], P1}
            end
    end.

name(0) -> "EOL";
name(1) -> "NOP";
name(7) -> "RR";
name(68) -> "timestamp";
name(130) -> "security";
name(131) -> "LSRR";
name(137) -> "SSRR";
name(148) -> "RA";
name(T) -> ["unknown ", integer_to_list(T)].

bad_length(L) -> [" [bad length ", integer_to_list(L), "]"].

%% tcpdump's pointers are unsigned: a pointer of 0 is past every length
ptr(B) -> (B - 1) band 16#FFFFFFFF.

option(T, L, Bin, P) when T =:= 7; T =:= 131; T =:= 137 ->
    route(L, Bin, P);
option(68, L, Bin, P) ->
    timestamps(L, Bin, P);
option(148, L, _Bin, P) when L < 4 ->
    {ok, bad_length(L), P};
option(148, _L, <<_:16, 0:16, _/binary>>, P) ->
    {ok, [], P};
option(148, _L, <<_:16, V:16, _/binary>>, P) ->
    {ok, [" value ", integer_to_list(V)], P};
option(_T, _L, _Bin, P) ->
    {ok, [], P}.

%% RR, LSRR, SSRR: every address slot of the option
route(L, _Bin, P) when L < 3 ->
    {ok, bad_length(L), P};
route(L, Bin, P) ->
    Ptr = ptr(binary:at(Bin, 2)),
    Head = [[bad_length(L) || (L + 1) band 3 =/= 0],
            [[" [bad ptr ", integer_to_list(binary:at(Bin, 2)), "]"]
             || Ptr < 3 orelse (Ptr + 1) band 3 =/= 0 orelse Ptr > L + 1]],
    addrs(3, L, Ptr, Bin, Head, P).

addrs(Off, L, _Ptr, _Bin, Acc, P) when Off >= L ->
    {ok, Acc, P};
addrs(Off, _L, _Ptr, Bin, Acc, P) when byte_size(Bin) < Off + 4 ->
    {trunc_opt, Acc, P};
addrs(Off, L, Ptr, Bin, Acc, P) ->
    {A, P1} = host(ip4(binary:part(Bin, Off, 4)), P),
    addrs(Off + 4, L, Ptr, Bin, [Acc, " ", A, ["," || Ptr > Off]], P1).

%% TS: timestamps, or addresses and timestamps, and the pointer's place
timestamps(L, _Bin, P) when L < 4 ->
    {ok, ["[bad length ", integer_to_list(L), "]"], P};
timestamps(L, Bin, P) ->
    Flags = binary:at(Bin, 3),
    HopLen = case Flags band 16#F of
                 0 -> 4;
                 _ -> 8
             end,
    Ptr = ptr(binary:at(Bin, 2)),
    Head = [" TS{", [["[bad length ", integer_to_list(L), "]"] || (L - 4) band (HopLen - 1) =/= 0],
            [["[bad ptr ", integer_to_list(binary:at(Bin, 2)), "]"]
             || Ptr < 4 orelse (Ptr - 4) band (HopLen - 1) =/= 0 orelse Ptr > L + 1]],
    Type = case Flags band 16#F of
               0 -> "TSONLY";
               1 -> "TS+ADDR";
               3 -> "PRESPEC";
               N -> {bad, N}
           end,
    Tail = fun(At, Acc, P1) ->
                   {ok, [Acc, [" ^ " || Ptr =:= At],
                         case Flags bsr 4 of
                             0 -> "}";
                             H -> [" [", integer_to_list(H), " hops not recorded]} "]
                         end], P1}
           end,
    case Type of
        {bad, T} ->
            Tail(0, [Head, "[bad ts type ", integer_to_list(T), "]"], P);
        _ ->
            stamps(4, L, HopLen, Ptr, Bin, [Head, Type], P, Tail)
    end.

stamps(Off, L, _HopLen, _Ptr, _Bin, Acc, P, Tail) when Off >= L ->
    Tail(Off, Acc, P);
stamps(Off, _L, HopLen, _Ptr, Bin, Acc, P, _Tail) when byte_size(Bin) < Off + HopLen ->
    {trunc_opt, Acc, P};
stamps(Off, L, HopLen, Ptr, Bin, Acc, P, Tail) ->
    <<_:(Off + HopLen - 4)/binary, Stamp:32, _/binary>> = Bin,
    {A, P1} = case HopLen of
                  8 -> host(ip4(binary:part(Bin, Off, 4)), P);
                  4 -> {"", P}
              end,
    Sep = case Ptr =:= Off of
              true -> " ^ ";
              false -> " "
          end,
    stamps(Off + HopLen, L, HopLen, Ptr, Bin, [Acc, Sep, integer_to_list(Stamp), "@", A], P1,
           Tail).

%% @doc The destination tcpdump's TCP and UDP checksums use: the last
%% address of an LSRR or SSRR option of 7 bytes or more in the options
%% `Opts', else `Dst'.
-spec final_dst(binary(), inet:ip4_address()) -> inet:ip4_address().
final_dst(<<0, _/binary>>, Dst) -> Dst;
final_dst(<<1, Rest/binary>>, Dst) -> final_dst(Rest, Dst);
final_dst(<<_, L, _/binary>>, Dst) when L < 2 -> Dst;
final_dst(<<T, L, _/binary>> = Bin, _Dst) when (T =:= 131 orelse T =:= 137), L >= 7,
                                              byte_size(Bin) >= L ->
    ip4(binary:part(Bin, L - 4, 4));
final_dst(<<_, L, _/binary>> = Bin, Dst) when byte_size(Bin) >= L ->
    <<_:L/binary, Rest/binary>> = Bin,
    final_dst(Rest, Dst);
final_dst(_Bin, Dst) -> Dst.
