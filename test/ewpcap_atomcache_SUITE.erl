%%% @doc The distribution header atom cache (DFLAG_DIST_HDR_ATOM_CACHE)
%%% between ewpcapd and a client that offers it, seen on the wire: a raw
%%% distribution client (ewpcap_rawdist, flags 16#2000) decodes the
%%% headers itself. Live on lo, the embedded daemon (root).
%%%
%%% Every real node of the other suites offers the flag too, so those
%%% suites run over the header as well; these cases check what they
%%% cannot see: that packet messages refer to their atoms by index after
%%% the first, that requests with references are read right, and that a
%%% bad header drops the connection and nothing else.
-module(ewpcap_atomcache_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([packets_by_reference/0, packets_by_reference/1,
         requests_by_reference/0, requests_by_reference/1,
         bad_header_drops/0, bad_header_drops/1,
         spelled_out_bound/0, spelled_out_bound/1]).

-define(ATOM_CACHE, 16#2000).
-define(WAIT, 5000).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [packets_by_reference, requests_by_reference, bad_header_drops, spelled_out_bound].

init_per_suite(Config) ->
    case os:cmd("id -u") of
        "0\n" ->
            {ok, _} = application:ensure_all_started(ewpcap),
            [{daemon, ewpcap:node()} | Config];
        _ ->
            {skip, "needs root (live capture on lo)"}
    end.

end_per_suite(_Config) ->
    ok.

packets_by_reference() ->
    [{doc, "Packet messages and batches come with the header: the first one's atoms ('', "
           "both node names, ewpcap) as new entries, every later one's as the same entries "
           "by index only; the messages decode to what was captured, and every frame "
           "(replies and links too) has a header"}].
packets_by_reference(Config) ->
    D = ?config(daemon, Config),
    {ok, C} = ewpcap_rawdist:connect(D, erlang:get_cookie(), #{flags => ?ATOM_CACHE}),
    {ok, U} = gen_udp:open(0),
    {ok, Port} = inet:port(U),
    Filter = "udp dst port " ++ integer_to_list(Port),
    {ok, Ref} = call(C, {open, <<"lo">>, [{filter, Filter}]}),
    Payloads = [<<"first">>, <<"second">>, <<"third">>],
    [ok = gen_udp:send(U, {127, 0, 0, 1}, Port, P) || P <- Payloads],
    Frames = [packet(C, ewpcap) || _ <- Payloads],
    [{Hdr1, _} | _] = Frames,
    ct:pal("headers of the packet messages: ~p", [[H || {H, _} <- Frames]]),
    Texts = [T || {_, _, T} <- Hdr1],
    [?assert(lists:member(A, Texts))
     || A <- [<<"ewpcap">>, <<>>, atom_to_binary(D), atom_to_binary(ewpcap_rawdist:name(C))]],
    ?assert(lists:all(fun({_, K, _}) -> K =:= new end, Hdr1)),
    [?assertEqual([{Ix, old, T} || {Ix, new, T} <- Hdr1], H) || {H, _} <- tl(Frames)],
    [begin
         {ewpcap, R, 1, {_, _, _}, Len, Pkt} = M,
         ?assertEqual(Ref, R),
         ?assertEqual(byte_size(Pkt), Len),
         ?assertEqual(P, binary:part(Pkt, byte_size(Pkt) - byte_size(P), byte_size(P)))
     end || {{_, M}, P} <- lists:zip(Frames, Payloads)],

    ok = call(C, {close, Ref}),

    % a batch: ewpcap_batch new, the atoms already sent by index
    {ok, BRef} = call(C, {open, <<"lo">>, [{filter, Filter}, {batch, 2}]}),
    All = Payloads ++ [<<"fourth">>],
    [ok = gen_udp:send(U, {127, 0, 0, 1}, Port, P) || P <- All],
    Batches = collect_batches(C, BRef, length(All), []),
    {BHdr1, _} = hd(Batches),
    ct:pal("headers of the batches: ~p", [[H || {H, _} <- Batches]]),
    ?assertEqual([new], [K || {_, K, <<"ewpcap_batch">>} <- BHdr1]),
    ?assertEqual([], [T || {_, new, T} <- BHdr1, T =/= <<"ewpcap_batch">>]),
    [?assertEqual([], [T || {_, new, T} <- H]) || {H, _} <- tl(Batches)],
    Pkts = [Pkt || {_, {ewpcap_batch, _, 1, L}} <- Batches, {_, _, Pkt} <- L],
    ?assertEqual(All, [binary:part(Pkt, byte_size(Pkt) - byte_size(P), byte_size(P))
                       || {Pkt, P} <- lists:zip(Pkts, All)]),
    ok = gen_udp:close(U),
    no_bad_frame(C),
    ewpcap_rawdist:close(C).

requests_by_reference() ->
    [{doc, "Requests whose atoms are cache references, new entries first and then old ones "
           "only, in segments 0 and 1, with LongAtoms for an atom past 255 bytes, are read "
           "as if spelled out"}].
requests_by_reference(Config) ->
    D = ?config(daemon, Config),
    {ok, C} = ewpcap_rawdist:connect(D, erlang:get_cookie(), #{flags => ?ATOM_CACHE}),
    From = ewpcap_rawdist:pid(C, 1),
    {Ok1, Cache1} = ref_call(C, From, {open, <<"lo">>, [{filter, "udp port 9 and udp port 10"}]},
                             #{}),
    {ok, Ref} = Ok1,
    % the same atoms again: every one an old entry now (the daemon must have kept them)
    {Ok2, Cache2} = ref_call(C, From, {stats, Ref}, Cache1),
    ?assertMatch({ok, {ewpcap_stat, _, _, _, _}}, Ok2),
    ?assert(lists:any(fun(Ix) -> Ix >= 256 end, maps:values(Cache2))),
    % an atom of 300 bytes (150 two-byte characters) in the call's Tag: LongAtoms; the
    % reply's Tag is the request's bytes, so it matches only when read right
    Long = binary_to_atom(binary:copy(<<"é"/utf8>>, 150), utf8),
    {Ok3, _} = ref_call(C, From, {close, Ref}, {make_ref(), Long}, Cache2),
    ?assertEqual(ok, Ok3),
    no_bad_frame(C),
    ewpcap_rawdist:close(C).

bad_header_drops() ->
    [{doc, "A reference to an entry never set, a term naming a ref the header lacks, a "
           "header cut short, an entry twice in one header and a pass-through frame on a "
           "connection with the cache each drop that connection; the daemon serves the "
           "next one"}].
bad_header_drops(Config) ->
    D = ?config(daemon, Config),
    Good = fun(C) -> ewpcap_rawdist:header_frame({6, ewpcap_rawdist:pid(C, 1), '', ewpcap},
                                                 hello, #{}) end,
    Bad = [{never_set, fun(C) ->
                                {F, _} = ewpcap_rawdist:header_frame(
                                           {6, ewpcap_rawdist:pid(C, 1), '', ewpcap}, hello,
                                           #{<<"ewpcap">> => 300}),
                                F
                        end},
           {ref_past_header, fun(C) ->
                                     {F, _} = Good(C),
                                     % hello, the last atom, as the ref one past the
                                     % header's last
                                     <<_:32, 131, 68, N, _/binary>> = F,
                                     Keep = byte_size(F) - 1,
                                     <<Head:Keep/binary, _>> = F,
                                     <<Head/binary, N>>
                             end},
           {header_cut_short, fun(_C) -> <<5:32, 131, 68, 3, 8, 0>> end},
           {entry_twice, fun(_C) ->
                                 B = <<131, 68, 2, 16#88, 0, 7, 1, $a, 7, 1, $b,
                                       104, 2, 82, 0, 82, 1>>,
                                 <<(byte_size(B)):32, B/binary>>
                         end},
           {pass_through, fun(C) ->
                                  B = [112, term_to_binary({6, ewpcap_rawdist:pid(C, 1), '',
                                                            ewpcap}),
                                       term_to_binary(hello)],
                                  [<<(iolist_size(B)):32>> | B]
                          end}],
    [begin
         {ok, C} = ewpcap_rawdist:connect(D, erlang:get_cookie(), #{flags => ?ATOM_CACHE}),
         {ok, _} = call(C, info),
         ok = ewpcap_rawdist:send_raw(C, Make(C)),
         receive
             {rawdist_closed, _} -> ok;
             {rawdist_closed, _, _} -> ok
         after ?WAIT ->
             ct:fail({not_dropped, What})
         end,
         ewpcap_rawdist:close(C)
     end || {What, Make} <- Bad],
    % a frame that is well formed is not dropped (the control of the test above)
    {ok, C2} = ewpcap_rawdist:connect(D, erlang:get_cookie(), #{flags => ?ATOM_CACHE}),
    {F2, _} = Good(C2),
    ok = ewpcap_rawdist:send_raw(C2, F2),
    ?assertMatch({ok, _}, call(C2, info)),
    no_bad_frame(C2),
    ewpcap_rawdist:close(C2),
    ?assertMatch({ok, _}, ewpcap:dev(D)).

spelled_out_bound() ->
    [{doc, "A frame whose references would spell out far more than its own bytes (2000 "
           "references to a cached atom of 255 four-byte characters: 4 KB that would be "
           "2 MB) drops that connection, where ewpcapd would otherwise spend 500 times "
           "the peer's bytes; the same atom 16 times, in the frame that brings it, "
           "passes; other connections are served throughout"}].
spelled_out_bound(Config) ->
    D = ?config(daemon, Config),
    {ok, Other} = ewpcap_rawdist:connect(D, erlang:get_cookie(), #{flags => ?ATOM_CACHE}),
    {ok, _} = call(Other, info),
    Long = binary_to_atom(binary:copy(<<16#10348/utf8>>, 255), utf8),
    {ok, C} = ewpcap_rawdist:connect(D, erlang:get_cookie(), #{flags => ?ATOM_CACHE}),
    From = ewpcap_rawdist:pid(C, 1),
    Ctl = {6, From, '', ewpcap},
    {F1, Cache} = ewpcap_rawdist:header_frame(Ctl, {ewpcap_test, lists:duplicate(16, Long)},
                                              #{}),
    ok = ewpcap_rawdist:send_raw(C, F1),
    % served after it (a call with the same cache: call/2 would set the
    % entries again from 250 up, the long atom's among them)
    {{ok, _}, Cache1} = ref_call(C, From, info, Cache),
    {F2, _} = ewpcap_rawdist:header_frame(Ctl, {ewpcap_test, lists:duplicate(2000, Long)},
                                          Cache1),
    ct:log("~b bytes, ~b spelled out", [byte_size(F2), 2000 * (3 + 1020)]),
    ok = ewpcap_rawdist:send_raw(C, F2),
    receive
        {rawdist_closed, _} -> ok;
        {rawdist_closed, _, _} -> ok
    after ?WAIT ->
        ct:fail(not_dropped)
    end,
    ewpcap_rawdist:close(C),
    ?assertMatch({ok, _}, call(Other, info)),
    no_bad_frame(Other),
    ewpcap_rawdist:close(Other).

%%% -------------------------------------------------------------------
%%% Helpers
%%% -------------------------------------------------------------------

call(C, Request) ->
    Tag = ewpcap_rawdist:call(C, ewpcap, Request),
    case ewpcap_rawdist:recv(C, Tag, ?WAIT) of
        {ok, Reply} -> Reply;
        timeout -> ct:fail({no_reply, Request})
    end.

%% A call whose frame refers to its atoms through the cache
ref_call(C, From, Request, Cache) ->
    ref_call(C, From, Request, make_ref(), Cache).

ref_call(C, From, Request, Tag, Cache) ->
    {F, Cache1} = ewpcap_rawdist:header_frame({6, From, '', ewpcap},
                                              {'$gen_call', {From, Tag}, Request}, Cache),
    ok = ewpcap_rawdist:send_raw(C, F),
    case ewpcap_rawdist:recv(C, Tag, ?WAIT) of
        {ok, Reply} -> {Reply, Cache1};
        timeout -> ct:fail({no_reply, Request})
    end.

%% The next packet message of kind Kind with the header that came with it
packet(C, Kind) ->
    Id = maps:get(id, C),
    receive
        {rawdist_header, Id, Hdr, {2, '', _}, M} when element(1, M) =:= Kind ->
            {Hdr, M};
        {rawdist_bad, Id, F} ->
            ct:fail({frame_without_header, F})
    after ?WAIT ->
        ct:fail({no_packet, Kind})
    end.

collect_batches(_C, _Ref, N, Acc) when N =< 0 ->
    lists:reverse(Acc);
collect_batches(C, Ref, N, Acc) ->
    {_, {ewpcap_batch, Ref, 1, L}} = B = packet(C, ewpcap_batch),
    collect_batches(C, Ref, N - length(L), [B | Acc]).

no_bad_frame(C) ->
    Id = maps:get(id, C),
    receive
        {rawdist_bad, Id, F} -> ct:fail({frame_without_header, F})
    after 0 ->
        ok
    end.
