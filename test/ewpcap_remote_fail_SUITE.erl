%%% @doc Remote capture when something fails (group failures: a client or the
%%% daemon killed or frozen, an owner gone while its filter compiles),
%%% and what operators see of it (group operators: info, the log).
%%%
%%% On the three-namespace bed of ewpcap_testbed, set up and torn down by
%%% ewpcap_remote (see there: A clients, B ewpcapd, C the traffic peer).
%%% @end
-module(ewpcap_remote_fail_SUITE).

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
    [{group, failures}, {group, operators}].

groups() ->
    [
        {failures, [], [
            client_killed_handles_gone,
            client_frozen_dropped_after_tick,
            daemon_killed_owner_gets_nodedown,
            daemon_frozen_owner_gets_nodedown,
            big_filter_compile_owner_gone
        ]},
        {operators, [], [
            info_lists_handles_and_nodes,
            verbose_log_names_peers
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
%%% Group failures
%%% ===================================================================

client_killed_handles_gone() ->
    [{doc, "A client node SIGKILLed: its handles vanish from ewpcap:info/1 of B within the tick time"}].
client_killed_handles_gone(Config) ->
    _D = daemon(Config),
    {A, Ag, _S1, _} = capturing_client(Config, "a", 40051),
    {ok, _} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethBA">>, [{filter, "udp port 9"}]) end),
    Obs = client(Config, "obs"),
    ANode = ?TB:node_name(A),
    ?assertEqual(2, length([H || H <- handles(Obs, ?D), node(proplists:get_value(owner, H)) =:= ANode])),
    T0 = erlang:monotonic_time(millisecond),
    ok = ?TB:kill_node(A),
    Gone = fun() ->
        {ok, Info} = on(Obs, fun() -> ewpcap:info(?D) end),
        [] =:= [H || H <- proplists:get_value(handles, Info),
                     node(proplists:get_value(owner, H)) =:= ANode]
            andalso not lists:member(ANode, proplists:get_value(nodes, Info))
    end,
    ?assert(?TB:poll(Gone, (?TICK * 3 div 2 + 1) * 1000)),
    ct:pal("handles gone ~p ms after kill -9", [erlang:monotonic_time(millisecond) - T0]).

client_frozen_dropped_after_tick() ->
    [{doc, "A client node frozen (SIGSTOP) is dropped by B after the tick time and its handles closed"}].
client_frozen_dropped_after_tick(Config) ->
    _D = daemon(Config),
    {A, _Ag, _S1, _} = capturing_client(Config, "a", 40061),
    Obs = client(Config, "obs"),
    ANode = ?TB:node_name(A),
    ?assertEqual(1, length(handles(Obs, ?D))),
    % A talks to the daemon right before the STOP: its silence starts after
    % T0, however late a loaded machine made its last tick
    T0 = erlang:monotonic_time(millisecond),
    {ok, _} = on(A, fun() -> ewpcap:dev(?D) end),
    ok = ?TB:signal_node(A, "STOP"),
    try
        Gone = fun() ->
            {ok, Info} = on(Obs, fun() -> ewpcap:info(?D) end),
            [] =:= proplists:get_value(handles, Info)
                andalso not lists:member(ANode, proplists:get_value(nodes, Info))
        end,
        % a silent peer is dropped after --ticktime seconds (4 s): allow 8 s
        Dropped = ?TB:poll(Gone, 2 * ?TICK * 1000),
        Elapsed = erlang:monotonic_time(millisecond) - T0,
        ct:pal("frozen client dropped: ~p after ~p ms", [Dropped, Elapsed]),
        ?assert(Dropped),
        % not early: a live peer ticks every ticktime/4 and OTP itself
        % allows ticktime * 3/4 (MinT); A's last byte came after T0 (its
        % dev call), so half the tick time from T0 is a safe lower bound
        ?assert(Elapsed >= (?TICK div 2) * 1000)
    after
        ?TB:kill_node(A)
    end.

daemon_killed_owner_gets_nodedown() ->
    [{doc, "ewpcapd killed (kill -9): the owner gets {ewpcap_error, Ref, nodedown} promptly, read/2 returns {error, nodedown}, the owner lives"}].
daemon_killed_owner_gets_nodedown(Config) ->
    D = daemon(Config),
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    {ok, S1} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, "udp port 9"}]) end),
    {ok, S2} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, "udp port 10"}]) end),
    Ref1 = S1#ewpcap_resource.ref,
    ok = ?TB:kill_daemon(D),
    T0 = erlang:monotonic_time(millisecond),
    Msg = on(A, Ag, fun() ->
        receive
            {ewpcap_error, Ref1, _} = M -> M
        after 3000 -> timeout
        end
    end),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ct:pal("~p after ~p ms", [Msg, Elapsed]),
    ?assertEqual({ewpcap_error, Ref1, nodedown}, Msg),
    ?assertEqual({error, nodedown}, on(A, Ag, fun() -> ewpcap:read(S2, 3000) end)),
    ?assert(on(A, fun() -> is_process_alive(Ag) end)),
    ?assertEqual([], on(A, Ag, fun() -> flush_list() end)),
    ?assertEqual({error, nodedown}, on(A, fun() -> ewpcap:dev(?D) end)),
    ?assertEqual({error, nodedown}, on(A, fun() -> ewpcap:open(?D, <<"vethB">>, []) end)),
    % the handle is gone: close answers ok
    ?assertEqual(ok, on(A, Ag, fun() -> ewpcap:close(S1) end)),
    % a new daemon under the same name does not know the old handles
    _D2 = daemon(Config),
    ?assertEqual(badarg, on(A, fun() -> error_of(fun() -> ewpcap:stats(S2) end) end)),
    ?assertMatch({ok, _}, on(A, fun() -> ewpcap:dev(?D) end)),
    ?assert(on(A, fun() -> is_process_alive(Ag) end)).

