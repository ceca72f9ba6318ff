%%% @doc Soak: the embedded ewpcapd gives back what it takes.
%%%
%%% After a warm-up of 50 open/close cycles the daemon's open file
%%% descriptors (`/proc/PID/fd') and resident set (`VmRSS' of
%%% `/proc/PID/status') are taken as the baseline. Then 1,000 open/close
%%% cycles, and 500 owner processes that each open lo with a filter, get
%%% packets and are killed while capturing. After each, once the daemon's
%%% info shows no handle, the fds must equal the baseline exactly and the
%%% RSS be within 4 MiB of it. The figures are printed with ct:pal.
%%%
%%% Shorter runs (make ct-asan sets these): `EWP_SOAK_CYCLES' (default
%%% 1000) open/close cycles and `EWP_SOAK_OWNERS' (default 500, rounded up
%%% to whole waves of 25) owners; the case names keep the full figures.
%%% Under a sanitizer (`EWP_SANITIZER') the fds are checked, RSS is only
%%% printed.
%%%
%%% Traffic: UDP datagrams to 127.0.0.1 only, to a port bound by the suite.
%%% Every loop and wait is bounded.
%%% @end
-module(ewpcap_soak_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-compile([export_all, nowarn_export_all]).

-import(ewpcap_daemon_helpers, [handles/1, os_pid/1, flush/0]).

-define(DH, ewpcap_daemon_helpers).

-define(WARMUP, 50).            % open/close cycles before the baseline
-define(CYCLES, 1000).          % open/close cycles
-define(OWNERS, 500).           % owners killed while capturing
-define(WAVE, 25).              % owners at once
-define(RSS_SLACK_KB, 4096).    % RSS may exceed the baseline by this much
-define(WAIT, 5000).            % ms for an open or the first packet
-define(DRAIN, 15000).          % ms for the handle count to reach 0

%%% ===================================================================
%%% Common Test callbacks
%%% ===================================================================

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [open_close_1000, owners_killed_500, resources_back_to_baseline].

init_per_suite(Config) ->
    Node = ewpcap:node(),
    case ?DH:embedded_on_lo() of
        ok ->
            {Rx, Port} = udp_receiver(),
            Filter = "udp port " ++ integer_to_list(Port),
            ok = cycles(?WARMUP, Filter),
            ok = wait_no_handles(Node),
            Pid = os_pid(Node),
            Base = usage(Pid),
            ct:pal("ewpcapd ~p (os pid ~p) after ~p warm-up cycles: ~s",
                   [Node, Pid, ?WARMUP, show(Base)]),
            % the receiver stays open for the whole suite (no ICMP unreachable)
            Holder = hold_socket(Rx),
            [{daemon, Node}, {os_pid, Pid}, {baseline, Base}, {udp_port, Port},
             {udp_holder, Holder} | Config];
        Skip ->
            Skip
    end.

end_per_suite(Config) ->
    case ?config(udp_holder, Config) of
        undefined -> ok;
        Holder -> Holder ! stop
    end,
    _ = application:stop(ewpcap),
    ok.

init_per_testcase(_Case, Config) ->
    flush(),
    Config.

end_per_testcase(_Case, _Config) ->
    flush(),
    ok.

%%% ===================================================================
%%% Cases
%%% ===================================================================

open_close_1000() ->
    [{doc, "1,000 open/close cycles on lo with a filter; then fds equal the baseline, RSS within 4 MiB"}].
open_close_1000(Config) ->
    Filter = "udp port " ++ integer_to_list(?config(udp_port, Config)),
    T0 = erlang:monotonic_time(millisecond),
    N = n_cycles(),
    ok = cycles(N, Filter),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ct:pal("~p open/close cycles in ~p ms (~.2f ms each)", [N, Ms, Ms / N]),
    assert_baseline(Config, io_lib:format("after ~p open/close cycles", [N])).

owners_killed_500() ->
    [{doc, "500 owners each open lo with a filter, get packets and are killed; every handle closes, fds and RSS return"}].
owners_killed_500(Config) ->
    Node = ?config(daemon, Config),
    Port = ?config(udp_port, Config),
    Filter = "udp port " ++ integer_to_list(Port),
    {ok, Tx} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false}]),
    T0 = erlang:monotonic_time(millisecond),
    Stats = lists:foldl(
        fun(_Wave, Acc) -> wave(?WAVE, Filter, Tx, Port, Acc) end,
        #{owners => 0, packets => 0, rounds => 0},
        lists:seq(1, n_owners() div ?WAVE)),
    Killed = erlang:monotonic_time(millisecond),
    ok = wait_no_handles(Node),
    Drained = erlang:monotonic_time(millisecond),
    ok = gen_udp:close(Tx),
    ct:pal("~p owners killed while capturing in ~p ms (~p send rounds, ~p packets seen "
           "by owners before their death); handles gone ~p ms after the last kill",
           [maps:get(owners, Stats), Killed - T0, maps:get(rounds, Stats),
            maps:get(packets, Stats), Drained - Killed]),
    ?assertEqual(n_owners(), maps:get(owners, Stats)),
    assert_baseline(Config, io_lib:format("after ~p owners killed", [n_owners()])).

