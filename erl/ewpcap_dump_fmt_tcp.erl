%%% @doc TCP in ewpcap_dump's lines, as tcpdump 4.99 prints it: the
%%% header checks (`[bad hdr length ...]'), flags, relative sequence
%%% numbers, `-v' checksums and options. Called by ewpcap_dump_fmt_ip
%%% with the segment, its length and the IP context `{Version, Src, Dst,
%%% Fragment}'; the text goes to the printer as there.
%%% @end
-module(ewpcap_dump_fmt_tcp).

-include("ewpcap_dump_fmt.hrl").

-export([tcp/4]).

-import(ewpcap_dump_fmt_ip, [pr/2, host/2, ports/6, pseudo_cksum/5, should_be/2, hex2/1, hex4/1,
                              addr_bin/1]).

%% @doc A TCP segment of (IP payload) length `Len'.
-spec tcp(binary(), non_neg_integer(),
          {4 | 6, inet:ip_address(), inet:ip_address(), boolean()}, #printer{}) -> #printer{}.
tcp(Bin, Len, {V, Src, Dst, Frag}, P) ->
    case Bin of
        <<SP:16, DP:16, Rest/binary>> ->
            P1 = ports(tcp, Src, SP, Dst, DP, P),
            case Rest of
                <<Seq0:32, Ack0:32, Off:4, _:4, Flags:8, Win:16, Sum:16, Urp:16, Opts0/binary>> ->
                    HLen = Off * 4,
                    if
                        HLen < 20 ->
                            pr(P1, [" tcp ", integer_to_list(Len - HLen), " [bad hdr length ",
                                    integer_to_list(HLen), " - too short, < 20]"]);
                        true ->
                            P2 = pr(P1, [<<"Flags [">>, tcp_flags(Flags), $]]),
                            {Seq, Ack, SackBase, P3} =
                                tcp_relative(Src, Dst, SP, DP, Seq0, Ack0, Flags, P2),
                            case HLen > Len of
                                true ->
                                    pr(P3, [" [bad hdr length ", integer_to_list(HLen),
                                            " - too long, > ", integer_to_list(Len), "]"]);
                                false ->
                                    P4 = tcp_cksum(Bin, Len, Sum, {V, Src, Dst, Frag}, P3),
                                    tcp_rest(Opts0, Len - HLen, HLen, {Seq, Ack, SackBase, Flags,
                                                                      Win, Urp}, P4)
                            end
                    end;
                _ ->
                    ?TRUNC_RET("tcp", P1)
            end;
        _ ->
            {SH, P1} = host(Src, P),
            {DH, P2} = host(Dst, P1),
            ?TRUNC_RET("tcp", pr(P2, [SH, " > ", DH, ":"]))
    end.

tcp_cksum(_Bin, _Len, _Sum, {_, _, _, true}, P) -> P;
tcp_cksum(_Bin, _Len, _Sum, _Ctx, #printer{verbose = 0} = P) -> P;
tcp_cksum(Bin, Len, Sum, {V, Src, Dst, _}, P) when byte_size(Bin) >= Len ->
    case pseudo_cksum(V, Src, ewpcap_dump_fmt_ip:csum_dst(Dst, P), 6, binary:part(Bin, 0, Len)) of
        0 -> pr(P, [", cksum 0x", hex4(Sum), " (correct)"]);
        S -> pr(P, [", cksum 0x", hex4(Sum), " (incorrect -> 0x", hex4(should_be(Sum, S)), ")"])
    end;
tcp_cksum(_Bin, _Len, _Sum, _Ctx, P) -> P.

tcp_rest(Opts0, DataLen, HLen, {Seq, Ack, SackBase, Flags, Win, Urp}, P) ->
    SeqStr = case P#printer.verbose > 1 orelse DataLen > 0 orelse (Flags band 16#07) =/= 0 of
                 true ->
                     [<<", seq ">>, integer_to_binary(Seq),
                      [[$:, integer_to_binary((Seq + DataLen) band 16#FFFFFFFF)] || DataLen > 0]];
                 false ->
                     []
             end,
    AckStr = [[<<", ack ">>, integer_to_binary(Ack)] || Flags band 16#10 =/= 0],
    UrgStr = [[", urg ", integer_to_list(Urp)] || Flags band 16#20 =/= 0],
    P1 = pr(P, [SeqStr, AckStr, <<", win ">>, integer_to_binary(Win), UrgStr]),
    OptLen = HLen - 20,
    P2 = case OptLen of
             0 ->
                 P1;
             _ ->
                 case Opts0 of
                     <<Opts:OptLen/binary, _/binary>> ->
                         pr(P1, [<<", options [">>, tcp_options(Opts, SackBase, []), $]]);
                     _ ->
                         ?TRUNC("tcp", pr(P1, ", options ["))
                 end
         end,
    pr(P2, [<<", length ">>, integer_to_binary(DataLen)]).

tcp_flags(0) -> "none";
tcp_flags(16#02) -> "S";
tcp_flags(16#10) -> ".";
tcp_flags(16#12) -> "S.";
tcp_flags(16#18) -> "P.";
tcp_flags(16#11) -> "F.";
tcp_flags(16#04) -> "R";
tcp_flags(16#14) -> "R.";
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
            case Rev of
                true -> {(Seq - ThAck) band M32, (Ack - ThSeq) band M32, ThSeq, P};
                false -> {(Seq - ThSeq) band M32, (Ack - ThAck) band M32, ThAck, P}
            end;
        _ ->
            {ThSeq, ThAck} = Entry = case Rev of
                                         true -> {(Ack - 1) band M32, Seq};
                                         false -> {Seq, (Ack - 1) band M32}
                                     end,
            Base = case Rev of
                       true -> ThSeq;
                       false -> ThAck
                   end,
            {Seq, Ack, Base, P#printer{tcp = T#{Key => Entry}}}
    end.

tcp_options(<<>>, _Base, Acc) ->
    lists:join(",", lists:reverse(Acc));
tcp_options(<<0, _/binary>>, _Base, Acc) ->
    lists:join(",", lists:reverse(["eol" | Acc]));
tcp_options(<<1, Rest/binary>>, Base, Acc) ->
    tcp_options(Rest, Base, [<<"nop">> | Acc]);
tcp_options(<<Kind, Len, Rest/binary>>, Base, Acc) when Len >= 2, byte_size(Rest) >= Len - 2 ->
    DLen = Len - 2,
    <<Data:DLen/binary, More/binary>> = Rest,
    tcp_options(More, Base, [tcp_option(Kind, Data, Base) | Acc]);
tcp_options(_, _Base, Acc) ->
    [lists:join(",", lists:reverse(Acc)), [[","] || Acc =/= []], "[bad opt]"].

tcp_option(2, <<Mss:16>>, _) -> [<<"mss ">>, integer_to_binary(Mss)];
tcp_option(3, <<Ws>>, _) -> [<<"wscale ">>, integer_to_binary(Ws)];
tcp_option(4, <<>>, _) -> <<"sackOK">>;
tcp_option(5, Blocks, Base) when byte_size(Blocks) rem 8 =:= 0 ->
    ["sack ", integer_to_list(byte_size(Blocks) div 8), " ",
     [[${, integer_to_binary((S - Base) band 16#FFFFFFFF), $:,
       integer_to_binary((E - Base) band 16#FFFFFFFF), $}]
      || <<S:32, E:32>> <= Blocks]];
tcp_option(5, _, _) -> "sack invalid sack";
tcp_option(8, <<Val:32, Ecr:32>>, _) ->
    [<<"TS val ">>, integer_to_binary(Val), <<" ecr ">>, integer_to_binary(Ecr)];
tcp_option(Kind, Data, _) ->
    Name = case lists:keyfind(Kind, 1, [{19, "md5"}, {20, "scps"}, {28, "uto"}, {29, "tcp-ao"},
                                         {30, "mptcp"}, {34, "tfo"}, {254, "exp"}]) of
               {_, N} -> N;
               false -> ["unknown-", integer_to_list(Kind)]
           end,
    [Name, [[" 0x", [hex2(B) || <<B>> <= Data]] || Data =/= <<>>]].