daemon_frozen_owner_gets_nodedown() ->
    [{doc, "ewpcapd frozen (SIGSTOP): after the client's tick time the owner gets {ewpcap_error, Ref, nodedown} and lives"}].
daemon_frozen_owner_gets_nodedown(Config) ->
    D = daemon(Config),
    {A, Ag, S, _} = capturing_client(Config, "a", 40141),
    Ref = S#ewpcap_resource.ref,
    ok = ?TB:signal_daemon(D, "STOP"),
    try
        T0 = erlang:monotonic_time(millisecond),
        Msg = on(A, Ag, fun() ->
            receive
                {ewpcap_error, Ref, _} = M -> M
            after (?TICK * 2 + 2) * 1000 -> timeout
            end
        end),
        Elapsed = erlang:monotonic_time(millisecond) - T0,
        ct:pal("~p after ~p ms", [Msg, Elapsed]),
        ?assertEqual({ewpcap_error, Ref, nodedown}, Msg),
        ?assert(on(A, fun() -> is_process_alive(Ag) end)),
        ?assertEqual(ok, on(A, Ag, fun() -> ewpcap:close(S) end))
    after
        ?TB:kill_daemon(D)
    end.

big_filter_compile_owner_gone() ->
    [{doc, "While a large filter compiles the daemon answers others; an owner killed, or its node SIGKILLed, mid-compile leaves no handle"}].