resources_back_to_baseline() ->
    [{doc, "At the end: the same daemon, no handles, fds equal the baseline, RSS within 4 MiB"}].
resources_back_to_baseline(Config) ->
    Node = ?config(daemon, Config),
    ?assertEqual(Node, ewpcap:node()),
    ?assertEqual(?config(os_pid, Config), os_pid(Node)),
    ?assertEqual([], handles(Node)),
    assert_baseline(Config, "at the end").

%%% ===================================================================
%%% Waves of owners
%%% ===================================================================

%% N owners open lo; datagrams are sent until each has seen one (at most
%% 20 rounds); a last burst is sent and they are killed at once.
wave(N, Filter, Tx, Port, Acc) ->
    Self = self(),
    Owners = [spawn(fun() -> owner(Self, Filter) end) || _ <- lists:seq(1, N)],
    [receive
         {opened, O, ok} -> ok;
         {opened, O, Other} -> ct:fail({open, Other})
     after ?WAIT -> ct:fail({open_timeout, O})
     end || O <- Owners],
    {Rounds, Packets} = until_all_captured(Owners, Tx, Port, 0, 0),
    % killed mid-capture: packets are still arriving
    [ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, <<"ewp_soak_burst">>) || _ <- lists:seq(1, 20)],
    [exit(O, kill) || O <- Owners],
    #{owners := No, packets := Np, rounds := Nr} = Acc,
    Acc#{owners := No + N, packets := Np + Packets, rounds := Nr + Rounds}.

until_all_captured(Waiting, _Tx, _Port, Rounds, Packets) when Waiting =:= [] ->
    {Rounds, Packets};
until_all_captured(Waiting, _Tx, _Port, 20, _Packets) ->
    ct:fail({owners_without_packets, length(Waiting)});
until_all_captured(Waiting, Tx, Port, Rounds, Packets) ->
    [ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, <<"ewp_soak">>) || _ <- lists:seq(1, 3)],
    Deadline = erlang:monotonic_time(millisecond) + 250,
    {Left, Got} = collect_captured(Waiting, Deadline, 0),
    until_all_captured(Left, Tx, Port, Rounds + 1, Packets + Got).

collect_captured([], _Deadline, Got) ->
    {[], Got};
collect_captured(Waiting, Deadline, Got) ->
    receive
        {captured, O} ->
            collect_captured(lists:delete(O, Waiting), Deadline, Got + 1)
    after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
        {Waiting, Got}
    end.

