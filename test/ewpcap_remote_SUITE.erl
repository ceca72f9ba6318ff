%%% @doc Remote capture: ewpcapd on one node, its clients on others; what one
%%% client captures (group remote) and several clients on one daemon
%%% (group clients).
%%%
%%% On the three-namespace bed of ewpcap_testbed, set up and torn down by
%%% ewpcap_remote (see there: A clients, B ewpcapd, C the traffic peer).
%%% @end
-module(ewpcap_remote_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").
-include("ewpcap_remote.hrl").

-compile([export_all, nowarn_export_all]).

%%% ===================================================================
%%% Common Test callbacks
%%% ===================================================================

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [{group, remote}, {group, clients}].

groups() ->
    [
        {remote, [], [
            remote_capture_byte_identical,
            remote_read_filter_stats_close,
            remote_dev_getifaddrs,
            remote_write_seen_in_c,
            capture_on_distribution_link,
            burst_in_order_batch_and_single
        ]},
        {clients, [], [
            two_clients_own_filters,
            other_client_closes_crashes_killed,
            client_killed_mid_burst,
            frozen_client_does_not_slow_others
        ]}
    ].

init_per_suite(Config) ->
    ewpcap_remote:init_suite(Config, ?MODULE).

end_per_suite(Config) ->
    ewpcap_remote:end_suite(Config).

init_per_group(_Group, Config) ->
    Config.

end_per_group(_Group, _Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    ewpcap_remote:init_case(Config).

end_per_testcase(Case, Config) ->
    ewpcap_remote:end_case(Case, Config).

%%% ===================================================================
%%% Group remote: capturing on B from a node in A
%%% ===================================================================

remote_capture_byte_identical() ->
    [{doc, "Datagrams sent from C and captured on B's vethB arrive in A byte-identical to what tcpdump sees in C"}].
remote_capture_byte_identical(Config) ->
    D = daemon(Config),
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    Port = 40001,
    {ok, S} = on(A, Ag, fun() ->
        ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(Port)}])
    end),
    ?assertMatch(#ewpcap_resource{res = {?D, _, _}}, S),
    Payloads = [marker(N) || N <- [1, 17, 100, 1000, 1400, 1472]],
    {ok, Td} = ?TB:tcpdump_start(ns(Config, c), "vethC", length(Payloads), udp_filter(Port)),
    send_udp(Config, Port, Payloads),
    {ok, InC} = ?TB:tcpdump_result(Td, ?WAIT),
    Got = on(A, Ag, fun() -> recv_packets(S, length(Payloads), ?WAIT) end),
    ?assertEqual(length(Payloads), length(Got)),
    [?assertEqual({?DLT_EN10MB, byte_size(P)}, {Dlt, Len}) || {Dlt, Len, P} <- Got],
    ?assertEqual(InC, [P || {_, _, P} <- Got]),
    ?assertEqual(Payloads, [element(5, decode_udp(P)) || {_, _, P} <- Got]),
    [?assertMatch({{10, 77, 2, 2}, {10, 77, 2, 1}, _, Port, _}, decode_udp(P)) || {_, _, P} <- Got],
    ok = on(A, Ag, fun() -> ewpcap:close(S) end),
    ?assertEqual([], handles(A, ?D)),
    stop(D).

remote_read_filter_stats_close() ->
    [{doc, "read/2, filter/2, stats/1 and close/1 of a handle on B work from A"}].
remote_read_filter_stats_close(Config) ->
    _D = daemon(Config),
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    {P1, P2} = {40011, 40012},
    {ok, S} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(P1)}]) end),
    % read/2
    ?assertEqual({error, eagain}, on(A, Ag, fun() -> ewpcap:read(S, 100) end)),
    M1 = marker(64),
    send_udp(Config, P1, [M1]),
    {ok, Pkt1} = on(A, Ag, fun() -> ewpcap:read(S, ?WAIT) end),
    ?assertMatch({_, _, _, P1, M1}, decode_udp(Pkt1)),
    % filter/2 while capturing: only P2 now
    ?assertEqual(ok, on(A, Ag, fun() -> ewpcap:filter(S, udp_filter(P2)) end)),
    ?assertMatch({error, [_ | _]}, on(A, Ag, fun() -> ewpcap:filter(S, "udp port") end)),
    [M2, M3] = [marker(32), marker(32)],
    send_udp(Config, P1, [M2]),
    send_udp(Config, P2, [M3]),
    [{_, _, Pkt3}] = on(A, Ag, fun() -> recv_packets(S, 1, ?WAIT) end),
    ?assertMatch({_, _, _, P2, M3}, decode_udp(Pkt3)),
    ?assertEqual([], on(A, Ag, fun() -> quiet(S, ?QUIET) end)),
    % stats/1
    {ok, Stat} = on(A, Ag, fun() -> ewpcap:stats(S) end),
    ct:pal("stats ~p", [Stat]),
    ?assertMatch(#ewpcap_stat{capt = 0}, Stat),
    ?assert(Stat#ewpcap_stat.recv >= 2),
    % stats and close work from another process of A too (not the owner)
    ?assertMatch({ok, #ewpcap_stat{}}, on(A, fun() -> ewpcap:stats(S) end)),
    ?assertEqual(1, length(handles(A, ?D))),
    ok = on(A, fun() -> ewpcap:close(S) end),
    ?assertEqual([], handles(A, ?D)),
    ?assertEqual(badarg, on(A, fun() -> error_of(fun() -> ewpcap:close(S) end) end)),
    ?assertEqual(badarg, on(A, fun() -> error_of(fun() -> ewpcap:stats(S) end) end)),
    ?assertEqual(badarg, on(A, fun() -> error_of(fun() -> ewpcap:filter(S, "ip") end) end)),
    % the owner is alive and gets nothing more
    send_udp(Config, P2, [marker(8)]),
    ?assertEqual([], on(A, Ag, fun() -> quiet(S, ?QUIET) end)),
    ?assert(on(A, fun() -> is_process_alive(Ag) end)).

remote_dev_getifaddrs() ->
    [{doc, "dev/1 and getifaddrs/1 from A list B's devices and addresses, not A's"}].
remote_dev_getifaddrs(Config) ->
    _D = daemon(Config),
    A = client(Config, "a"),
    {{ok, Dev}, {ok, Ifs}, {ok, Local}} =
        on(A, fun() -> {ewpcap:dev(?D), ewpcap:getifaddrs(?D), inet:getifaddrs()} end),
    ct:pal("B: ~p~n~p", [Dev, Ifs]),
    Names = [N || {N, _} <- Ifs],
    ?assert(lists:member(Dev, Names)),
    ?assert(lists:member("vethB", Names)),
    ?assert(lists:member("vethBA", Names)),
    ?assertNot(lists:member("vethA", Names)),
    ?assertNot(lists:member("vethC", Names)),
    ?assert(lists:keymember("vethA", 1, Local)),
    {"vethB", BAttrs} = lists:keyfind("vethB", 1, Ifs),
    ?assert(lists:member({addr, ?TB:addr(b2)}, BAttrs)),
    {"vethBA", BAAttrs} = lists:keyfind("vethBA", 1, Ifs),
    ?assert(lists:member({addr, ?TB:addr(b)}, BAAttrs)),
    % the two calls agree with themselves from a second client node
    A2 = client(Config, "a2"),
    ?assertEqual({{ok, Dev}, {ok, Ifs}},
                 on(A2, fun() -> {ewpcap:dev(?D), ewpcap:getifaddrs(?D)} end)).

remote_write_seen_in_c() ->
    [{doc, "write/2 from A injects on B's vethB: tcpdump in C sees the frame byte-identical, C's stack receives a UDP datagram"}].
remote_write_seen_in_c(Config) ->
    _D = daemon(Config),
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    {ok, S} = on(A, Ag, fun() ->
        ewpcap:open(?D, <<"vethB">>, [{filter, "udp port 9 and udp port 10"}])
    end),
    % a raw broadcast frame
    Frame = ethernet_frame(marker(16)),
    {ok, Td} = ?TB:tcpdump_start(ns(Config, c), "vethC", 1, "ether proto 0x88b5"),
    ?assertEqual(ok, on(A, Ag, fun() -> ewpcap:write(S, Frame) end)),
    ?assertEqual({ok, [Frame]}, ?TB:tcpdump_result(Td, ?WAIT)),
    % a UDP datagram for C's socket, written as iodata
    CPort = 40021,
    Payload = marker(40),
    {CMac, Sock} = c_udp_socket(Config, CPort),
    Udp = udp_frame(CMac, ?TB:addr(b2), ?TB:addr(c), 40020, CPort, Payload),
    <<Head:14/binary, Rest/binary>> = Udp,
    {ok, Td2} = ?TB:tcpdump_start(ns(Config, c), "vethC", 1, udp_filter(CPort)),
    ?assertEqual(ok, on(A, Ag, fun() -> ewpcap:write(S, [Head, binary_to_list(Rest)]) end)),
    ?assertEqual({ok, [Udp]}, ?TB:tcpdump_result(Td2, ?WAIT)),
    ?assertMatch({ok, {{10, 77, 2, 1}, 40020, Payload}},
                 on_c(Config, fun() -> gen_udp:recv(Sock, 0, ?WAIT) end)),
    ok = on_c(Config, fun() -> gen_udp:close(Sock) end),
    ok = on(A, Ag, fun() -> ewpcap:close(S) end).

capture_on_distribution_link() ->
    [{doc, "Capturing on vethBA, which carries the distribution, shows other traffic (epmd) but never the daemon's own connections"}].
capture_on_distribution_link(Config) ->
    _D = daemon(Config),
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    A2 = client(Config, "a2"),
    {port, DPort, _} = on(A, fun() -> erl_epmd:port_please("ewpcap", ?TB:addr(b)) end),
    {ok, All} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethBA">>, []) end),
    {ok, Tcp} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethBA">>, [{filter, "tcp"}]) end),
    % A2 looks the daemon up in B's epmd, connects and calls it
    ?assertEqual(pong, on(A2, fun() -> net_adm:ping(?D) end)),
    [{ok, _} = on(A2, fun() -> ewpcap:dev(?D) end) || _ <- lists:seq(1, 20)],
    timer:sleep(?QUIET),
    {PAll, PTcp} = on(A, Ag, fun() -> {quiet(All, ?QUIET), quiet(Tcp, 0)} end),
    Ports = fun(Pkts) -> lists:usort(lists:append([tcp_ports(P) || {_, _, P} <- Pkts])) end,
    ct:pal("~p packets (~p tcp), tcp ports ~p; daemon port ~p",
           [length(PAll), length(PTcp), Ports(PTcp), DPort]),
    ?assert(lists:member(4369, Ports(PTcp))),
    ?assertNot(lists:member(DPort, Ports(PAll))),
    ?assertNot(lists:member(DPort, Ports(PTcp))),
    ?assert(length(PAll) < 200),
    ?assertEqual(lists:sort(PTcp), lists:sort([X || {_, _, P} = X <- PAll, tcp_ports(P) =/= []])),
    [ok = on(A, Ag, fun() -> ewpcap:close(X) end) || X <- [All, Tcp]].

burst_in_order_batch_and_single() ->
    [{doc, "A burst of 3000 datagrams from C reaches A in order, per packet and in {batch, 64}: all that B's kernel captured"}].
burst_in_order_batch_and_single(Config) ->
    _D = daemon(Config),
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    Port = 40161,
    N = 3000,
    % a small snaplen: more slots in the kernel ring for the burst (with
    % 65535 the 16 MiB ring holds ~250 packets and drops show in stats)
    {ok, S1} = on(A, Ag, fun() ->
        ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(Port)}, {snaplen, 256}])
    end),
    {ok, S2} = on(A, Ag, fun() ->
        ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(Port)}, {snaplen, 256}, {batch, 64}])
    end),
    ok = on_c(Config, fun() -> stream(Port, N, 0) end),
    % count what arrives until nothing more comes for 1 s (30 s at most)
    {Seq1, Seq2, Batches} = on(A, Ag, fun() -> burst_collect(S1, S2, 30000) end),
    {ok, St1} = on(A, Ag, fun() -> ewpcap:stats(S1) end),
    {ok, St2} = on(A, Ag, fun() -> ewpcap:stats(S2) end),
    Hs = handles(A, ?D),
    ct:pal("single: ~p packets, batch: ~p packets in ~p messages~nstats ~p ~p~ninfo ~p",
           [length(Seq1), length(Seq2), Batches, St1, St2, Hs]),
    [?assertEqual(lists:usort(Seq), Seq) || Seq <- [Seq1, Seq2]],       % in order, no duplicates
    ?assert(length(Seq1) >= N * 9 div 10),
    % everything the kernel gave the daemon went to A
    ?assertEqual(St1#ewpcap_stat.recv - St1#ewpcap_stat.drop, length(Seq1)),
    ?assertEqual(St2#ewpcap_stat.recv - St2#ewpcap_stat.drop, length(Seq2)),
    ?assertEqual([{0, length(Seq1)}, {0, length(Seq2)}],
                 [{proplists:get_value(drops, H), proplists:get_value(packets, H)}
                  || R <- [S1#ewpcap_resource.ref, S2#ewpcap_resource.ref],
                     H <- Hs, proplists:get_value(ref, H) =:= R]),
    ?assert(Batches < length(Seq2)),
    [ok = on(A, Ag, fun() -> ewpcap:close(X) end) || X <- [S1, S2]].

%% On A: the sequence numbers of the stream's packets of S1 (single) and
%% S2 (batches), until 1 s passes without any.
burst_collect(#ewpcap_resource{ref = R1}, #ewpcap_resource{ref = R2}, Max) ->
    Deadline = erlang:monotonic_time(millisecond) + Max,
    burst_collect(R1, R2, Deadline, [], [], 0).

burst_collect(R1, R2, Deadline, A1, A2, NB) ->
    Wait = min(1000, max(0, Deadline - erlang:monotonic_time(millisecond))),
    receive
        {ewpcap, R1, _, _, _, P} ->
            burst_collect(R1, R2, Deadline, [seq(P) | A1], A2, NB);
        {ewpcap_batch, R2, _, Ps} ->
            burst_collect(R1, R2, Deadline, A1, lists:reverse([seq(P) || {_, _, P} <- Ps], A2),
                          NB + 1)
    after Wait ->
        {lists:reverse(A1), lists:reverse(A2), NB}
    end.

seq(Packet) ->
    {_, _, _, _, <<I:32, "stream", _/binary>>} = decode_udp(Packet),
    I.

%%% ===================================================================
%%% Group clients: several client nodes on one daemon
%%% ===================================================================

two_clients_own_filters() ->
    [{doc, "Two client nodes capture on the same device of B with different filters: each gets only its own packets"}].
two_clients_own_filters(Config) ->
    _D = daemon(Config),
    {A, Ag, S1, P1} = capturing_client(Config, "a", 40031),
    {A2, Ag2, S2, P2} = capturing_client(Config, "a2", 40032),
    M1 = [marker(20) || _ <- lists:seq(1, 5)],
    M2 = [marker(20) || _ <- lists:seq(1, 5)],
    lists:foreach(fun({X, Y}) -> send_udp(Config, P1, [X]), send_udp(Config, P2, [Y]) end,
                  lists:zip(M1, M2)),
    ?assertEqual(M1, payloads(on(A, Ag, fun() -> recv_packets(S1, 5, ?WAIT) end))),
    ?assertEqual(M2, payloads(on(A2, Ag2, fun() -> recv_packets(S2, 5, ?WAIT) end))),
    ?assertEqual([], on(A, Ag, fun() -> quiet(S1, ?QUIET) end)),
    ?assertEqual([], on(A2, Ag2, fun() -> quiet(S2, 0) end)),
    Hs = handles(A, ?D),
    ?assertEqual(2, length(Hs)),
    ?assertEqual(lists:sort([?TB:node_name(A), ?TB:node_name(A2)]),
                 lists:sort([node(proplists:get_value(owner, H)) || H <- Hs])).

other_client_closes_crashes_killed() ->
    [{doc, "A second client closing, its owner crashing, its node SIGKILLed: the first client keeps receiving"}].
other_client_closes_crashes_killed(Config) ->
    _D = daemon(Config),
    {A, Ag, S1, P1} = capturing_client(Config, "a", 40041),
    A2 = client(Config, "a2"),
    P2 = 40042,
    Ref1 = S1#ewpcap_resource.ref,
    Still = fun(Step) ->
        M = marker(24),
        send_udp(Config, P1, [M]),
        ?assertEqual({Step, [M]}, {Step, payloads(on(A, Ag, fun() -> recv_packets(S1, 1, ?WAIT) end))}),
        ?assertEqual({Step, [Ref1]}, {Step, [proplists:get_value(ref, H) || H <- handles(A, ?D),
                                          node(proplists:get_value(owner, H)) =:= ?TB:node_name(A)]})
    end,
    Open2 = fun() ->
        Owner = ?TB:agent(A2),
        {ok, S} = on(A2, Owner, fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(P2)}]) end),
        M = marker(24),
        send_udp(Config, P2, [M]),
        ?assertEqual([M], payloads(on(A2, Owner, fun() -> recv_packets(S, 1, ?WAIT) end))),
        {Owner, S}
    end,
    Gone = fun(#ewpcap_resource{ref = Ref}) ->
        ?assert(?TB:poll(fun() -> not lists:member(Ref, refs(A, ?D)) end, ?WAIT))
    end,
    % 1. close
    {Ow1, S21} = Open2(),
    ok = on(A2, Ow1, fun() -> ewpcap:close(S21) end),
    Gone(S21),
    Still(close),
    % 2. the owner crashes (killed)
    {Ow2, S22} = Open2(),
    true = on(A2, fun() -> exit(Ow2, kill) end),
    Gone(S22),
    Still(owner_killed),
    % 3. the node is SIGKILLed
    {_Ow3, S23} = Open2(),
    ok = ?TB:kill_node(A2),
    Gone(S23),
    ?assert(?TB:poll(fun() -> not lists:member(?TB:node_name(A2), connected(A, ?D)) end, ?WAIT)),
    Still(node_killed).

client_killed_mid_burst() ->
    [{doc, "A second client SIGKILLed in the middle of a burst both capture: the first still gets every packet, in order"}].
client_killed_mid_burst(Config) ->
    _D = daemon(Config),
    Port = 40181,
    N = 3000,
    Opts = [{filter, udp_filter(Port)}, {snaplen, 256}],
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    {ok, S} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethB">>, Opts) end),
    A2 = client(Config, "a2"),
    Ag2 = ?TB:agent(A2),
    {ok, _} = on(A2, Ag2, fun() -> ewpcap:open(?D, <<"vethB">>, Opts) end),
    {ok, _} = on(A2, Ag2, fun() -> ewpcap:open(?D, <<"vethB">>, [{batch, 16} | Opts]) end),
    % paced (a packet a millisecond or more): the kill falls in the burst
    ok = on_c(Config, fun() -> _ = spawn(fun() -> stream(Port, N, 1) end), ok end),
    % mid burst: the daemon has delivered some of it, not all
    Delivered = fun() -> handle_packets(A, S#ewpcap_resource.ref) end,
    ?assert(?TB:poll(fun() -> Delivered() > 0 end, ?WAIT)),
    ok = ?TB:kill_node(A2),
    AtKill = Delivered(),
    ct:pal("A2 killed when ~p of ~p packets had been delivered to A", [AtKill, N]),
    ?assert(AtKill < N),
    Seq = on(A, Ag, fun() -> seqs(S, 30000) end),
    {ok, St} = on(A, Ag, fun() -> ewpcap:stats(S) end),
    ct:pal("~p packets, stats ~p", [length(Seq), St]),
    ?assertEqual(lists:usort(Seq), Seq),
    ?assertEqual(St#ewpcap_stat.recv - St#ewpcap_stat.drop, length(Seq)),
    ?assert(length(Seq) >= N * 9 div 10),
    ?assertEqual([S#ewpcap_resource.ref], refs(A, ?D)),
    ?assertEqual([?TB:node_name(A)], connected(A, ?D)).

frozen_client_does_not_slow_others() ->
    [{doc, "A client node frozen (SIGSTOP) while 14 MB of packets are queued for it does not delay another client's packets"}].
frozen_client_does_not_slow_others(Config) ->
    _D = daemon(Config),
    Port = 40191,
    N = 10000,
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    {ok, S} = on(A, Ag, fun() ->
        ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(Port)}, {snaplen, 256}])
    end),
    % the yardstick: the same stream with no other client, now
    TI = erlang:monotonic_time(millisecond),
    ok = on_c(Config, fun() -> stream(Port, N, 0, 1400) end),
    IdleSent = erlang:monotonic_time(millisecond) - TI,
    {IdleSeq, IdleGap} = on(A, Ag, fun() -> seqs_gap(S, 30000) end),
    {ok, St0} = on(A, Ag, fun() -> ewpcap:stats(S) end),
    ct:pal("idle: sent in ~p ms; A got ~p packets, largest gap ~p ms",
           [IdleSent, length(IdleSeq), IdleGap]),
    A2 = client(Config, "a2"),
    Ag2 = ?TB:agent(A2),
    {ok, _} = on(A2, Ag2, fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(Port)}]) end),
    ok = ?TB:signal_node(A2, "STOP"),
    try
        T0 = erlang:monotonic_time(millisecond),
        ok = on_c(Config, fun() -> stream(Port, N, 0, 1400) end),
        Sent = erlang:monotonic_time(millisecond) - T0,
        {Seq, MaxGap} = on(A, Ag, fun() -> seqs_gap(S, 30000) end),
        {ok, St} = on(A, Ag, fun() -> ewpcap:stats(S) end),
        Info = info(A, ?D),
        ct:pal("sent in ~p ms; A got ~p packets, largest gap ~p ms, stats ~p~ninfo ~p",
               [Sent, length(Seq), MaxGap, St, Info]),
        ?assertEqual(lists:usort(Seq), Seq),
        ?assertEqual((St#ewpcap_stat.recv - St0#ewpcap_stat.recv) -
                     (St#ewpcap_stat.drop - St0#ewpcap_stat.drop), length(Seq)),
        ?assert(length(Seq) >= N * 9 div 10),
        % no stall: no gap over ten times the idle run's largest, nor
        % longer than sending the whole idle stream took
        ?assert(MaxGap =< max(10 * IdleGap, IdleSent))
    after
        ?TB:kill_node(A2)
    end.

%% On A: the stream's sequence numbers for S until 1 s without packets.
seqs(S, Max) ->
    element(1, seqs_gap(S, Max)).

%% ... and the largest gap between two arrivals (ms).
seqs_gap(#ewpcap_resource{ref = Ref}, Max) ->
    Deadline = erlang:monotonic_time(millisecond) + Max,
    seqs_gap(Ref, Deadline, undefined, 0, []).

seqs_gap(Ref, Deadline, Last, Gap, Acc) ->
    Wait = min(1000, max(0, Deadline - erlang:monotonic_time(millisecond))),
    receive
        {ewpcap, Ref, _, _, _, P} ->
            Now = erlang:monotonic_time(millisecond),
            Gap1 = case Last of undefined -> Gap; _ -> max(Gap, Now - Last) end,
            seqs_gap(Ref, Deadline, Now, Gap1, [seq(P) | Acc])
    after Wait ->
        {lists:reverse(Acc), Gap}
    end.

