%%% @doc Remote capture policy: who may do what (group policy: cookies, port
%%% and cookie sources, allowed devices, inject, handle caps, the listen
%%% address, --user).
%%%
%%% On the three-namespace bed of ewpcap_testbed, set up and torn down by
%%% ewpcap_remote (see there: A clients, B ewpcapd, C the traffic peer).
%%% @end
-module(ewpcap_remote_policy_SUITE).

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
    [{group, policy}].

groups() ->
    [
        {policy, [], [
            wrong_cookie_refused,
            port_and_cookie_sources,
            allow_devices,
            no_inject,
            max_handles,
            listen_loopback_only,
            user_nobody_capabilities
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
%%% Group policy: who may do what
%%% ===================================================================

wrong_cookie_refused() ->
    [{doc, "A node with another cookie is refused: ping pang, calls {error, nodedown}"}].
wrong_cookie_refused(Config) ->
    D = daemon(Config),
    Bad = client(Config, "bad", #{cookie => "not" ++ ?config(cookie, Config)}),
    ?assertEqual(pang, on(Bad, fun() -> net_adm:ping(?D) end)),
    ?assertEqual({error, nodedown}, on(Bad, fun() -> ewpcap:dev(?D) end)),
    ?assertEqual({error, nodedown},
                 on(Bad, fun() -> ewpcap:open(?D, <<"vethB">>, []) end)),
    ?assertEqual({badrpc, nodedown}, on(Bad, fun() -> rpc:call(?D, ewpcap, dev, []) end)),
    % the daemon is fine for the right cookie
    A = client(Config, "a"),
    ?assertEqual(pong, on(A, fun() -> net_adm:ping(?D) end)),
    {ok, Info} = on(A, fun() -> ewpcap:info(?D) end),
    ?assertEqual([?TB:node_name(A)], proplists:get_value(nodes, Info)),
    Log = log_text(D),
    ?assertNotEqual(nomatch, string:find(Log, "as bad@10.77.1.1 refused")).

port_and_cookie_sources() ->
    [{doc, "--port N is the port epmd gives out; --cookie-file and $EWPCAPD_COOKIE work and keep the cookie off the command line"}].
port_and_cookie_sources(Config) ->
    Cookie = ?config(cookie, Config),
    A = client(Config, "a"),
    lists:foreach(
        fun({Via, Extra}) ->
            D = daemon(Config, #{cookie_via => Via, args => Extra}),
            Cmdline = read_cmdline(?TB:daemon_os_pid(D)),
            ct:pal("~p: ~p", [Via, Cmdline]),
            % -cookie is visible in ps by design ("prefer --cookie-file")
            ?assertEqual({Via, Via =:= arg}, {Via, lists:member(Cookie, Cmdline)}),
            ?assertEqual({Via, pong}, {Via, on(A, fun() -> net_adm:ping(?D) end)}),
            ?assertMatch({ok, _}, on(A, fun() -> ewpcap:dev(?D) end)),
            case Extra of
                ["--port", P] ->
                    ?assertEqual({port, list_to_integer(P), 6},
                                 on(A, fun() -> erl_epmd:port_please("ewpcap", ?TB:addr(b)) end));
                [] ->
                    ok
            end,
            ok = ?TB:stop_daemon(D),
            ?assert(?TB:poll(fun() -> on(A, fun() -> net_adm:ping(?D) end) =:= pang end, ?WAIT))
        end,
        [{file, ["--port", "40555"]}, {env, []}, {arg, ["--port", "40556"]}]).

%% The process name the daemon must have: ewpcapd, or under $EWPCAPD (a
%% sanitizer wrapper that execs another build) the name of what runs.
daemon_comm(OsPid) ->
    case os:getenv("EWPCAPD") of
        Unset when Unset =:= false; Unset =:= "" ->
            <<"ewpcapd">>;
        _ ->
            {ok, Exe} = file:read_link("/proc/" ++ integer_to_list(OsPid) ++ "/exe"),
            Base = list_to_binary(filename:basename(Exe)),
            binary:part(Base, 0, min(15, byte_size(Base)))
    end.

read_cmdline(OsPid) ->
    {ok, Bin} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/cmdline"),
    [binary_to_list(A) || A <- binary:split(Bin, <<0>>, [global, trim_all])].

allow_devices() ->
    [{doc, "--allow vethB --allow lo: only those open, others get {error, device_not_allowed}"}].
allow_devices(Config) ->
    _D = daemon(Config, ["--allow", "vethB", "--allow", "lo"]),
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    Open = fun(Dev) -> on(A, Ag, fun() -> ewpcap:open(?D, Dev, [{filter, "udp port 9"}]) end) end,
    ?assertEqual({error, device_not_allowed}, Open(<<"vethBA">>)),
    ?assertEqual({error, device_not_allowed}, Open("")),         % "any"
    ?assertEqual({error, device_not_allowed}, Open(<<"vethA">>)),
    ?assertEqual({error, device_not_allowed}, Open(<<"vethb">>)),
    ?assertEqual({error, device_not_allowed}, Open(<<"vethB ">>)),
    ?assertEqual([], handles(A, ?D)),
    {ok, S} = Open(<<"vethB">>),
    {ok, L} = Open("lo"),
    % the same through rpc
    ?assertEqual({error, device_not_allowed},
                 on(A, fun() -> rpc:call(?D, ewpcap, open, [<<"vethBA">>, []]) end)),
    % and capture works on the allowed device
    {ok, S2} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(40091)}]) end),
    M = marker(20),
    send_udp(Config, 40091, [M]),
    ?assertEqual([M], payloads(on(A, Ag, fun() -> recv_packets(S2, 1, ?WAIT) end))),
    {ok, Dev} = on(A, fun() -> ewpcap:dev(?D) end),
    ct:pal("dev ~p, getifaddrs ~p", [Dev, on(A, fun() -> ewpcap:getifaddrs(?D) end)]),
    [ok = on(A, Ag, fun() -> ewpcap:close(X) end) || X <- [S, L, S2]].

no_inject() ->
    [{doc, "--no-inject: write gets {error, inject_disabled} (ewpcap and rpc), nothing reaches C, capture still works"}].
no_inject(Config) ->
    _D = daemon(Config, ["--no-inject"]),
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    {ok, S} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(40101)}]) end),
    Frame = ethernet_frame(marker(16)),
    {ok, Td} = ?TB:tcpdump_start(ns(Config, c), "vethC", 1, "ether proto 0x88b5"),
    ?assertEqual({error, inject_disabled}, on(A, Ag, fun() -> ewpcap:write(S, Frame) end)),
    {ok, RS} = on(A, Ag, fun() -> rpc:call(?D, ewpcap, open, [<<"vethB">>, []]) end),
    ?assertEqual({error, inject_disabled}, on(A, fun() -> rpc:call(?D, ewpcap, write, [RS, Frame]) end)),
    ?assertMatch({error, {tcpdump, timeout, _}}, ?TB:tcpdump_result(Td, 1000)),
    ok = on(A, fun() -> rpc:call(?D, ewpcap, close, [RS]) end),
    M = marker(20),
    send_udp(Config, 40101, [M]),
    ?assertEqual([M], payloads(on(A, Ag, fun() -> recv_packets(S, 1, ?WAIT) end))),
    ok = on(A, Ag, fun() -> ewpcap:close(S) end).