big_filter_compile_owner_gone(Config) ->
    D = daemon(Config),
    {Obs, ObsAg, ObsS, ObsPort} = capturing_client(Config, "obs", 40201),
    A = client(Config, "a"),
    % ~1-3 s of pcap_compile
    Big = string:copies("ip and ", 25000) ++ "ip",
    StartOpen = fun() ->
        on(A, fun() ->
            spawn(fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, Big}, {limit, -1}]) end)
        end)
    end,
    % mid compile: the daemon burns CPU (a compile worker; 50 ms of it)
    % while the opener still waits for its reply
    MidCompile = fun(Opener, Ticks0) ->
        ?assert(?TB:poll(fun() -> cpu_ticks(?TB:daemon_os_pid(D)) - Ticks0 >= 5 end, ?WAIT)),
        ?assert(on(A, fun() -> is_process_alive(Opener) end))
    end,
    Answer = fun() ->
        T = erlang:monotonic_time(millisecond),
        {ok, _} = on(Obs, fun() -> ewpcap:dev(?D) end),
        M = marker(20),
        send_udp(Config, ObsPort, [M]),
        ?assertEqual([M], payloads(on(Obs, ObsAg, fun() -> recv_packets(ObsS, 1, ?WAIT) end))),
        erlang:monotonic_time(millisecond) - T
    end,
    Idle = lists:max([Answer() || _ <- lists:seq(1, 3)]),
    Ticks1 = cpu_ticks(?TB:daemon_os_pid(D)),
    Owner = StartOpen(),
    MidCompile(Owner, Ticks1),
    % the loop is not blocked by the compile
    Busy = Answer(),
    % the owner dies mid-compile
    ?assert(on(A, fun() -> is_process_alive(Owner) end)),
    true = on(A, fun() -> exit(Owner, kill) end),
    ct:pal("answered in ~p ms during a compile, ~p ms idle", [Busy, Idle]),
    ?assert(Busy =< 20 * max(Idle, 1)),
    % and the whole node, mid-compile
    Ticks2 = cpu_ticks(?TB:daemon_os_pid(D)),
    MidCompile(StartOpen(), Ticks2),
    ok = ?TB:kill_node(A),
    OnlyObs = fun() -> refs(Obs, ?D) =:= [ObsS#ewpcap_resource.ref] end,
    Clean = ?TB:poll(OnlyObs, 15000),
    ct:pal("handles ~p", [handles(Obs, ?D)]),
    ?assert(Clean),
    ?assert(?TB:pid_alive(?TB:daemon_os_pid(D))),
    M2 = marker(20),
    send_udp(Config, ObsPort, [M2]),
    ?assertEqual([M2], payloads(on(Obs, ObsAg, fun() -> recv_packets(ObsS, 1, ?WAIT) end))),
    % nothing stays behind: a new open still compiles and works
    ?assertEqual(ok, on(Obs, ObsAg, fun() -> ewpcap:filter(ObsS, udp_filter(ObsPort)) end)).

%%% ===================================================================
%%% Group operators
%%% ===================================================================

info_lists_handles_and_nodes() ->
    [{doc, "ewpcap:info/1 lists each handle with owner, device, filter, snaplen, packets, bytes, drops, queue, and the connected nodes"}].
info_lists_handles_and_nodes(Config) ->
    D = daemon(Config),
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    Port = 40121,
    Filter = udp_filter(Port),
    {ok, S} = on(A, Ag, fun() ->
        ewpcap:open(?D, <<"vethB">>, [{filter, Filter}, {snaplen, 128}])
    end),
    {A2, Ag2, S2, _} = capturing_client(Config, "a2", 40122),
    Payloads = [marker(300) || _ <- lists:seq(1, 5)],
    send_udp(Config, Port, Payloads),
    Got = on(A, Ag, fun() -> recv_packets(S, 5, ?WAIT) end),
    ?assertEqual([{?DLT_EN10MB, 342, 128} || _ <- Payloads],
                 [{Dlt, Len, byte_size(P)} || {Dlt, Len, P} <- Got]),
    {ok, Info} = on(A, fun() -> ewpcap:info(?D) end),
    ct:pal("info ~p", [Info]),
    ?assertEqual(?D, proplists:get_value(node, Info)),
    ?assertEqual(?TB:daemon_os_pid(D), proplists:get_value(os_pid, Info)),
    ?assertEqual(lists:sort([?TB:node_name(A), ?TB:node_name(A2)]),
                 lists:sort(proplists:get_value(nodes, Info))),
    Hs = proplists:get_value(handles, Info),
    [H] = [H || H <- Hs, proplists:get_value(ref, H) =:= S#ewpcap_resource.ref],
    [H2] = [X || X <- Hs, proplists:get_value(ref, X) =:= S2#ewpcap_resource.ref],
    ?assertEqual(Ag, proplists:get_value(owner, H)),
    ?assertEqual(Ag2, proplists:get_value(owner, H2)),
    {?D, Guard, _} = S#ewpcap_resource.res,
    ?assertEqual(Guard, proplists:get_value(link, H)),
    ?assertEqual("vethB", proplists:get_value(device, H)),
    ?assertEqual(list_to_binary(Filter), proplists:get_value(filter, H)),
    ?assertEqual(128, proplists:get_value(snaplen, H)),
    ?assertEqual(?DLT_EN10MB, proplists:get_value(datalink, H)),
    ?assertEqual(5, proplists:get_value(packets, H)),
    Bytes = proplists:get_value(bytes, H),
    ?assertEqual(5 * 128, Bytes),                     % the captured bytes sent
    ?assertEqual(0, proplists:get_value(drops, H)),
    Queue = proplists:get_value(queue, H),
    ?assert(is_integer(Queue) andalso Queue >= 0),
    ?assertEqual(0, proplists:get_value(packets, H2)),
    [?assertEqual({K, true}, {K, lists:keymember(K, 1, H)})
     || K <- [ref, owner, link, device, filter, snaplen, datalink, packets, bytes, drops, queue]],
    % after the owner's close the list shrinks
    ok = on(A, Ag, fun() -> ewpcap:close(S) end),
    ?assertEqual([S2#ewpcap_resource.ref], refs(A, ?D)).

verbose_log_names_peers() ->
    [{doc, "ewpcapd -v logs connects, opens, closes and disconnects with the peer's node name"}].
verbose_log_names_peers(Config) ->
    D = daemon(Config),
    {A, Ag, S, _} = capturing_client(Config, "a", 40131),
    ANode = atom_to_list(?TB:node_name(A)),
    ok = on(A, Ag, fun() -> ewpcap:close(S) end),
    {ok, _} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethBA">>, [{filter, "udp port 9"}]) end),
    ?assertMatch({error, [_ | _]}, on(A, Ag, fun() -> ewpcap:open(?D, <<"nosuchdev0">>, []) end)),
    ok = ?TB:stop_node(A),
    Bad = client(Config, "bad", #{cookie => "x" ++ ?config(cookie, Config)}),
    pang = on(Bad, fun() -> net_adm:ping(?D) end),
    Want = [
        "connect from " ++ ANode,
        ANode ++ ": open vethB for <" ++ ANode,
        ANode ++ ": close vethB",
        ANode ++ ": open vethBA",
        ANode ++ ": open nosuchdev0 failed",
        "disconnect " ++ ANode,
        "as bad@10.77.1.1 refused"
    ],
    Missing = fun() -> [W || W <- Want, string:find(log_text(D), W) =:= nomatch] end,
    ?TB:poll(fun() -> Missing() =:= [] end, ?WAIT),
    ct:pal("daemon log:~n~s", [log_text(D)]),
    ?assertEqual([], Missing()).

