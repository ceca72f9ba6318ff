%%% @doc ewpcap_merge, the reorder window of ewpcap_dump's merged
%%% captures, tested directly: no daemon, no clock (every call is given
%%% its `Now' in ms). Packets are `{Time, Tag}'.
%%% @end
-module(ewpcap_merge_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).

all() ->
    [release_when_safe, release_at_window, late_packet, remove_releases,
     equal_times_and_flush, random_streams_in_order, bad_window].

%% A packet is released once every live interface has shown a later or
%% equal time, and not before.
release_when_safe(_Config) ->
    M0 = ewpcap_merge:new([a, b, c], 1000),
    {[], M1} = ewpcap_merge:push(a, [{10, a1}, {30, a2}], 0, M0),
    {[], M2} = ewpcap_merge:push(b, [{20, b1}], 1, M1),       % c has shown nothing
    % every interface has shown 15 or later
    {[{a, {10, a1}}, {c, {15, c1}}], M3} = ewpcap_merge:push(c, [{15, c1}], 2, M2),
    ?assertEqual(2, ewpcap_merge:held(M3)),                   % 20 and 30
    {[{b, {20, b1}}], M4} = ewpcap_merge:push(c, [{25, c2}], 3, M3),
    {[{c, {25, c2}}], M5} = ewpcap_merge:push(b, [{40, b2}], 4, M4),
    {[{a, {30, a2}}], M6} = ewpcap_merge:push(c, [{35, c3}], 5, M5),
    ?assertEqual(2, ewpcap_merge:held(M6)),                   % 35 and 40
    ?assertEqual(0, ewpcap_merge:late(M6)),
    % nothing is due by the window before its time (b2 came at 4)
    ?assertEqual(996, ewpcap_merge:timeout(8, M6)),
    {[], _} = ewpcap_merge:advance(1003, M6),
    {[{c, {35, c3}}, {b, {40, b2}}], _} = ewpcap_merge:advance(1004, M6).

%% A quiet interface holds a packet back for the window, not longer: due
%% exactly when it has waited the window, with the earlier ones before it.
release_at_window(_Config) ->
    M0 = ewpcap_merge:new([a, b], 100),
    ?assertEqual(infinity, ewpcap_merge:timeout(0, M0)),
    {[], M1} = ewpcap_merge:push(a, [{50, a1}], 1000, M0),
    {[], M2} = ewpcap_merge:push(a, [{70, a2}], 1040, M1),
    {[], M3} = ewpcap_merge:push(a, [{40, a0}], 1060, M2),    % a's own order broken
    ?assertEqual(100, ewpcap_merge:timeout(1000, M3)),
    ?assertEqual(30, ewpcap_merge:timeout(1070, M3)),
    {[], M3} = ewpcap_merge:advance(1099, M3),
    % a1 is due; a0 (earlier time) goes before it, a2 waits on
    {[{a, {40, a0}}, {a, {50, a1}}], M4} = ewpcap_merge:advance(1100, M3),
    ?assertEqual(40, ewpcap_merge:timeout(1100, M4)),
    {[{a, {70, a2}}], M5} = ewpcap_merge:advance(1140, M4),
    ?assertEqual(infinity, ewpcap_merge:timeout(1140, M5)),
    ?assertEqual(0, ewpcap_merge:late(M5)).

%% A packet whose place has gone by (a later one was released at the
%% window) is released at once, counted.
late_packet(_Config) ->
    M0 = ewpcap_merge:new([a, b], 100),
    {[], M1} = ewpcap_merge:push(a, [{500, a1}], 0, M0),
    {[{a, {500, a1}}], M2} = ewpcap_merge:advance(100, M1),
    {[{b, {400, b1}}], M3} = ewpcap_merge:push(b, [{400, b1}, {600, b2}], 150, M2),
    ?assertEqual(1, ewpcap_merge:late(M3)),
    % equal to the last released time is not late
    {[{b, {600, b2}}, {a, {600, a2}}], M4} = ewpcap_merge:push(a, [{600, a2}, {700, a3}], 160, M3),
    ?assertEqual(1, ewpcap_merge:late(M4)),
    ?assertEqual(1, ewpcap_merge:held(M4)).

%% An interface removed (its host is down) holds nothing back any more:
%% its removal releases what was waiting for it; with none left, all.
remove_releases(_Config) ->
    M0 = ewpcap_merge:new([a, b, c], 10000),
    {[], M1} = ewpcap_merge:push(a, [{10, a1}, {20, a2}], 0, M0),
    {[], M2} = ewpcap_merge:push(b, [{15, b1}], 0, M1),
    {[{a, {10, a1}}, {b, {15, b1}}], M3} = ewpcap_merge:remove(c, 5, M2),
    ?assertEqual([a, b], ewpcap_merge:live(M3)),
    {[], M4} = ewpcap_merge:remove(c, 6, M3),                % twice: no change
    {[{a, {20, a2}}], M5} = ewpcap_merge:remove(b, 7, M4),
    ?assertEqual([a], ewpcap_merge:live(M5)),
    % one live interface: its packets are safe at once
    {[{a, {30, a3}}], M6} = ewpcap_merge:push(a, [{30, a3}], 8, M5),
    {[], M7} = ewpcap_merge:remove(a, 9, M6),
    % none live: a late arrival of a removed interface goes straight out
    {[{b, {40, b2}}], _} = ewpcap_merge:push(b, [{40, b2}], 10, M7).

%% Equal times keep their arrival order; flush/1 gives everything held.
equal_times_and_flush(_Config) ->
    M0 = ewpcap_merge:new([a, b], 1000),
    {[], M1} = ewpcap_merge:push(b, [{5, b1}, {9, b2}], 0, M0),
    {[], M2} = ewpcap_merge:push(b, [{9, b3}], 0, M1),
    {[{b, {5, b1}}, {a, {5, a1}}], M3} = ewpcap_merge:push(a, [{5, a1}], 0, M2),
    {Out, M4} = ewpcap_merge:flush(M3),
    ?assertEqual([{b, {9, b2}}, {b, {9, b3}}], Out),
    ?assertEqual(0, ewpcap_merge:held(M4)),
    ?assertEqual(infinity, ewpcap_merge:timeout(0, M4)).

%% Three streams, each in its own time order, arriving in random
%% interleavings and chunks with a window longer than the run: what
%% comes out (released on the way, then flushed) is every packet, in
%% time order, none late; with a short window the result is still every
%% packet, and the late ones are exactly those out of order.
random_streams_in_order(_Config) ->
    rand:seed(exsss, {14, 14, 14}),
    lists:foreach(fun(Round) -> random_round(Round) end, lists:seq(1, 200)).

random_round(Round) ->
    Streams = [{Id, lists:sort([{rand:uniform(10000), {Id, N}} || N <- lists:seq(1, rand:uniform(40))])}
               || Id <- [a, b, c]],
    All = lists:sort([{T, Tag} || {_, Ps} <- Streams, {T, Tag} <- Ps]),
    Chunks = interleave(Streams, []),
    % long window: the order is exact
    {Out, M} = run(Chunks, ewpcap_merge:new([a, b, c], 1000000), 1),
    ?assertEqual({Round, [T || {T, _} <- All]}, {Round, [T || {_, {T, _}} <- Out]}),
    ?assertEqual({Round, lists:sort(All)}, {Round, lists:sort([P || {_, P} <- Out])}),
    ?assertEqual(0, ewpcap_merge:late(M)),
    % window 0: every packet released at its arrival, late ones counted
    {Out0, M0} = run(Chunks, ewpcap_merge:new([a, b, c], 0), 1),
    ?assertEqual({Round, lists:sort(All)}, {Round, lists:sort([P || {_, P} <- Out0])}),
    ?assertEqual({Round, descents([T || {_, {T, _}} <- Out0])}, {Round, ewpcap_merge:late(M0)}).

interleave(Streams, Acc) ->
    case [S || {_, [_ | _]} = S <- Streams] of
        [] ->
            lists:reverse(Acc);
        Live ->
            {Id, Ps} = lists:nth(rand:uniform(length(Live)), Live),
            {Chunk, Rest} = lists:split(min(length(Ps), rand:uniform(5)), Ps),
            interleave(lists:keystore(Id, 1, Streams, {Id, Rest}), [{Id, Chunk} | Acc])
    end.

run(Chunks, M0, Now0) ->
    {Out, M, _} = lists:foldl(
                    fun({Id, Chunk}, {Acc, M1, Now}) ->
                            {R1, M2} = ewpcap_merge:advance(Now, M1),
                            {R2, M3} = ewpcap_merge:push(Id, Chunk, Now, M2),
                            {Acc ++ R1 ++ R2, M3, Now + 1}
                    end, {[], M0, Now0}, Chunks),
    {Rest, M4} = ewpcap_merge:flush(M),
    {Out ++ Rest, M4}.

%% Packets whose time is below the greatest time before them.
descents(Ts) ->
    {N, _} = lists:foldl(fun(T, {N, Max}) when T < Max -> {N + 1, Max};
                            (T, {N, _}) -> {N, T}
                         end, {0, 0}, Ts),
    N.

%% A window must be a non-negative integer.
bad_window(_Config) ->
    ?assertError(badarg, ewpcap_merge:new([a], -1)),
    ?assertError(badarg, ewpcap_merge:new([a], 1.5)),
    ?assertError(badarg, ewpcap_merge:new(a, 10)).