max_handles() ->
    [{doc, "--max-handles 3 --max-node-handles 2: further opens get {error, too_many_handles}; a close frees a slot"}].
max_handles(Config) ->
    _D = daemon(Config, ["--max-handles", "3", "--max-node-handles", "2"]),
    A = client(Config, "a"),
    A2 = client(Config, "a2"),
    Ag = ?TB:agent(A),
    Ag2 = ?TB:agent(A2),
    Open = fun(Node, Agent) ->
        on(Node, Agent, fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, "udp port 9"}]) end)
    end,
    {ok, S1} = Open(A, Ag),
    {ok, _S2} = Open(A, Ag),
    ?assertEqual({error, too_many_handles}, Open(A, Ag)),               % per node
    ?assertEqual({error, too_many_handles},
                 on(A, fun() -> rpc:call(?D, ewpcap, open, [<<"vethB">>, []]) end)),
    {ok, _S3} = Open(A2, Ag2),
    ?assertEqual({error, too_many_handles}, Open(A2, Ag2)),             % in all
    ?assertEqual(3, length(handles(A, ?D))),
    ok = on(A, Ag, fun() -> ewpcap:close(S1) end),
    {ok, S4} = Open(A2, Ag2),
    ?assertEqual({error, too_many_handles}, Open(A, Ag)),
    ?assertEqual(3, length(handles(A, ?D))),
    % a handle of a dead owner frees its slot
    true = on(A2, fun() -> exit(Ag2, kill) end),
    ?assert(?TB:poll(fun() -> length(handles(A, ?D)) =:= 1 end, ?WAIT)),
    {ok, _} = Open(A, Ag),
    ?assertEqual(badarg, on(A2, fun() -> error_of(fun() -> ewpcap:close(S4) end) end)).

