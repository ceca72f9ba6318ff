%%% @doc Routing and signalling protocols over IP as tcpdump 4.99 prints
%%% them, for ewpcap_dump_fmt_ipx: RSVP, PIM, EIGRP, IGRP and EGP. Their
%%% headers and version checks are tcpdump's; the messages tcpdump
%%% decodes deeply (RSVP objects, PIMv2 and EIGRP with -v, an EGP
%%% update's reachability list) are not decoded further. Written from
%%% tcpdump's behaviour; test/ewpcap_dump_diff_SUITE.erl compares the two.
%%% @end
-module(ewpcap_dump_fmt_routing).

-include("ewpcap_dump_fmt.hrl").

-export([rsvp/3, pim/3, eigrp/3, igrp/3, egp/3]).

-import(ewpcap_dump_fmt_ip, [pr/2, host/2, ip4/1, pad/2]).
-import(ewpcap_dump_fmt_ipx, [unknown_data/3, dotted/1]).

%%% RSVP: the common header; with -v its fields and, for the message
%%% types tcpdump does not decode, the bytes (the objects of the others
%%% are not decoded)

-spec rsvp(binary(), non_neg_integer(), #printer{}) -> #printer{}.
rsvp(<<Ver:4, Flags:4, Type, Sum:16, Ttl, _, HLen:16, Rest/binary>>, Len, P) ->
    Name = rsvp_type(Type),
    if
        Ver =/= 1 ->
            pr(P, ["ERROR: RSVP version ", integer_to_list(Ver), " packet not supported"]);
        P#printer.verbose =:= 0 ->
            pr(P, ["RSVPv1 ", case Name of
                                  false -> ["unknown (", integer_to_list(Type), ")"];
                                  _ -> Name
                              end, " Message, length: ", integer_to_list(Len)]);
        true ->
            P1 = pr(P, ["\n\tRSVPv1 ", case Name of
                                           false -> ["unknown, type: ", integer_to_list(Type)];
                                           _ -> Name
                                       end,
                        " Message (", integer_to_list(Type), "), Flags: [",
                        case Flags band 1 of 1 -> "Refresh reduction capable"; 0 -> "none" end,
                        "], length: ", integer_to_list(HLen), ", ttl: ", integer_to_list(Ttl),
                        ", checksum: 0x", pad(integer_to_list(Sum, 16), 4)]),
            if
                HLen < 8 ->
                    pr(P1, ["ERROR: common header too short ", integer_to_list(HLen), " < 8"]);
                Name =:= false ->
                    pr(P1, unknown_data("\n\t    ", Rest, HLen - 8));
                true ->
                    P1
            end
    end;
rsvp(_Bin, _Len, P) ->
    ?TRUNC_RET("rsvp", P).

rsvp_type(T) ->
    case lists:keyfind(T, 1, [{1, "Path"}, {2, "Resv"}, {3, "PathErr"}, {4, "ResvErr"},
                              {5, "PathTear"}, {6, "ResvTear"}, {7, "ResvConf"}, {12, "Bundle"},
                              {13, "Acknowledgement"}, {14, "Hello (Old)"}, {15, "Refresh"},
                              {20, "Hello"}]) of
        {_, N} -> N;
        false -> false
    end.

%%% PIM: the version, version 2's message type (with -v its fields
%%% are not decoded)

-spec pim(binary(), non_neg_integer(), #printer{}) -> #printer{}.
pim(<<Ver:4, Type:4, _/binary>>, Len, P) ->
    L = integer_to_list(Len),
    case Ver of
        2 ->
            Name = case Type < 12 of
                       true -> element(Type + 1, {"Hello", "Register", "Register Stop",
                                                  "Join / Prune", "Bootstrap", "Assert", "Graft",
                                                  "Graft Acknowledgement",
                                                  "Candidate RP Advertisement", "Prune Refresh",
                                                  "DF Election", "ECMP Redirect"});
                       false -> "Unknown Type"
                   end,
            case P#printer.verbose of
                0 -> pr(P, ["PIMv2, ", Name, ", length ", L]);
                _ -> pr(P, ["PIMv2, length ", L, "\n\t", Name])
            end;
        _ ->
            pr(P, ["PIMv", integer_to_list(Ver), ", length ", L])
    end;
pim(_Bin, _Len, P) ->
    ?TRUNC("pim", P).

%%% EIGRP: the header (with -v its TLVs are not decoded)

-spec eigrp(binary(), non_neg_integer(), #printer{}) -> #printer{}.
eigrp(<<Ver, Op, _:18/binary, _/binary>>, Len, P) ->
    case Ver of
        2 ->
            pr(P, ["EIGRP ", case lists:keyfind(Op, 1, [{1, "Update"}, {3, "Query"}, {4, "Reply"},
                                                      {5, "Hello"}, {6, "IPX SAP"},
                                                      {7, "Probe"}]) of
                                 {_, N} -> N;
                                 false -> ["unknown (", integer_to_list(Op), ")"]
                             end, ", length: ", integer_to_list(Len)]);
        _ ->
            pr(P, ["EIGRP version ", integer_to_list(Ver), " packet not supported"])
    end;
eigrp(_Bin, _Len, P) ->
    ?TRUNC_RET("eigrp", P).

%%% IGRP: the header and the routing entries

-spec igrp(binary(), non_neg_integer(), #printer{}) -> #printer{}.
igrp(<<VOp, Ed, As:16, NInt:16, NSys:16, NExt:16, Rest/binary>>, Len, P) ->
    Op = case VOp band 16#0F of
             1 -> "update";
             2 -> "request";
             O -> ["op-#", integer_to_list(O)]
         end,
    P1 = pr(P, ["igrp: ", Op, " V", integer_to_list(VOp bsr 4), " edit=", integer_to_list(Ed),
                " AS=", integer_to_list(As), " (", integer_to_list(NInt), "/",
                integer_to_list(NSys), "/", integer_to_list(NExt), ")"]),
    case Rest of
        <<Sum:16, Entries/binary>> ->
            P2 = pr(P1, [[" checksum=0x", pad(integer_to_list(Sum, 16), 4)]
                         || P1#printer.verbose > 0]),
            % the length left is unsigned in tcpdump: below the header's
            % 12 bytes it wraps, and the entries run to the captured end
            igrp_entries(Entries, (Len - 12) band 16#FFFFFFFF, {NInt, NSys, NExt}, P2);
        _ ->
            ?TRUNC("igrp", P1)
    end;
igrp(_Bin, _Len, P) ->
    ?TRUNC("igrp", pr(P, "igrp:")).

igrp_entries(Bin, Len, {NInt, NSys, NExt} = N, P) when Len >= 14 ->
    case Bin of
        <<A, B, C, _/binary>> ->
            {Prefix, N1} = if
                               NInt > 0 -> {[" *.", dotted([A, B, C])], {NInt - 1, NSys, NExt}};
                               NSys > 0 -> {[" ", dotted([A, B, C, 0])], {NInt, NSys - 1, NExt}};
                               NExt > 0 -> {[" X", dotted([A, B, C, 0])], {NInt, NSys, NExt - 1}};
                               true -> {done, N}
                           end,
            case Prefix of
                done ->
                    pr(P, [" [extra bytes ", integer_to_list(Len), "] (invalid)"]);
                _ ->
                    P1 = pr(P, Prefix),
                    case Bin of
                        <<_:3/binary, Dly:24, Bw:24, Mtu:16, Rel, Ld, Hct, Rest/binary>> ->
                            P2 = pr(P1, [" d=", integer_to_list(10 * Dly), " b=",
                                         integer_to_list(case Bw of 0 -> 0; _ -> 10000000 div Bw end),
                                         " r=", integer_to_list(Rel), " l=", integer_to_list(Ld),
                                         " M=", integer_to_list(min(Bw + Dly, 16#FFFFFF)),
                                         " mtu=", integer_to_list(Mtu), " in ",
                                         integer_to_list(Hct), " hops"]),
                            igrp_entries(Rest, Len - 14, N1, P2);
                        _ ->
                            ?TRUNC("igrp", P1)
                    end
            end;
        _ ->
            ?TRUNC("igrp", P)
    end;
igrp_entries(_Bin, Len, {NInt, NSys, NExt}, P) ->
    case NInt + NSys + NExt + Len of
        0 -> P;
        _ -> pr(P, " (invalid)")
    end.


%%% EGP

-spec egp(binary(), non_neg_integer(), #printer{}) -> #printer{}.
egp(<<Ver, _Type, _Code, _Status, _Sum:16, As:16, Seq:16, _/binary>> = Bin, Len, P)
  when Len >= 16, byte_size(Bin) >= 16 ->
    L = integer_to_list(Len),
    case P#printer.verbose of
        0 ->
            pr(P, ["EGPv", integer_to_list(Ver), ", AS ", integer_to_list(As), ", seq ",
                   integer_to_list(Seq), ", length ", L]);
        _ when Ver =/= 2 ->
            pr(P, ["EGPv", integer_to_list(Ver), ", length ", L, "[version ",
                   integer_to_list(Ver), "]"]);
        _ ->
            egp_v2(Bin, pr(P, ["EGPv", integer_to_list(Ver), ", length ", L]))
    end;
egp(_Bin, _Len, P) ->
    ?TRUNC_RET("egp", P).

%% -v, version 2: the message (an update's reachability list is not
%% decoded: tcpdump's is)
egp_v2(<<_, 3, Code, Status, _:48, Hello:16, Poll:16, _/binary>>, P) ->
    Codes = {"request", "confirm", "refuse", "cease", "cease_ack"},
    St = {"unspecified", "active_mode", "passive_mode", "insufficient_resources",
          "administratively_prohibited", "going_down", "parameter_violation", "protocol_violation"},
    pr(P, [" acquire",
           if
               Code =< 1 ->
                   [" ", element(Code + 1, Codes),
                    if
                        Status =< 2 -> [" ", element(Status + 1, St)];
                        true -> [" [status ", integer_to_list(Status), "]"]
                    end,
                    " hello:", integer_to_list(Hello), " poll:", integer_to_list(Poll)];
               Code =< 4 ->
                   [" ", element(Code + 1, Codes),
                    case Status of
                        0 -> " unspecified";
                        _ when Status >= 3, Status =< 7 -> [" ", element(Status + 1, St)];
                        _ -> ["[status ", integer_to_list(Status), "]"]
                    end];
               true ->
                   ["[code ", integer_to_list(Code), "]"]
           end]);
egp_v2(<<_, 5, Code, Status, _/binary>>, P) when Code =< 1 ->
    pr(P, [" ", element(Code + 1, {"hello", "i-h-u"}), egp_state(Status)]);
egp_v2(<<_, 5, Code, _/binary>>, P) ->
    pr(P, ["[reach code ", integer_to_list(Code), "]"]);
egp_v2(<<_, 2, _, Status, _:64, Net:4/binary, _/binary>>, P) ->
    {H, P1} = host(ip4(Net), P),
    pr(P1, [" poll", egp_state(Status), " net:", H]);
egp_v2(<<_, 8, _, Status, _:48, Reason:16, _/binary>>, P) ->
    Reasons = {"unspecified", "bad_EGP_header_format", "bad_EGP_data_field_format",
               "reachability_info_unavailable", "excessive_polling_rate", "no_response",
               "unsupported_version"},
    pr(P, [" error", egp_state(Status),
           case Reason =< 6 of
               true -> [" ", element(Reason + 1, Reasons)];
               false -> [" [reason ", integer_to_list(Reason), "]"]
           end]);
egp_v2(<<_, 1, _/binary>>, P) ->
    P;
egp_v2(<<_, Type, _/binary>>, P) ->
    pr(P, ["[type ", integer_to_list(Type), "]"]).

egp_state(S) when S =< 2 -> [" state:", element(S + 1, {"indeterminate", "up", "down"})];
egp_state(S) -> [" [status ", integer_to_list(S), "]"].
