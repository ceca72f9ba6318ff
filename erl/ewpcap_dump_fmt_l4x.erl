%%% @doc Transports over IP other than TCP and UDP as tcpdump 4.99 prints
%%% them, for ewpcap_dump_fmt_ipx: DCCP (its header, packet types, -v
%%% checksum, -vv sequence number and options), SCTP (its header, the
%%% chunks' names, DATA chunks; the fields of the other chunks are not
%%% decoded, and a chunk that has some ends the line) and PGM (its
%%% header; options are not decoded). Written from tcpdump's behaviour;
%%% test/ewpcap_dump_diff_SUITE.erl compares the two.
%%% @end
-module(ewpcap_dump_fmt_l4x).

-include("ewpcap_dump_fmt.hrl").

-export([dccp/4, sctp/4, pgm/4]).

-import(ewpcap_dump_fmt_ip, [pr/2, host/2, addr_bin/1, cksum/1, should_be/2, hex2/1, hex4/1]).

%%% DCCP

%% @doc A DCCP packet of `Len' bytes; `Ctx' `{Version, Src, Dst, Frag}'.
-spec dccp(binary(), non_neg_integer(), tuple(), #printer{}) -> #printer{}.
dccp(Bin, _Len, _Ctx, P) when byte_size(Bin) < 12 ->
    ?TRUNC_RET("dccp", P);
dccp(_Bin, Len, _Ctx, P) when Len < 12 ->
    pr(P, ["truncated-dccp - ", integer_to_list(12 - Len), " bytes missing!"]);
dccp(<<SP:16, DP:16, DOff, CcCs, Sum:16, Xtr, _/binary>> = Bin, Len, {V, Src, Dst, _}, P) ->
    X = Xtr band 1,
    Fixed = 12 + 4 * X,
    if
        Len < Fixed ->
            pr(P, ["truncated-dccp - ", integer_to_list(Fixed - Len), " bytes missing!"]);
        byte_size(Bin) < Fixed ->
            ?TRUNC_RET("dccp", P);
        true ->
            {SH, P1} = host(Src, P),
            {DH, P2} = host(Dst, P1),
            P3 = pr(P2, [SH, $., integer_to_list(SP), " > ", DH, $., integer_to_list(DP),
                         ": DCCP"]),
            P4 = case P3#printer.verbose of
                     0 -> P3;
                     _ -> pr(P3, [" (CCVal ", integer_to_list(CcCs bsr 4), ", CsCov ",
                                  integer_to_list(CcCs band 15),
                                  dccp_cksum(Bin, Len, {V, Src, ewpcap_dump_fmt_ip:csum_dst(Dst, P3)},
                                             DOff, CcCs band 15, Sum),
                                  ")"])
                 end,
            dccp_type((Xtr bsr 1) band 15, Bin, Len, {X, Fixed, DOff * 4}, pr(P4, " "))
    end.

dccp_cksum(Bin, Len, {V, Src, Dst}, DOff, CsCov, Sum) when byte_size(Bin) >= Len ->
    Cov = case CsCov of
              0 -> Len;
              _ -> min((DOff + CsCov - 1) * 4, Len)
          end,
    Data = binary:part(Bin, 0, Cov),
    Pseudo = case V of
                 4 -> <<(addr_bin(Src))/binary, (addr_bin(Dst))/binary, 0, 33, Len:16>>;
                 6 -> <<(addr_bin(Src))/binary, (addr_bin(Dst))/binary, Len:32, 0:24, 33>>
             end,
    [", cksum 0x", hex4(Sum), " ",
     case cksum(<<Pseudo/binary, Data/binary>>) of
         0 -> "(correct)";
         S -> ["(incorrect -> 0x", hex4(should_be(Sum, S)), ")"]
     end];
dccp_cksum(_Bin, _Len, _Addrs, _DOff, _CsCov, _Sum) ->
    [].

dccp_type(Type, Bin, Len, {X, Fixed0, HLen}, P) ->
    Names = {"DCCP-Request", "DCCP-Response", "DCCP-Data", "DCCP-Ack", "DCCP-DataAck",
             "DCCP-CloseReq", "DCCP-Close", "DCCP-Reset", "DCCP-Sync", "DCCP-SyncAck"},
    Extra = case Type of 0 -> 4; 1 -> 12; 2 -> 0; 7 -> 12; _ when Type =< 9 -> 8; _ -> 0 end,
    Fixed = Fixed0 + Extra,
    if
        Type =< 9, Len < Fixed ->
            pr(P, ["truncated-", element(Type + 1, Names), " - ", integer_to_list(Fixed - Len),
                   " bytes missing!"]);
        Type =< 9, byte_size(Bin) < Fixed, Type =/= 2, Type =/= 3, Type =/= 4, Type =/= 5,
        Type =/= 6, Type =/= 8, Type =/= 9 ->
            ?TRUNC_RET("dccp", P);
        true ->
            P1 = case Type of
                     0 ->
                         <<_:Fixed0/binary, Svc:32, _/binary>> = Bin,
                         pr(P, ["DCCP-Request (service=", integer_to_list(Svc), ") "]);
                     1 ->
                         <<_:Fixed0/binary, _:64, Svc:32, _/binary>> = Bin,
                         pr(P, ["DCCP-Response (service=", integer_to_list(Svc), ") "]);
                     7 ->
                         <<_:Fixed0/binary, _:64, Code, _/binary>> = Bin,
                         pr(P, ["DCCP-Reset (code=", dccp_reset(Code), ") "]);
                     T when T =< 9 ->
                         pr(P, [element(T + 1, Names), " "]);
                     T ->
                         pr(P, ["unknown-type-", integer_to_list(T), " "])
                 end,
            P2 = case Type =/= 2 andalso Type =/= 0 of
                     true ->
                         Off = 12 + 4 * X,
                         Ack = case {X, Bin} of
                                   {1, <<_:Off/binary, _:16, A:48, _/binary>>} -> A;
                                   {0, <<_:Off/binary, _:8, A:24, _/binary>>} -> A;
                                   _ -> ?TRUNC("dccp", P1)
                               end,
                         pr(P1, ["(ack=", integer_to_list(Ack), ") "]);
                     false ->
                         P1
                 end,
            case P2#printer.verbose >= 2 of
                false ->
                    P2;
                true ->
                    Seq = case X of
                              1 -> <<_:80, S:48, _/binary>> = Bin, S;
                              0 -> <<_:72, S:24, _/binary>> = Bin, S
                          end,
                    P3 = pr(P2, ["seq ", integer_to_list(Seq)]),
                    case HLen > Fixed of
                        true -> pr(dccp_opts(Bin, Fixed, HLen - Fixed, pr(P3, " <")), ">");
                        false -> P3
                    end
            end
    end.

dccp_reset(Code) when Code < 12 ->
    element(Code + 1, {"unspecified", "closed", "aborted", "no_connection", "packet_error",
                       "option_error", "mandatory_error", "connection_refused",
                       "bad_service_code", "too_busy", "bad_init_cookie",
                       "aggression_penalty"});
dccp_reset(_) ->
    "invalid".

%% -vv: the options in the HLen bytes at Off
dccp_opts(Bin, Off, HLen, P) ->
    case Bin of
        <<_:Off/binary, O, _/binary>> ->
            case dccp_opt(O, Bin, Off, HLen, P) of
                {0, P1} -> P1;
                {OptLen, P1} when HLen =< OptLen -> P1;
                {OptLen, P1} -> dccp_opts(Bin, Off + OptLen, HLen - OptLen, pr(P1, ", "))
            end;
        _ ->
            ?TRUNC("dccp", P)
    end.

dccp_opt(O, Bin, Off, HLen, P) ->
    Name = fun() -> dccp_opt_name(O) end,
    OptLen = case O >= 32 of
                 true ->
                     case Bin of
                         <<_:Off/binary, _, L, _/binary>> -> L;
                         _ -> ?TRUNC("dccp", P)
                     end;
                 false ->
                     1
             end,
    if
        OptLen < 2, O >= 32 ->
            {0, pr(P, [case O >= 128 of
                           true -> ["CCID option ", integer_to_list(O)];
                           false -> Name()
                       end, " optlen too short"])};
        HLen < OptLen ->
            {0, pr(P, [case O >= 128 of
                           true -> ["CCID option ", integer_to_list(O)];
                           false -> Name()
                       end, " optlen goes past header length"])};
        byte_size(Bin) < Off + OptLen ->
            {0, ?TRUNC_RET("dccp", P)};
        true ->
            <<_:Off/binary, Opt:OptLen/binary, _/binary>> = Bin,
            {OptLen, pr(P, dccp_opt_text(O, Opt))}
    end.

dccp_opt_text(O, Opt) when O >= 128 ->
    ["CCID option ", integer_to_list(O),
     case Opt of
         <<_:16, V:16>> -> [" ", integer_to_list(V)];
         <<_:16, V:32>> -> [" ", integer_to_list(V)];
         _ -> []
     end];
dccp_opt_text(O, Opt) ->
    Bytes = fun(Sep) -> <<_:16, D/binary>> = Opt, [Sep, [hex2(B) || <<B>> <= D]] end,
    [dccp_opt_name(O),
     case {O, Opt} of
         {_, <<_, L>>} when O >= 32, O =< 35, L < 3 -> " optlen too short";
         {_, <<_, _, F, Vs/binary>>} when O >= 32, O =< 35, F < 10 ->
             [" ", element(F + 1, {"reserved", "ccid", "allow_short_seqno", "sequence_window",
                                   "ecn_incapable", "ack_ratio", "send_ack_vector",
                                   "send_ndp_count", "minimum checksum coverage",
                                   "check data checksum"}),
              [[" ", integer_to_list(B)] || <<B>> <= Vs]];
         {37, <<_:16, Vs/binary>>} -> [[" ", integer_to_list(B)] || <<B>> <= Vs];
         {_, <<_:16, _, _/binary>>} when O =:= 36; O =:= 38; O =:= 39; O =:= 40 -> Bytes(" 0x");
         {41, <<_:16, T:32>>} -> [" ", integer_to_list(T)];
         {41, _} -> " [optlen != 6]";
         {42, <<_:16, T:32>>} -> [" ", integer_to_list(T)];
         {42, <<_:16, T:32, E:16>>} -> [" ", integer_to_list(T), " (elapsed time ", integer_to_list(E), ")"];
         {42, <<_:16, T:32, E:32>>} -> [" ", integer_to_list(T), " (elapsed time ", integer_to_list(E), ")"];
         {42, _} -> " [optlen != 6 or 8 or 10]";
         {43, <<_:16, T:32>>} -> [" ", integer_to_list(T)];
         {43, <<_:16, T:16>>} -> [" ", integer_to_list(T)];
         {43, _} -> " [optlen != 4 or 6]";
         {44, <<_:16, _, _/binary>>} -> Bytes(" ");
         _ -> []
     end].

dccp_opt_name(O) ->
    case lists:keyfind(O, 1, [{0, "nop"}, {1, "mandatory"}, {2, "slowreceiver"}, {32, "change_l"},
                              {33, "confirm_l"}, {34, "change_r"}, {35, "confirm_r"},
                              {36, "initcookie"}, {37, "ndp_count"}, {38, "ack_vector0"},
                              {39, "ack_vector1"}, {40, "data_dropped"}, {41, "timestamp"},
                              {42, "timestamp_echo"}, {43, "elapsed_time"},
                              {44, "data_checksum"}]) of
        {_, N} -> N;
        false -> ["Option ", integer_to_list(O)]
    end.

%%% SCTP

%% @doc An SCTP packet of `Len' bytes.
-spec sctp(binary(), non_neg_integer(), tuple(), #printer{}) -> #printer{}.
sctp(_Bin, Len, _Ctx, P) when Len < 12 ->
    pr(P, ["truncated-sctp - ", integer_to_list(12 - Len), " bytes missing!"]);
sctp(<<SP:16, DP:16, _:64, Chunks/binary>>, Len, {_, Src, Dst, _}, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    P3 = pr(P2, [SH, $., integer_to_list(SP), " > ", DH, $., integer_to_list(DP), ": sctp",
                 [["[", forces(Port), "]"] || Port <- [SP, DP], Port >= 6700, Port =< 6702]]),
    Sep = case P3#printer.verbose >= 2 of true -> "\n\t"; false -> " (" end,
    sctp_chunks(Chunks, Len - 12, 1, Sep, P3);
sctp(_Bin, _Len, _Ctx, P) ->
    ?TRUNC_RET("sctp", P).

forces(6700) -> "ForCES HP";
forces(6701) -> "ForCES MP";
forces(6702) -> "ForCES LP".

sctp_chunks(_Bin, Left, _N, _Sep, P) when Left =< 0 ->
    P;
sctp_chunks(_Bin, Left, N, Sep, P) when Left < 4, Left > 0 ->
    pr(P, [Sep, integer_to_list(N), ") [chunk descriptor cut off at end of packet]"]);
sctp_chunks(<<_:16, CLen:16, _/binary>>, _Left, N, Sep, P) when CLen < 4 ->
    pr(P, [Sep, integer_to_list(N), ") [Bad chunk length ", integer_to_list(CLen),
           ", < size of chunk descriptor]"]);
sctp_chunks(<<Id, _, CLen:16, _/binary>> = Bin, Left, N, Sep, P) when byte_size(Bin) >= CLen ->
    Align = case CLen rem 4 of 0 -> 0; A -> 4 - A end,
    case Left < Align of
        true ->
            pr(P, [Sep, integer_to_list(N), ") [Bad chunk length ", integer_to_list(CLen),
                   ", > remaining data in packet]"]);
        false ->
            P1 = pr(P, [Sep, integer_to_list(N), ") [", sctp_chunk_name(Id), "] "]),
            if
                Id =:= 0 ->
                    sctp_data(Bin, CLen, P1);
                Id =< 3, CLen =:= 4 ->
                    pr(P1, ["bogus chunk length ", integer_to_list(CLen), "]"]);
                CLen =:= 4; Id > 14, Id < 16#C0; Id > 16#C2 ->
                    % nothing in it that tcpdump prints: on to the next
                    <<_:CLen/binary, Rest/binary>> = Bin,
                    Next = case byte_size(Rest) >= Align of
                               true -> binary:part(Rest, Align, byte_size(Rest) - Align);
                               false -> <<>>
                           end,
                    More = case P1#printer.verbose >= 2 of true -> Sep; false -> ", (" end,
                    sctp_chunks(Next, Left - CLen - Align, N + 1, More, P1);
                true ->
                    % the chunk's fields are not decoded (tcpdump's are)
                    P1
            end
    end;
sctp_chunks(<<_:32, _/binary>>, _Left, _N, _Sep, P) ->
    ?TRUNC_RET("sctp", P);
sctp_chunks(_Bin, _Left, _N, _Sep, P) ->
    ?TRUNC_RET("sctp", P).

%%% PGM

%% @doc A PGM packet of `Len' bytes.
-spec pgm(binary(), non_neg_integer(), tuple(), #printer{}) -> #printer{}.
pgm(<<SP:16, DP:16, Type, Opts, _Sum:16, Gsi:6/binary, TLen:16, Rest/binary>>, Len,
    {_, Src, Dst, _}, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    P3 = pr(P2, [SH, $., integer_to_list(SP), " > ", DH, $., integer_to_list(DP), ": PGM, length ",
                 integer_to_list(TLen)]),
    case P3#printer.verbose of
        0 -> P3;
        _ -> pgm_verbose(Type, {Opts, SP bsr 8}, Gsi, Rest, Len, P3)
    end;
pgm(<<SP:16, DP:16, _/binary>>, _Len, {_, Src, Dst, _}, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    ?TRUNC_RET("pgm", pr(P2, [SH, $., integer_to_list(SP), " > ", DH, $., integer_to_list(DP),
                              ": "]));
pgm(_Bin, _Len, {_, Src, Dst, _}, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    ?TRUNC_RET("pgm", pr(P2, [SH, " > ", DH, ":"])).

%% -v: the source's global id, the type, a first option that is not
%% OPT_LENGTH (the bodies of the types that have one, and the options,
%% are not decoded: a body not captured ends the line as tcpdump's)
pgm_verbose(Type, Opts, Gsi, Rest, Len, P) ->
    P0 = pr(P, [" 0x", [hex2(B) || <<B>> <= Gsi], " "]),
    Body = case Type of
               0 -> 14; 1 -> 12; 2 -> 8; 4 -> 8; 5 -> 8; 8 -> 8; 9 -> 8; 10 -> 8;
               _ -> 0
           end,
    if
        byte_size(Rest) < Body ->
            ?TRUNC("pgm", P0);
        Type =:= 4; Type =:= 5 ->
            <<Seq:32, Trail:32, After/binary>> = Rest,
            P1 = pr(P0, [case Type of 4 -> "ODATA"; 5 -> "RDATA" end, " trail ",
                         integer_to_list(Trail), " seq ", integer_to_list(Seq)]),
            case {element(1, Opts) band 1, After} of
                {0, _} -> pr(P1, [" [", integer_to_list(Len), "]"]);
                {1, <<First, _:24, _/binary>>} -> pgm_first_option({1, First}, Len, P1);
                _ -> ?TRUNC_RET("pgm", P1)
            end;
        Body > 0 ->
            P0;
        true ->
            P1 = pr(P0, case Type of
                            16#0C -> "SPMR";
                            _ -> ["UNKNOWN type 0x", hex2(Type)]
                        end),
            pgm_first_option(Opts, Len, P1)
    end.

%% for these types tcpdump reads the first option at the header's start
%% (the source port's first byte); an OPT_LENGTH there starts options
%% that are not decoded
pgm_first_option({Opts, First}, Len, P) ->
    case Opts band 1 of
        1 when First band 16#7F =/= 0 ->
            pr(P, ["[First option bad, should be PGM_OPT_LENGTH, is ",
                   integer_to_list(First band 16#7F), "]"]);
        1 ->
            P;
        0 ->
            pr(P, [" [", integer_to_list(Len), "]"])
    end.

sctp_chunk_name(Id) when Id =< 14 ->
    element(Id + 1, {"DATA", "INIT", "INIT ACK", "SACK", "HB REQ", "HB ACK", "ABORT", "SHUTDOWN",
                     "SHUTDOWN ACK", "OP ERR", "COOKIE ECHO", "COOKIE ACK", "ECN ECHO", "ECN CWR",
                     "SHUTDOWN COMPLETE"});
sctp_chunk_name(16#C0) -> "FOR CUM TSN";
sctp_chunk_name(16#C1) -> "REL CTRL";
sctp_chunk_name(16#C2) -> "REL CTRL ACK";
sctp_chunk_name(Id) -> ["Unknown chunk type: 0x", ewpcap_dump_fmt_ip:hex(Id)].

%% A DATA chunk: its flags, TSN, stream, sequence and payload protocol
%% (as a number: tcpdump names some), -vv its payload; the chunks after
%% it are not printed
sctp_data(<<_, Flags, _:16, Rest/binary>>, CLen, P) ->
    Fs = [T || {B, T} <- [{4, "(U)"}, {2, "(B)"}, {1, "(E)"}], Flags band B =/= 0],
    P1 = pr(P, [Fs, [" " || Fs =/= []]]),
    case Rest of
        _ when CLen < 16 ->
            pr(P1, ["bogus chunk length ", integer_to_list(CLen), "]"]);
        <<Tsn:32, Sid:16, SSeq:16, Ppid:32, Data/binary>> when CLen > 16 ->
            P2 = pr(P1, ["[TSN: ", integer_to_list(Tsn), "] [SID: ", integer_to_list(Sid),
                         "] [SSEQ ", integer_to_list(SSeq), "] [PPID 0x", ewpcap_dump_fmt_ip:hex(Ppid),
                         "] "]),
            case P2#printer.verbose >= 2 of
                true ->
                    Payload = binary:part(Data, 0, CLen - 16),
                    pr(P2, ["[Payload:", ewpcap_dump_fmt:hex_dump('X', Payload), "]"]);
                false ->
                    P2
            end;
        _ ->
            P1
    end.
