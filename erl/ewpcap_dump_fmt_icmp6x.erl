%%% @doc The rarer ICMPv6 messages ewpcap_dump_fmt_icmp6 hands on, as
%%% tcpdump 4.99 prints them: node information queries and replies (RFC
%%% 4620, with KAME's who-are-you), router renumbering (RFC 2894) and
%%% RPL's control messages (RFC 6550; with -v their fields, -vv their
%%% options' names and lengths).
%%% Where tcpdump checks the captured bytes and returns, the marker
%%% ` [|icmp6]' ends their text and the message's line goes on.
%%% @end
-module(ewpcap_dump_fmt_icmp6x).

-include("ewpcap_dump_fmt.hrl").

-export([nodeinfo/3, rrenum/2, rpl/3]).

-import(ewpcap_dump_fmt_ip, [pr/2, host/2, ip4/1, ip6/1, hex/1]).

-define(MARK, " [|icmp6]").

%%% Node information

%% @doc A node information query (139) or reply (140) of `Len' bytes,
%% `Bin' the bytes captured of it.
-spec nodeinfo(binary(), non_neg_integer(), #printer{}) -> #printer{}.
nodeinfo(<<139, _/binary>> = Bin, _Len, P) when byte_size(Bin) =:= 12 ->
    pr(P, " who-are-you request");
nodeinfo(<<139, _/binary>> = Bin, _Len, P) when byte_size(Bin) < 16 ->
    pr(P, [" node information query", ?MARK]);
nodeinfo(<<139, Code, _:16, QType:16, Flags:16, _:8/binary, Subj/binary>> = Bin, _Len,
         #printer{verbose = V} = P) ->
    Siz = byte_size(Bin),
    P1 = pr(P, [" node information query (", qtype(QType, Flags, query)]),
    if
        QType =:= 0; QType =:= 1 ->
            pr(P1, [[", invalid len" || Siz =/= 16, V > 0], ")"]);
        Siz =:= 16 ->
            pr(P1, ", 03 draft)");
        true ->
            pr(subject(Code, Subj, V, P1), ")")
    end;
nodeinfo(<<140, _/binary>> = Bin, Len, P) when Len > byte_size(Bin) ->
    pr(P, ?MARK);
nodeinfo(<<140, _/binary>> = Bin, _Len, P) when byte_size(Bin) < 16 ->
    pr(P, ?MARK);
nodeinfo(<<140, Code, _:16, QType:16, Flags:16, _:8/binary, Rest/binary>> = Bin, _Len,
         #printer{verbose = V} = P) ->
    Bad = [", invalid length" || byte_size(Bin) =/= 16, V > 0],
    P1 = pr(P, " node information reply ("),
    case Code of
        0 ->
            Comma = [", " || V > 0],
            P2 = pr(P1, ["success" || V > 0]),
            pr(reply(QType, Flags, Rest, Comma, Bad, P2), ")");
        1 -> pr(P1, ["refused", Bad, ")"]);
        2 -> pr(P1, ["unknown", Bad, ")"]);
        _ -> pr(P1, ")")
    end.

qtype(0, _Flags, _) -> "noop";
qtype(1, 0, _) -> "supported qtypes";
qtype(1, Flags, _) -> ["supported qtypes [", ["C" || Flags band 1 =/= 0], "]"];
qtype(2, _Flags, _) -> "DNS name";
qtype(3, 0, _) -> "node addresses";
qtype(3, Flags, Kind) ->
    Bits = [{16#40, "a"}, {16#20, "G"}, {16#10, "S"}, {16#08, "L"}, {16#04, "C"}, {16#02, "A"}]
        ++ [{16#01, "T"} || Kind =:= reply],
    ["node addresses [", [N || {B, N} <- Bits, Flags band B =/= 0], "]"];
qtype(_, _Flags, _) -> "unknown".

subject(0, Subj, V, P) when byte_size(Subj) >= 16 ->
    case Subj of
        <<A:16/binary>> -> {H, P1} = host(ip6(A), P), pr(P1, [", subject=", H]);
        _ -> pr(P, [", invalid subject len" || V > 0])
    end;
subject(2, Subj, V, P) when byte_size(Subj) >= 4 ->
    case Subj of
        <<A:4/binary>> -> {H, P1} = host(ip4(A), P), pr(P1, [", subject=", H]);
        _ -> pr(P, [", invalid subject len" || V > 0])
    end;
subject(C, _Subj, _V, P) when C =:= 0; C =:= 2 ->
    P;
subject(1, <<>>, _V, P) ->
    throw({ewp_trunc, "icmp6", pr(P, ", subject=DNS name")});
subject(1, <<N, Name/binary>> = Subj, V, P) when N =:= byte_size(Subj) - 1 ->
    pr(P, [", subject=DNS name", [", 03 draft" || V > 0], ", \"", chars(Name), "\""]);
subject(1, Subj, _V, P) ->
    pr(P, [", subject=DNS name", dnsname(Subj)]);
subject(_, _Subj, _V, P) ->
    pr(P, ", unknown subject").

reply(0, _Flags, Rest, Comma, _Bad, P) ->
    pr(P, [Comma, "noop", [", invalid length" || Rest =/= <<>>, P#printer.verbose > 0]]);
reply(1, Flags, _Rest, Comma, _Bad, P) ->
    pr(P, [Comma, qtype(1, Flags, reply)]);
reply(2, Flags, Rest, Comma, _Bad, P) ->
    Name = case Rest of
               <<TTL:32, N, S/binary>> when N =:= byte_size(S) ->
                   [[", 03 draft" || P#printer.verbose > 0], ", \"", chars(S), "\"", ttl(Flags, TTL)];
               <<TTL:32, D/binary>> when D =/= <<>> ->
                   [dnsname(D), ttl(Flags, TTL)];
               _ ->
                   throw({ewp_trunc, "icmp6", pr(P, [Comma, "DNS name"])})
           end,
    pr(P, [Comma, "DNS name", Name]);
reply(3, Flags, Rest, Comma, _Bad, P) ->
    P1 = node_addrs(Rest, pr(P, [Comma, "node addresses"])),
    [_ | Bits] = qtype(3, Flags, reply),
    pr(P1, [[" [" | Bits] || Flags =/= 0]);
reply(_, _Flags, _Rest, Comma, _Bad, P) ->
    pr(P, [Comma, "unknown"]).

ttl(Flags, TTL) when Flags band 1 =/= 0 -> [" [TTL=", integer_to_list(TTL), "]"];
ttl(_Flags, _TTL) -> [].

node_addrs(<<TTL:32, A:16/binary, Rest/binary>>, P) ->
    {H, P1} = host(ip6(A), P),
    node_addrs(Rest, pr(P1, [" ", H, "(", integer_to_list(TTL), ")"]));
node_addrs(_Rest, P) ->
    P.

%% A DNS name without compression, as tcpdump's dnsname_print
dnsname(Bin) -> [", \"", labels(Bin), "\""].

labels(<<>>) -> [];
labels(<<0>>) -> ".";
labels(<<0, 0>>) -> [];
labels(<<0, _/binary>>) -> "???";
labels(<<N, Rest/binary>>) when N > byte_size(Rest) -> "???";
labels(<<N, Rest/binary>>) ->
    <<L:N/binary, More/binary>> = Rest,
    [chars(L), case More of
                   <<C, _, _/binary>> when C =/= 0 -> ".";
                   _ -> ""
               end | labels(More)].

%% tcpdump's fn_print_char: M- for bytes past ASCII, ^ for controls
chars(Bin) -> [char(C) || <<C>> <= Bin].

char(C) when C >= 128 -> ["M-", char(C band 127)];
char(C) when C < 32; C =:= 127 -> [$^, C bxor 64];
char(C) -> C.

%%% Router renumbering

%% @doc A router renumbering message, `Bin' the bytes captured of it.
-spec rrenum(binary(), #printer{}) -> #printer{}.
rrenum(Bin, P) when byte_size(Bin) < 16 ->
    pr(P, ?MARK);
rrenum(<<_, Code, _:16, Seq:32, Seg, Flags, MaxDelay:16, Rsvd:32, Rest/binary>>,
       #printer{verbose = V} = P) ->
    Name = case Code of
               0 -> "command";
               1 -> "result";
               255 -> "sequence number reset";
               _ -> ["code-#", integer_to_list(Code)]
           end,
    P1 = pr(P, [", ", Name, ", seq=", integer_to_list(Seq)]),
    P2 = case V > 0 of
             true ->
                 F = [N || {B, N} <- [{16#80, "T"}, {16#40, "R"}, {16#20, "A"}, {16#10, "S"},
                                      {16#08, "P"}], Flags band B =/= 0],
                 pr(P1, ["[", [[F, ","] || Flags =/= 0], "seg=", integer_to_list(Seg),
                         ",maxdelay=", integer_to_list(MaxDelay),
                         [["rsvd=0x", hex(Rsvd)] || Rsvd =/= 0], "]"]);
             false ->
                 P1
         end,
    case Code of
        0 -> match(Rest, P2);
        _ -> P2
    end.

sep(#printer{verbose = V}) when V > 1 -> "\n\t";
sep(_P) -> " ".

match(<<MCode, MLen, Ord, MatchLen, Min, Max, _:16, Prefix:16/binary, Rest/binary>>, P) ->
    Op = case MCode of
             1 -> "add";
             2 -> "change";
             3 -> "setglobal";
             _ -> ["#", integer_to_list(MCode)]
         end,
    P1 = pr(P, [sep(P), "match(", Op,
                [[",ord=", integer_to_list(Ord), ",min=", integer_to_list(Min),
                  ",max=", integer_to_list(Max)] || P#printer.verbose > 0],
                ",", inet:ntoa(ip6(Prefix)), "/", integer_to_list(MatchLen), ")"]),
    N = MLen - 3,
    case N rem 4 of
        0 when N >= 0 -> uses(Rest, N div 4, P1);
        _ -> pr(P1, ?MARK)
    end;
match(_Bin, P) ->
    pr(P, ?MARK).

uses(_Bin, 0, P) ->
    P;
uses(<<UseLen, KeepLen, Mask, RaFlags, VL:32, PL:32, F, _:24, Prefix:16/binary, Rest/binary>>,
     N, P) ->
    Time = fun(16#ffffffff) -> "infty"; (T) -> integer_to_list(T) end,
    P1 = pr(P, [sep(P), "use(",
                [[["V" || F band 16#80 =/= 0], ["P" || F band 16#40 =/= 0], ","] || F =/= 0],
                [["mask=0x", hex(Mask), ",raflags=0x", hex(RaFlags), ",vltime=", Time(VL),
                  ",pltime=", Time(PL), ","] || P#printer.verbose > 0],
                inet:ntoa(ip6(Prefix)), "/", integer_to_list(UseLen), "/",
                integer_to_list(KeepLen), ")"]),
    uses(Rest, N - 1, P1);
uses(_Bin, _N, P) ->
    pr(P, ?MARK).

%%% RPL

%% @doc An RPL control message of code `Code', `Bin' the bytes captured
%% after the ICMPv6 header's first 4, `Len' its length from there.
-spec rpl(byte(), {binary(), integer()}, #printer{}) -> #printer{}.
rpl(Code, _Body, P) when Code band 16#80 =/= 0 ->
    pr(P, ", (SEC) [worktodo]");
rpl(Code, {Bin, Len}, #printer{verbose = V} = P) ->
    P1 = pr(P, [", (CLR)", case Code of
                              0 -> "DODAG Information Solicitation";
                              1 -> "DODAG Information Object";
                              2 -> "Destination Advertisement Object";
                              3 -> "Destination Advertisement Object Ack";
                              _ -> ["RPL message, unknown code ", integer_to_list(Code)]
                          end]),
    case Code of
        _ when V =:= 0; Code =:= 0; Code > 3 -> P1;
        1 -> dio(Bin, Len, P1);
        2 -> dao(Bin, Len, P1);
        3 -> daoack(Bin, Len, P1)
    end.

dio(_Bin, Len, P) when Len < 24 ->
    pr(P, [" [length ", integer_to_list(Len), " < 24] (invalid)"]);
dio(<<Inst, _, Rank:16, MopPrf, Dtsn, _:16, Dag:16/binary, Opts/binary>>, Len, P) ->
    {D, P1} = host(ip6(Dag), P),
    Mop = case (MopPrf bsr 3) band 7 of
              0 -> "nonstoring";
              1 -> "storing";
              2 -> "nonstoring-multicast";
              3 -> "storing-multicast";
              M -> ["mop", integer_to_list(M)]
          end,
    P2 = pr(P1, [" [dagid:", D, ",seq:", integer_to_list(Dtsn), ",instance:", integer_to_list(Inst),
                 ",rank:", integer_to_list(Rank), ",", ["grounded," || MopPrf band 16#80 =/= 0],
                 "mop:", Mop, ",prf:", integer_to_list(MopPrf band 7), "]"]),
    rpl_opts(Opts, Len - 24, P2);
dio(_Bin, _Len, P) ->
    throw({ewp_trunc, "icmp6", P}).

dao(Bin, _Len, P) when byte_size(Bin) < 20 ->
    pr(P, ?MARK);
dao(_Bin, Len, P) when Len < 4 ->
    pr(P, " [|length too short]");
dao(<<Inst, Flags, _, Seq, Rest/binary>>, Len, P) ->
    case Flags band 16#40 of
        0 ->
            dao_text("<elided>", Inst, Flags, Seq, Rest, Len - 4, P);
        _ when Len - 4 < 16 ->
            pr(P, " [|length too short]");
        _ ->
            <<Dag:16/binary, Opts/binary>> = Rest,
            {D, P1} = host(ip6(Dag), P),
            dao_text(D, Inst, Flags, Seq, Opts, Len - 20, P1)
    end.

dao_text(D, Inst, Flags, Seq, Opts, Left, P) ->
    P1 = pr(P, [" [dagid:", D, ",seq:", integer_to_list(Seq), ",instance:", integer_to_list(Inst),
                [",acK" || Flags band 16#80 =/= 0], [",Dagid" || Flags band 16#40 =/= 0],
                ",", ewpcap_dump_fmt_ip:hex2(Flags), "]"]),
    rpl_opts(Opts, Left, P1).

daoack(Bin, _Len, P) when byte_size(Bin) < 4 ->
    pr(P, ?MARK);
daoack(_Bin, Len, P) when Len < 4 ->
    pr(P, " [|dao-length too short]");
daoack(<<Inst, Flags, Seq, Status, Rest/binary>>, Len, P) ->
    Text = fun(D, Opts, Left, P0) ->
                   rpl_opts(Opts, Left, pr(P0, [" [dagid:", D, ",seq:", integer_to_list(Seq),
                                                ",instance:", integer_to_list(Inst), ",status:",
                                                integer_to_list(Status), "]"]))
           end,
    case {Flags band 16#80, Rest} of
        {0, _} -> Text("<elided>", Rest, Len - 4, P);
        {_, <<Dag:16/binary, Opts/binary>>} when Len - 4 >= 16 ->
            {D, P1} = host(ip6(Dag), P),
            Text(D, Opts, Len - 20, P1);
        {_, <<_:16/binary, _/binary>>} -> pr(P, " [|dao-length too short]");
        _ -> pr(P, ?MARK)
    end.

%% -vv: the options' names and lengths
rpl_opts(_Bin, _Left, #printer{verbose = V} = P) when V < 2 ->
    P;
rpl_opts(_Bin, 0, P) ->
    P;
rpl_opts(<<0, Rest/binary>>, Left, P) ->
    rpl_opts(Rest, Left - 1, pr(P, " opt:pad1"));
rpl_opts(<<T, _/binary>>, Left, P) when Left < 2 ->
    _ = T,
    pr(P, ?MARK);
rpl_opts(<<T, L, _/binary>> = Bin, Left, P) ->
    Names = [{1, "padN"}, {2, "metrics"}, {3, "routinginfo"}, {4, "config"}, {5, "rpltarget"},
             {6, "transitinfo"}, {8, "destprefix"}, {9, "rpltargetdesc"}],
    P1 = pr(P, [" opt:", case lists:keyfind(T, 1, Names) of
                             {_, N} -> N;
                             false -> ["subopt:", integer_to_list(T)]
                         end, " len:", integer_to_list(L + 2), " "]),
    if
        byte_size(Bin) < L + 2; Left < L + 2 ->
            pr(P1, ?MARK);
        true ->
            <<_:(L + 2)/binary, Rest/binary>> = Bin,
            rpl_opts(Rest, Left - L - 2, P1)
    end;
rpl_opts(_Bin, _Left, P) ->
    throw({ewp_trunc, "icmp6", P}).