listen_loopback_only() ->
    [{doc, "--listen 127.0.0.1: registered with epmd but unreachable from A; reachable on B's loopback"}].
listen_loopback_only(Config) ->
    _D = daemon(Config, ["--listen", "127.0.0.1"]),
    A = client(Config, "a"),
    {port, DPort, _} = on(A, fun() -> erl_epmd:port_please("ewpcap", ?TB:addr(b)) end),
    ?assertEqual(pang, on(A, fun() -> net_adm:ping(?D) end)),
    ?assertEqual({error, nodedown}, on(A, fun() -> ewpcap:dev(?D) end)),
    ?assertMatch({error, econnrefused},
                 on(A, fun() -> gen_tcp:connect(?TB:addr(b), DPort, [], 2000) end)),
    {0, Ss} = ?TB:os_cmd("ip", ["netns", "exec", ns(Config, b), "ss", "-Hltn",
                                "sport", "=", ":" ++ integer_to_list(DPort)]),
    ct:pal("listening: ~s", [Ss]),
    ?assertMatch([_], string:lexemes(Ss, "\n")),
    ?assertNotEqual(nomatch, string:find(Ss, "127.0.0.1:" ++ integer_to_list(DPort))),
    % a daemon named for loopback serves a node on B's loopback
    _DL = daemon(Config, #{name => "ewpl@127.0.0.1", args => ["--listen", "127.0.0.1"]}),
    Local = client(Config, "loc", #{role => b, host => {127, 0, 0, 1}}),
    ?assertMatch({ok, _}, on(Local, fun() -> ewpcap:dev('ewpl@127.0.0.1') end)).

user_nobody_capabilities() ->
    [{doc, "--user nobody, started with supplementary groups 4 and 24: Uid and Gid 65534, no groups, "
           "CapEff/CapPrm/CapBnd 0000000000003000, capture and write still work"}].
user_nobody_capabilities(Config) ->
    D = daemon(Config, #{args => ["--user", "nobody"], wrap => ["setpriv", "--groups", "4,24"]}),
    Pid = ?TB:daemon_os_pid(D),
    Status = ?TB:proc_status(Pid),
    ct:pal("/proc/~p/status: ~p", [Pid, Status]),
    ?assertEqual(daemon_comm(Pid), proplists:get_value(<<"Name">>, Status)),
    ?assertEqual([<<"65534">>, <<"65534">>, <<"65534">>, <<"65534">>],
                 string:lexemes(proplists:get_value(<<"Uid">>, Status), "\t ")),
    ?assertEqual(<<"0000000000003000">>, proplists:get_value(<<"CapEff">>, Status)),
    ?assertEqual(<<"0000000000003000">>, proplists:get_value(<<"CapPrm">>, Status)),
    ?assertEqual(<<"0000000000000000">>, proplists:get_value(<<"CapInh">>, Status)),
    ?assertEqual(<<"0000000000000000">>, proplists:get_value(<<"CapAmb">>, Status)),
    ?assertEqual([<<"65534">>, <<"65534">>, <<"65534">>, <<"65534">>],
                 string:lexemes(proplists:get_value(<<"Gid">>, Status), "\t ")),
    ?assertEqual([], string:lexemes(proplists:get_value(<<"Groups">>, Status, <<>>), "\t ")),
    A = client(Config, "a"),
    Ag = ?TB:agent(A),
    {ok, S} = on(A, Ag, fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(40111)}]) end),
    M = marker(100),
    send_udp(Config, 40111, [M]),
    ?assertEqual([M], payloads(on(A, Ag, fun() -> recv_packets(S, 1, ?WAIT) end))),
    Frame = ethernet_frame(marker(16)),
    {ok, Td} = ?TB:tcpdump_start(ns(Config, c), "vethC", 1, "ether proto 0x88b5"),
    ?assertEqual(ok, on(A, Ag, fun() -> ewpcap:write(S, Frame) end)),
    ?assertEqual({ok, [Frame]}, ?TB:tcpdump_result(Td, ?WAIT)),
    ok = on(A, Ag, fun() -> ewpcap:close(S) end),
    % the bounding set too (README: "permitted, effective and bounding sets")
    ?assertEqual(<<"0000000000003000">>,
                 proplists:get_value(<<"CapBnd">>, ?TB:proc_status(Pid))).