owner(Parent, Filter) ->
    case ewpcap:open(<<"lo">>, [{filter, Filter}]) of
        {ok, #ewpcap_resource{ref = Ref}} ->
            Parent ! {opened, self(), ok},
            receive
                {ewpcap, Ref, _, _, _, _} -> Parent ! {captured, self()}
            after 60000 -> ok
            end,
            capture(Ref);
        Other ->
            Parent ! {opened, self(), Other}
    end.

%% Keep capturing until killed (bounded).
capture(Ref) ->
    receive
        {ewpcap, Ref, _, _, _, _} -> capture(Ref)
    after 60000 ->
        ok
    end.

%%% ===================================================================
%%% Helpers
%%% ===================================================================

%% ?CYCLES, or $EWP_SOAK_CYCLES for a shorter run.
n_cycles() ->
    env_count("EWP_SOAK_CYCLES", ?CYCLES).

%% ?OWNERS, or $EWP_SOAK_OWNERS rounded up to whole waves.
n_owners() ->
    (env_count("EWP_SOAK_OWNERS", ?OWNERS) + ?WAVE - 1) div ?WAVE * ?WAVE.

env_count(Var, Default) ->
    case os:getenv(Var) of
        Unset when Unset =:= false; Unset =:= "" ->
            Default;
        V ->
            case string:to_integer(V) of
                {N, ""} when N > 0 -> N;
                _ -> ct:fail({bad_env, Var, V})
            end
    end.

cycles(0, _Filter) ->
    ok;
cycles(N, Filter) ->
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, Filter}]),
    ok = ewpcap:close(S),
    cycles(N - 1, Filter).

wait_no_handles(Node) ->
    Deadline = erlang:monotonic_time(millisecond) + ?DRAIN,
    wait_no_handles(Node, Deadline).

wait_no_handles(Node, Deadline) ->
    case handles(Node) of
        [] ->
            ok;
        Hs ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> ct:fail({handles_left, length(Hs)});
                false -> timer:sleep(100), wait_no_handles(Node, Deadline)
            end
    end.

%% {Fds, RssKb} of an OS process.
usage(Pid) ->
    P = integer_to_list(Pid),
    {ok, Fds} = file:list_dir("/proc/" ++ P ++ "/fd"),
    {ok, Status} = file:read_file("/proc/" ++ P ++ "/status"),
    {match, [Rss]} = re:run(Status, "VmRSS:\\s+(\\d+) kB", [{capture, all_but_first, list}]),
    {length(Fds), list_to_integer(Rss)}.

show({Fds, RssKb}) ->
    io_lib:format("~p fds, VmRSS ~p kB", [Fds, RssKb]).

assert_baseline(Config, When) ->
    Node = ?config(daemon, Config),
    Pid = ?config(os_pid, Config),
    ?assertEqual(Pid, os_pid(Node)),
    ok = wait_no_handles(Node),
    {BaseFds, BaseRss} = Base = ?config(baseline, Config),
    {Fds, Rss} = Now = usage(Pid),
    ct:pal("~s: ~s (baseline ~s): fds delta ~p, RSS delta ~p kB (slack ~p kB)",
           [When, show(Now), show(Base), Fds - BaseFds, Rss - BaseRss, ?RSS_SLACK_KB]),
    ?assertEqual(BaseFds, Fds),
    case ewpcap_testbed:sanitizer() of
        false ->
            Rss =< BaseRss + ?RSS_SLACK_KB orelse
                ct:fail({rss_grew_kb, Rss - BaseRss, {baseline_kb, BaseRss}, {now_kb, Rss}});
        San ->
            % ASan's quarantine keeps freed memory: RSS says nothing there
            ct:pal("RSS not checked under ~s", [San])
    end,
    ok.

udp_receiver() ->
    {ok, Rx} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false},
                                {recbuf, 1024 * 1024}]),
    {ok, Port} = inet:port(Rx),
    {Rx, Port}.

%% A process that owns the receiving socket and empties it now and then.
hold_socket(Rx) ->
    Pid = spawn(fun() -> drain(Rx) end),
    ok = gen_udp:controlling_process(Rx, Pid),
    Pid.

drain(Rx) ->
    receive
        stop -> gen_udp:close(Rx)
    after 200 ->
        drain_now(Rx),
        drain(Rx)
    end.

drain_now(Rx) ->
    case gen_udp:recv(Rx, 0, 0) of
        {ok, _} -> drain_now(Rx);
        {error, _} -> ok
    end.
