%%% @doc Live tests of the ewpcap API through ewpcapd.
%%%
%%% Group `lo' captures on the loopback interface with the embedded daemon
%%% (the one the library starts itself). Group `netns' creates a network
%%% namespace `ewp_ct_<random>' holding a veth pair `ewpv0'/`ewpv1', starts
%%% a second daemon inside it (`ewpcapd --netns') and always deletes the
%%% namespace again.
%%%
%%% Traffic goes only to 127.0.0.1 on lo, or between the two ends of the
%%% veth pair inside the namespace. Every wait is bounded.
%%%
%%% Environment: EWPCAP_TEST_TIMEOUT (seconds) overrides the 5 minute
%%% timetrap.
%%% @end
-module(ewpcap_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-compile([export_all, nowarn_export_all]).

-define(WAIT, 5000).       % ms to wait for a packet that must come
-define(QUIET, 500).       % ms to wait for packets that must not come
-define(DLT_EN10MB, 1).
-define(ETHERTYPE, 16#88B5). % IEEE 802 local experimental ethertype 1

%%% ===================================================================
%%% Common Test callbacks
%%% ===================================================================

suite() ->
    Timetrap =
        case os:getenv("EWPCAP_TEST_TIMEOUT") of
            false -> {minutes, 5};
            S -> {seconds, list_to_integer(S)}
        end,
    [{timetrap, Timetrap}].

all() ->
    [{group, lo}, {group, netns}].

groups() ->
    [
        {lo, [], [
            udp_lo_byte_identical,
            filter_selects,
            filter_while_capturing,
            read_eagain,
            stats_counts,
            time_unit_timestamp,
            time_unit_microsecond,
            bad_device,
            bad_filter,
            filter_too_big,
            filter_limit_edge,
            unknown_option,
            wrong_option_type,
            double_close,
            use_after_close,
            two_handles,
            owner_killed,
            dev,
            getifaddrs_agrees_with_inet,
            open_defaults,
            open_empty_string_any,
            non_distributed_node
        ]},
        {netns, [], [
            netns_write_veth,
            netns_vlan_filter,
            netns_getifaddrs,
            netns_devices_not_on_host
        ]}
    ].

init_per_suite(Config) ->
    _ = root() andalso ewpcap_netns:available() andalso
        ct:pal("deleted leftover namespaces: ~p", [ewpcap_netns:cleanup()]),
    % The CT node is not distributed: the library makes it so.
    Node = ewpcap:node(),
    ?assert(is_atom(Node)),
    ?assertNotEqual(nonode@nohost, erlang:node()),
    ct:pal("embedded ewpcapd: ~p, local node ~p", [Node, erlang:node()]),
    [{daemon, Node} | Config].

end_per_suite(_Config) ->
    _ = application:stop(ewpcap),
    _ = root() andalso ewpcap_netns:available() andalso ewpcap_netns:cleanup(),
    ok.

init_per_group(lo, Config) ->
    % Skip (rather than fail every case) when this user may not capture.
    case ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]) of
        {ok, S} ->
            ok = ewpcap:close(S),
            Config;
        {error, Reason} ->
            {skip, lists:flatten(io_lib:format("cannot capture on lo: ~tp", [Reason]))}
    end;
init_per_group(netns, Config) ->
    case {root(), ewpcap_netns:available()} of
        {false, _} ->
            {skip, "needs root"};
        {true, false} ->
            {skip, "no ip command"};
        {true, true} ->
            case ewpcap_netns:create() of
                {ok, NS} ->
                    ct:pal("created namespace ~s", [NS]),
                    case ewpcap_netns:start_daemon(NS) of
                        {ok, Holder, Node} ->
                            ct:pal("netns ewpcapd ~p", [Node]),
                            [{netns, NS}, {ns_holder, Holder}, {ns_node, Node} | Config];
                        {error, Reason} ->
                            % end_per_group does not run after a failed init
                            ok = ewpcap_netns:delete(NS),
                            ct:fail({netns_daemon, Reason})
                    end;
                {error, Reason} ->
                    {skip, lists:flatten(io_lib:format("cannot create namespace: ~tp", [Reason]))}
            end
    end.

end_per_group(netns, Config) ->
    case ?config(ns_holder, Config) of
        undefined -> ok;
        Holder -> ewpcap_netns:stop_daemon(Holder)
    end,
    case ?config(netns, Config) of
        undefined ->
            ok;
        NS ->
            Result = ewpcap_netns:delete(NS),
            % not asserted here (end_per_group cannot fail a run): a
            % namespace left behind fails test/sanitize/ct-run's check
            ct:pal("deleted namespace ~s: ~p; left: ~p",
                   [NS, Result, lists:member(NS, ewpcap_netns:list())])
    end,
    ok;
end_per_group(_, _Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    flush(),
    Config.

end_per_testcase(_Case, _Config) ->
    flush(),
    ok.

%%% ===================================================================
%%% Group lo
%%% ===================================================================

udp_lo_byte_identical() ->
    [{doc, "UDP datagrams sent to 127.0.0.1 arrive on lo byte-identical, with DLT and Length"}].
udp_lo_byte_identical(_Config) ->
    {Rx, Port} = udp_receiver(),
    Tx = udp_sender(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, udp_filter(Port)}]),
    Payloads = [marker(N) || N <- [0, 1, 17, 100, 1000, 1400, 8000]],
    lists:foreach(
        fun(Payload) ->
            ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, Payload),
            {DLT, _Time, Length, Packet} = expect_payload(S, Port, Payload),
            ?assertEqual(?DLT_EN10MB, DLT),
            ?assertEqual(byte_size(Packet), Length),
            {Src, Dst, SPort, DPort, Data} = decode_udp(Packet),
            ?assertEqual({127, 0, 0, 1}, Src),
            ?assertEqual({127, 0, 0, 1}, Dst),
            {ok, TxPort} = inet:port(Tx),
            ?assertEqual(TxPort, SPort),
            ?assertEqual(Port, DPort),
            ?assertEqual(Payload, Data),
            % the datagram also reached the socket: nothing was lost on lo
            ?assertMatch({ok, {_, _, Payload}}, gen_udp:recv(Rx, 0, ?WAIT))
        end,
        Payloads
    ),
    ok = ewpcap:close(S).

filter_selects() ->
    [{doc, "A filter on one of two ports delivers only that port's datagrams"}].
filter_selects(_Config) ->
    {_Rx1, P1} = udp_receiver(),
    {_Rx2, P2} = udp_receiver(),
    Tx = udp_sender(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, udp_filter(P1)}]),
    M1 = marker(32),
    M2 = marker(32),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, P2, M2),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, P1, M1),
    _ = expect_payload(S, P1, M1),
    ?assertEqual([], unexpected(S, fun(Pkt) -> not is_udp_to(Pkt, P1) end, ?QUIET)),
    ok = ewpcap:close(S).

filter_while_capturing() ->
    [{doc, "filter/2 on an open handle replaces the filter while capturing"}].
filter_while_capturing(_Config) ->
    {_Rx1, P1} = udp_receiver(),
    {_Rx2, P2} = udp_receiver(),
    Tx = udp_sender(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, udp_filter(P1)}]),
    A1 = marker(24),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, P1, A1),
    _ = expect_payload(S, P1, A1),
    ?assertEqual(ok, ewpcap:filter(S, udp_filter(P2))),
    flush(),
    B1 = marker(24),
    B2 = marker(24),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, P1, B1),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, P2, B2),
    _ = expect_payload(S, P2, B2),
    ?assertEqual([], unexpected(S, fun(Pkt) -> not is_udp_to(Pkt, P2) end, ?QUIET)),
    % iodata and binary filters are accepted too
    ?assertEqual(ok, ewpcap:filter(S, [<<"udp ">>, "port ", integer_to_list(P1)])),
    ?assertEqual(ok, ewpcap:filter(S, list_to_binary(udp_filter(P1)))),
    flush(),
    C1 = marker(24),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, P1, C1),
    _ = expect_payload(S, P1, C1),
    ok = ewpcap:close(S).

read_eagain() ->
    [{doc, "read(S, 100) is {error, eagain} when nothing matches the filter"}].
read_eagain(_Config) ->
    {_Rx, Port} = udp_receiver(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, udp_filter(Port)}]),
    % the 100 ms, not more: at most 5 times a bare 100 ms receive timeout
    % here (the slowest of three)
    Ms = fun(F) -> T0 = erlang:monotonic_time(millisecond), R = F(), {erlang:monotonic_time(millisecond) - T0, R} end,
    Bare = lists:max([element(1, Ms(fun() -> receive after 100 -> ok end end)) || _ <- [1, 2, 3]]),
    {Elapsed, Reply} = Ms(fun() -> ewpcap:read(S, 100) end),
    ct:pal("read(S, 100): ~p after ~p ms (a bare 100 ms wait: ~p ms)", [Reply, Elapsed, Bare]),
    ?assertEqual({error, eagain}, Reply),
    ?assert(Elapsed >= 100 andalso Elapsed =< 5 * Bare),
    ?assertEqual({error, eagain}, ewpcap:read(S, 0)),
    % and read/2 returns the packet once there is one
    Tx = udp_sender(),
    M = marker(40),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, M),
    {ok, Packet} = ewpcap:read(S, ?WAIT),
    ?assertMatch({_, _, _, Port, M}, decode_udp(Packet)),
    ok = ewpcap:close(S).

stats_counts() ->
    [{doc, "stats/1 returns #ewpcap_stat{} whose recv grows by the packets sent, each counted once (lo), and capt 0"}].
stats_counts(_Config) ->
    {_Rx, Port} = udp_receiver(),
    Tx = udp_sender(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, udp_filter(Port)}]),
    {ok, #ewpcap_stat{recv = Recv0}} = ewpcap:stats(S),
    ?assert(is_integer(Recv0) andalso Recv0 >= 0),
    N = 10,
    Ms = [marker(16) || _ <- lists:seq(1, N)],
    [ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, M) || M <- Ms],
    [_ = expect_payload(S, Port, M) || M <- Ms],
    {ok, Stat} = ewpcap:stats(S),
    ct:pal("stats: ~p", [Stat]),
    ?assertMatch(#ewpcap_stat{capt = 0}, Stat),
    #ewpcap_stat{recv = Recv, drop = Drop, ifdrop = IfDrop} = Stat,
    ?assertEqual(N, Recv - Recv0),
    ?assert(is_integer(Drop) andalso Drop >= 0),
    ?assert(is_integer(IfDrop) andalso IfDrop >= 0),
    ok = ewpcap:close(S).

time_unit_timestamp() ->
    [{doc, "Default time unit: {MegaSecs, Secs, MicroSecs} within 10 s of now"}].
time_unit_timestamp(_Config) ->
    {_Rx, Port} = udp_receiver(),
    Tx = udp_sender(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, udp_filter(Port)}, {time_unit, timestamp}]),
    M = marker(8),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, M),
    {_, Time, _, _} = expect_payload(S, Port, M),
    ?assertMatch({M0, S0, U0} when is_integer(M0) andalso
                                   S0 >= 0 andalso S0 < 1000000 andalso
                                   U0 >= 0 andalso U0 < 1000000, Time),
    {Mega, Sec, Micro} = Time,
    assert_near_now(Mega * 1000000000000 + Sec * 1000000 + Micro),
    ok = ewpcap:close(S),
    % the default is the same
    {ok, S2} = ewpcap:open(<<"lo">>, [{filter, udp_filter(Port)}]),
    M2 = marker(8),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, M2),
    ?assertMatch({_, {_, _, _}, _, _}, expect_payload(S2, Port, M2)),
    ok = ewpcap:close(S2).

time_unit_microsecond() ->
    [{doc, "{time_unit, microsecond}: integer microseconds within 10 s of now"}].
time_unit_microsecond(_Config) ->
    {_Rx, Port} = udp_receiver(),
    Tx = udp_sender(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, udp_filter(Port)}, {time_unit, microsecond}]),
    M = marker(8),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, M),
    {_, Time, _, _} = expect_payload(S, Port, M),
    ?assert(is_integer(Time)),
    assert_near_now(Time),
    ok = ewpcap:close(S).

bad_device() ->
    [{doc, "Opening a device that does not exist is {error, String}"}].
bad_device(_Config) ->
    Result = ewpcap:open(<<"ewpnotexist0">>, []),
    ?assertMatch({error, _}, Result),
    {error, Reason} = Result,
    ?assert(is_string(Reason)),
    ?assertMatch({error, [_ | _]}, ewpcap:open("ewpnotexist1", [{filter, "ip"}])),
    assert_no_handles().

bad_filter() ->
    [{doc, "A filter that does not compile is {error, String}, in open and in filter/2"}].
bad_filter(_Config) ->
    {error, R1} = ewpcap:open(<<"lo">>, [{filter, "this is not a filter"}]),
    ?assert(is_string(R1)),
    % nothing stays open after a failed open
    assert_no_handles(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
    {error, R2} = ewpcap:filter(S, "udp port"),
    ?assert(is_string(R2)),
    % the handle still works
    ?assertEqual(ok, ewpcap:filter(S, "udp port 9")),
    ok = ewpcap:close(S).

filter_too_big() ->
    [{doc, "A 400 KB filter is {error, enomem} by default, not enomem with {limit, -1}"}].
filter_too_big(_Config) ->
    Big = string:copies("ip and ", 50000) ++ "ip",
    ?assertEqual({error, enomem}, ewpcap:open(<<"lo">>, [{filter, Big}])),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
    ?assertEqual({error, enomem}, ewpcap:filter(S, Big)),
    ?assertEqual({error, enomem}, ewpcap:filter(S, list_to_binary(Big))),
    Unlimited = ewpcap:filter(S, Big, [{limit, -1}]),
    ct:pal("400 KB filter with {limit, -1}: ~P", [Unlimited, 10]),
    ?assert(Unlimited =:= ok orelse
            (element(1, Unlimited) =:= error andalso is_string(element(2, Unlimited)))),
    % the daemon survived it
    ?assertMatch({ok, _}, ewpcap:stats(S)),
    ok = ewpcap:close(S).

filter_limit_edge() ->
    [{doc, "Limit check: 8191 bytes pass, 8192 are enomem, {limit, 0} rejects \"\""}].
filter_limit_edge(_Config) ->
    Pad = fun(N) -> "ip" ++ lists:duplicate(N - 2, $\s) end,
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
    R8191 = ewpcap:filter(S, Pad(8191)),
    ?assertNotEqual({error, enomem}, R8191),
    ?assertEqual(ok, R8191),
    ?assertEqual({error, enomem}, ewpcap:filter(S, Pad(8192))),
    ?assertEqual(ok, ewpcap:filter(S, Pad(8192), [{limit, 8193}])),
    ?assertEqual({error, enomem}, ewpcap:filter(S, Pad(100), [{limit, 100}])),
    ?assertEqual(ok, ewpcap:filter(S, Pad(99), [{limit, 100}])),
    ?assertEqual({error, enomem}, ewpcap:filter(S, "", [{limit, 0}])),
    ?assertEqual(ok, ewpcap:filter(S, "", [{limit, 1}])),
    ?assertEqual(ok, ewpcap:filter(S, Pad(9000), [{limit, -1}])),
    % the same check in open
    ?assertEqual({error, enomem}, ewpcap:open(<<"lo">>, [{filter, ""}, {limit, 0}])),
    ?assertEqual({error, enomem}, ewpcap:open(<<"lo">>, [{filter, Pad(8192)}])),
    {ok, S2} = ewpcap:open(<<"lo">>, [{filter, Pad(8191)}]),
    ok = ewpcap:close(S2),
    ok = ewpcap:close(S).

unknown_option() ->
    [{doc, "An unknown option is {error, {bad_option, Key}} in open and in filter/3"}].
unknown_option(_Config) ->
    ?assertEqual({error, {bad_option, foo}}, ewpcap:open(<<"lo">>, [{foo, 1}])),
    ?assertEqual({error, {bad_option, foo}}, ewpcap:open(<<"lo">>, [foo])),
    ?assertEqual({error, {bad_option, foo}},
                 ewpcap:open(<<"lo">>, [{snaplen, 100}, {foo, bar}])),
    assert_no_handles(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
    ?assertEqual({error, {bad_option, foo}}, ewpcap:filter(S, "ip", [{foo, 1}])),
    % open's options are accepted by filter/3 and ignored, as in the original
    ?assertEqual(ok, ewpcap:filter(S, "ip", [{snaplen, 100}])),
    ok = ewpcap:close(S).

wrong_option_type() ->
    [{doc, "An option value of the wrong type, or a bad argument, raises badarg"}].
wrong_option_type(_Config) ->
    Bad = [
        [{snaplen, -1}],
        [{snaplen, foo}],
        [{promisc, yes}],
        [{timeout, -5}],
        [{timeout, soon}],
        [{to_ms, soon}],
        [{immediate, 1}],
        [{buffer, "big"}],
        [{monitor, no}],
        [{time_unit, seconds}],
        [{filter, 42}],
        [{optimize, 1}],
        [{netmask, {1, 2, 3}}],
        [{limit, "8192"}],
        not_a_list
    ],
    lists:foreach(
        fun(Opts) ->
            ?assertError(badarg, ewpcap:open(<<"lo">>, Opts))
        end,
        Bad
    ),
    ?assertError(badarg, ewpcap:open(lo, [])),
    assert_no_handles(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
    ?assertError(badarg, ewpcap:filter(S, 42)),
    ?assertError(badarg, ewpcap:filter(S, "ip", [{limit, x}])),
    ?assertError(badarg, ewpcap:filter(S, "ip", [{optimize, maybe}])),
    ?assertError(badarg, ewpcap:filter(S, "ip", [{netmask, -1}])),
    ?assertError(badarg, ewpcap:write(S, 42)),
    ?assertError(badarg, ewpcap:read(S, -1)),
    ?assertError(badarg, ewpcap:close(not_a_socket)),
    ok = ewpcap:close(S).

double_close() ->
    [{doc, "close/1 of a closed handle raises badarg"}].
double_close(_Config) ->
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
    ?assertEqual(ok, ewpcap:close(S)),
    ?assertError(badarg, ewpcap:close(S)),
    ?assertNot(has_handle(S#ewpcap_resource.ref)).

use_after_close() ->
    [{doc, "write/2, filter/2 and stats/1 on a closed handle raise badarg"}].
use_after_close(_Config) ->
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
    ok = ewpcap:close(S),
    ?assertError(badarg, ewpcap:write(S, ethernet_frame(<<"closed">>))),
    ?assertError(badarg, ewpcap:filter(S, "ip")),
    ?assertError(badarg, ewpcap:filter(S, "ip", [{optimize, false}])),
    ?assertError(badarg, ewpcap:stats(S)).

two_handles() ->
    [{doc, "Two handles on lo with different filters each get only their own packets"}].
two_handles(_Config) ->
    {_Rx1, P1} = udp_receiver(),
    {_Rx2, P2} = udp_receiver(),
    Tx = udp_sender(),
    {ok, S1} = ewpcap:open(<<"lo">>, [{filter, udp_filter(P1)}]),
    {ok, S2} = ewpcap:open(<<"lo">>, [{filter, udp_filter(P2)}]),
    ?assertNotEqual(S1#ewpcap_resource.ref, S2#ewpcap_resource.ref),
    M1 = [marker(20) || _ <- lists:seq(1, 3)],
    M2 = [marker(20) || _ <- lists:seq(1, 3)],
    lists:foreach(
        fun({A, B}) ->
            ok = gen_udp:send(Tx, {127, 0, 0, 1}, P1, A),
            ok = gen_udp:send(Tx, {127, 0, 0, 1}, P2, B)
        end,
        lists:zip(M1, M2)
    ),
    [_ = expect_payload(S1, P1, M) || M <- M1],
    [_ = expect_payload(S2, P2, M) || M <- M2],
    ?assertEqual([], unexpected(S1, fun(Pkt) -> not is_udp_to(Pkt, P1) end, ?QUIET)),
    ?assertEqual([], unexpected(S2, fun(Pkt) -> not is_udp_to(Pkt, P2) end, 0)),
    ok = ewpcap:close(S1),
    % closing one leaves the other capturing
    M3 = marker(20),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, P2, M3),
    _ = expect_payload(S2, P2, M3),
    ok = ewpcap:close(S2).

owner_killed() ->
    [{doc, "When the owner is killed its handle disappears from ewpcap:info()"}].
owner_killed(_Config) ->
    Self = self(),
    Owner = spawn(fun() ->
        Result = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
        Self ! {opened, self(), Result},
        receive
            stop -> ok
        after 60000 -> ok
        end
    end),
    S = receive
        {opened, Owner, {ok, S0}} -> S0;
        {opened, Owner, Other} -> ct:fail({open, Other})
    after ?WAIT -> ct:fail(open_timeout)
    end,
    Ref = S#ewpcap_resource.ref,
    {ok, Info} = ewpcap:info(),
    ?assertMatch([{node, _}, {os_pid, _}, {handles, _}, {nodes, _}], Info),
    Handle = find_handle(Ref, proplists:get_value(handles, Info)),
    ?assertNotEqual(false, Handle),
    ?assertEqual(Owner, proplists:get_value(owner, Handle)),
    ?assertEqual("lo", proplists:get_value(device, Handle)),
    ?assertEqual(<<"udp port 9 and udp port 10">>, proplists:get_value(filter, Handle)),
    exit(Owner, kill),
    ?assert(poll(fun() -> not has_handle(Ref) end, 5000)),
    % the dead owner's handle is really gone: the first close/1 is ok (as
    % in the original, where the owner's death closed nothing), a second
    % one badarg
    ?assertEqual(ok, ewpcap:close(S)),
    ?assertError(badarg, ewpcap:close(S)).

dev() ->
    [{doc, "dev/0 returns {ok, Name}, the first device of getifaddrs/0"}].
dev(_Config) ->
    {ok, Name} = ewpcap:dev(),
    ?assert(is_string(Name)),
    {ok, Ifs} = ewpcap:getifaddrs(),
    Names = [N || {N, _} <- Ifs],
    ?assert(lists:member(Name, Names)),
    ?assertEqual(Name, hd(Names)),
    ?assertEqual({ok, Name}, ewpcap:dev(ewpcap:node())).

getifaddrs_agrees_with_inet() ->
    [{doc, "getifaddrs/0 agrees with inet:getifaddrs/0 on names and addr/netmask"}].
getifaddrs_agrees_with_inet(_Config) ->
    {ok, Pcap} = ewpcap:getifaddrs(),
    {ok, Inet} = inet:getifaddrs(),
    ct:pal("ewpcap: ~p~ninet: ~p", [Pcap, Inet]),
    PcapNames = [N || {N, _} <- Pcap],
    ?assertEqual(length(PcapNames), length(lists:usort(PcapNames))),
    ?assert(lists:member("lo", PcapNames)),
    % every interface that has an address is one pcap can open (pcap may
    % add pseudo devices such as "any"; those are ignored)
    WithAddr = [N || {N, Attrs} <- Inet, lists:keymember(addr, 1, Attrs)],
    ?assertEqual([], WithAddr -- PcapNames),
    lists:foreach(
        fun({Name, Attrs}) ->
            ?assert(is_string(Name)),
            ?assert(is_list(Attrs)),
            [?assert(valid_ifattr(A)) || A <- Attrs],
            case lists:keyfind(Name, 1, Inet) of
                false ->
                    ok;
                {Name, InetAttrs} ->
                    ?assertEqual({Name, addr_masks(InetAttrs)}, {Name, addr_masks(Attrs)})
            end
        end,
        Pcap
    ),
    {"lo", LoAttrs} = lists:keyfind("lo", 1, Pcap),
    ?assertEqual({flag, [loopback]}, lists:keyfind(flag, 1, LoAttrs)),
    ?assert(lists:member({addr, {127, 0, 0, 1}}, LoAttrs)),
    ?assertEqual({ok, Pcap}, ewpcap:getifaddrs(ewpcap:node())).

open_defaults() ->
    [{doc, "open/0 and open/1 (<<\"lo\">>) work with the default options"}].
open_defaults(_Config) ->
    {ok, Dev} = ewpcap:dev(),
    {ok, S0} = ewpcap:open(),
    ?assertMatch(#ewpcap_resource{}, S0),
    ?assertEqual(Dev, handle_device(S0#ewpcap_resource.ref)),
    ok = ewpcap:close(S0),
    {ok, S1} = ewpcap:open(<<"lo">>),
    ?assertEqual("lo", handle_device(S1#ewpcap_resource.ref)),
    % no filter: it sees our datagram
    {_Rx, Port} = udp_receiver(),
    Tx = udp_sender(),
    M = marker(64),
    ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, M),
    _ = expect_payload(S1, Port, M),
    ok = ewpcap:close(S1),
    {ok, S2} = ewpcap:open("lo"),
    ?assertEqual("lo", handle_device(S2#ewpcap_resource.ref)),
    ok = ewpcap:close(S2).

open_empty_string_any() ->
    [{doc, "open(\"\") opens the pseudo device \"any\""}].
open_empty_string_any(_Config) ->
    {ok, S} = ewpcap:open("", [{filter, "udp port 9 and udp port 10"}]),
    ?assertEqual("any", handle_device(S#ewpcap_resource.ref)),
    ok = ewpcap:close(S),
    {ok, S2} = ewpcap:open(""),
    ?assertEqual("any", handle_device(S2#ewpcap_resource.ref)),
    ok = ewpcap:close(S2).

non_distributed_node() ->
    [{doc, "A node started without a name opens lo, captures its own datagram and reads it"}].
non_distributed_node(_Config) ->
    Erl = os:find_executable("erl"),
    ?assertNotEqual(false, Erl),
    Ebin = filename:dirname(filename:absname(code:which(ewpcap))),
    Marker = "EWPCAP_NODIST_OK_" ++ integer_to_list(erlang:unique_integer([positive])),
    Script = lists:flatten([
        "spawn(fun() -> timer:sleep(40000), io:format(\"watchdog~n\"), halt(3) end),"
        "try "
        "  nonode@nohost = node(),"
        "  {ok, R} = gen_udp:open(0, [binary, {ip, {127,0,0,1}}, {active, false}]),"
        "  {ok, P} = inet:port(R),"
        "  {ok, S} = ewpcap:open(<<\"lo\">>, [{filter, \"udp port \" ++ integer_to_list(P)}]),"
        "  true = node() =/= nonode@nohost,"
        "  Payload = <<\"", Marker, "\">>,"
        "  ok = gen_udp:send(R, {127,0,0,1}, P, Payload),"
        "  {ok, Pkt} = ewpcap:read(S, 10000),"
        "  Sz = byte_size(Pkt) - byte_size(Payload),"
        "  <<_:Sz/binary, Payload/binary>> = Pkt,"
        "  ok = ewpcap:close(S),"
        "  io:format(\"~s~n\", [Payload]),"
        "  halt(0) "
        "catch C:E:St -> io:format(\"FAILED ~p:~p ~p~n\", [C, E, St]), halt(1) "
        "end."
    ]),
    {Status, Out} = ewpcap_netns:run(Erl, ["-noshell", "-pa", Ebin, "-eval", Script], 60000),
    ct:pal("non-distributed node: status ~p~n~ts", [Status, Out]),
    ?assertEqual(0, Status),
    ?assertNotEqual(nomatch, string:find(Out, Marker ++ "\n")).

%%% ===================================================================
%%% Group netns
%%% ===================================================================

netns_write_veth() ->
    [{doc, "write/2 on ewpv0 (netns daemon) is captured on ewpv1 byte-identical"}].
netns_write_veth(Config) ->
    Node = ?config(ns_node, Config),
    Filter = "ether proto 0x88b5",
    {ok, S0} = ewpcap:open(Node, <<"ewpv0">>, [{filter, Filter}]),
    {ok, S1} = ewpcap:open(Node, <<"ewpv1">>, [{filter, Filter}]),
    ?assertMatch(#ewpcap_resource{res = {Node, _, _}}, S1),
    R1 = S1#ewpcap_resource.ref,
    Frame = ethernet_frame(marker(16)),
    ?assertEqual(60, byte_size(Frame)),
    ?assertEqual(ok, ewpcap:write(S0, Frame)),
    receive
        {ewpcap, R1, DLT, _Time, Length, Packet} ->
            ?assertEqual(?DLT_EN10MB, DLT),
            ?assertEqual(60, Length),
            ?assertEqual(Frame, Packet)
    after ?WAIT ->
        ct:fail({not_captured_on_ewpv1, flush_list()})
    end,
    % write/2 takes iodata
    Frame2 = ethernet_frame(marker(16)),
    <<Head:20/binary, Tail/binary>> = Frame2,
    ?assertEqual(ok, ewpcap:write(S0, [Head, [binary_to_list(Tail)]])),
    ?assertMatch({ok, Frame2}, ewpcap:read(S1, ?WAIT)),
    {ok, #ewpcap_stat{recv = Recv}} = ewpcap:stats(S1),
    ?assert(Recv >= 2),
    {ok, Info} = ewpcap:info(Node),
    Handles = proplists:get_value(handles, Info),
    ?assertMatch([_, _], [H || H <- Handles,
                               lists:member(proplists:get_value(device, H),
                                            ["ewpv0", "ewpv1"])]),
    ok = ewpcap:close(S0),
    ok = ewpcap:close(S1).

netns_vlan_filter() ->
    [{doc, "802.1Q frames written on ewpv0 arrive on ewpv1 with the tag taken into metadata by the "
           "kernel, as from a NIC: `vlan 100 and udp' gets exactly the vlan 100 ones and `vlan 200' the "
           "others, set by open and by filter/2, byte-identical (tag put back). Before: compiled against "
           "a dead handle, without libpcap's code for a live Linux handle, both matched nothing"}].
netns_vlan_filter(Config) ->
    Node = ?config(ns_node, Config),
    {ok, S0} = ewpcap:open(Node, <<"ewpv0">>, [{filter, "ether proto 0x88b5"}]),
    {ok, V100} = ewpcap:open(Node, <<"ewpv1">>, [{filter, "vlan 100 and udp"}]),
    {ok, V200} = ewpcap:open(Node, <<"ewpv1">>, [{filter, "vlan 200"}]),
    {ok, Later} = ewpcap:open(Node, <<"ewpv1">>, [{filter, "ether proto 0x88b5"}]),
    ?assertEqual(ok, ewpcap:filter(Later, "vlan 100 and udp")),
    F100 = [vlan_frame(100, marker(16)) || _ <- lists:seq(1, 3)],
    F200 = [vlan_frame(200, marker(16)) || _ <- lists:seq(1, 3)],
    % last, one more of each: what a handle got before its own is all it gets
    [End100, End200] = [vlan_frame(Vid, marker(16)) || Vid <- [100, 200]],
    [?assertEqual(ok, ewpcap:write(S0, F)) || F <- F100 ++ F200 ++ [End100, End200]],
    ?assertEqual(F100, packets_until(V100, End100)),
    ?assertEqual(F100, packets_until(Later, End100)),
    ?assertEqual(F200, packets_until(V200, End200)),
    [ok = ewpcap:close(S) || S <- [S0, V100, V200, Later]].

%% The packets of S before the one equal to End (which must come)
packets_until(#ewpcap_resource{ref = Ref}, End) ->
    packets_until(Ref, End, []).

packets_until(Ref, End, Acc) ->
    receive
        {ewpcap, Ref, _, _, _, End} -> lists:reverse(Acc);
        {ewpcap, Ref, _, _, _, P} -> packets_until(Ref, End, [P | Acc])
    after ?WAIT ->
        ct:fail({not_captured, End, lists:reverse(Acc), flush_list()})
    end.

%% Broadcast, tagged Vid, IPv4 UDP 10.1.1.1:1000 -> 10.1.1.2:2000 carrying Data
vlan_frame(Vid, Data) ->
    Udp = <<1000:16, 2000:16, (8 + byte_size(Data)):16, 0:16, Data/binary>>,
    Ip = <<16#45, 0, (20 + byte_size(Udp)):16, 1:16, 0:16, 64, 17, 0:16,
           10, 1, 1, 1, 10, 1, 1, 2, Udp/binary>>,
    <<16#FF, 16#FF, 16#FF, 16#FF, 16#FF, 16#FF, 16#02, 16#00, 16#5E, 16#00, 16#53, 16#01,
      16#8100:16, 0:4, Vid:12, 16#0800:16, Ip/binary>>.

netns_getifaddrs() ->
    [{doc, "getifaddrs/1 of the netns daemon lists ewpv0 and ewpv1, not the host's interfaces"}].
netns_getifaddrs(Config) ->
    Node = ?config(ns_node, Config),
    {ok, Ifs} = ewpcap:getifaddrs(Node),
    Names = [N || {N, _} <- Ifs],
    ct:pal("netns getifaddrs: ~p", [Ifs]),
    ?assert(lists:member("ewpv0", Names)),
    ?assert(lists:member("ewpv1", Names)),
    {ok, Host} = inet:getifaddrs(),
    HostOnly = [N || {N, _} <- Host, N =/= "lo"],
    ?assertEqual([], [N || N <- Names, lists:member(N, HostOnly)]),
    {ok, Dev} = ewpcap:dev(Node),
    ?assert(lists:member(Dev, Names)).

netns_devices_not_on_host() ->
    [{doc, "The namespace's veth ends cannot be opened through the host daemon"}].
netns_devices_not_on_host(_Config) ->
    ?assertMatch({error, [_ | _]}, ewpcap:open(<<"ewpv0">>, [])),
    {ok, Ifs} = ewpcap:getifaddrs(),
    ?assertNot(lists:keymember("ewpv0", 1, Ifs)),
    ?assertNot(lists:keymember("ewpv1", 1, Ifs)).

%%% ===================================================================
%%% Helpers
%%% ===================================================================

root() ->
    os:cmd("id -u") =:= "0\n".

%% A UDP socket bound to 127.0.0.1 on a free port, receiving what we send
%% (so no ICMP port unreachable is generated).
udp_receiver() ->
    {ok, Rx} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false},
                                {recbuf, 1024 * 1024}]),
    {ok, Port} = inet:port(Rx),
    {Rx, Port}.

udp_sender() ->
    {ok, Tx} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false}]),
    Tx.

udp_filter(Port) ->
    "udp port " ++ integer_to_list(Port).

%% A unique payload of Size bytes (at least 0): a counter then random bytes.
marker(0) ->
    <<>>;
marker(Size) ->
    Id = integer_to_binary(erlang:unique_integer([positive])),
    Seed = <<"ewp", Id/binary, ":", (rand:bytes(Size))/binary>>,
    binary:part(Seed, 0, min(Size, byte_size(Seed))).

%% Waits for the packet of handle S that carries Payload to Port (a UDP
%% datagram on an Ethernet-framed lo). Other packets of S are skipped.
expect_payload(#ewpcap_resource{ref = Ref}, Port, Payload) ->
    Deadline = erlang:monotonic_time(millisecond) + ?WAIT,
    expect_payload(Ref, Port, Payload, Deadline, []).

expect_payload(Ref, Port, Payload, Deadline, Skipped) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {ewpcap, Ref, DLT, Time, Length, Packet} ->
            case catch decode_udp(Packet) of
                {_, _, _, Port, Payload} ->
                    {DLT, Time, Length, Packet};
                _ ->
                    expect_payload(Ref, Port, Payload, Deadline, [Packet | Skipped])
            end;
        {ewpcap_error, Ref, Reason} ->
            ct:fail({ewpcap_error, Reason})
    after Left ->
        ct:fail({payload_not_captured, Port, byte_size(Payload),
                 {skipped, length(Skipped)}, {other_messages, flush_list()}})
    end.

%% Packets of handle S that arrive within Wait ms (and those already in the
%% mailbox) for which Bad(Packet) is true.
unexpected(#ewpcap_resource{ref = Ref}, Bad, Wait) ->
    Deadline = erlang:monotonic_time(millisecond) + Wait,
    unexpected(Ref, Bad, Deadline, []).

unexpected(Ref, Bad, Deadline, Acc) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {ewpcap, Ref, _, _, _, Packet} ->
            case Bad(Packet) of
                true -> unexpected(Ref, Bad, Deadline, [Packet | Acc]);
                false -> unexpected(Ref, Bad, Deadline, Acc)
            end
    after Left ->
        lists:reverse(Acc)
    end.

is_udp_to(Packet, Port) ->
    case catch decode_udp(Packet) of
        {_, _, _, Port, _} -> true;
        {_, _, Port, _, _} -> true;
        _ -> false
    end.

%% Ethernet II / IPv4 / UDP -> {Src, Dst, SrcPort, DstPort, Payload}.
decode_udp(<<_Dst:6/binary, _Src:6/binary, 16#0800:16, 4:4, IHL:4, _Tos:8,
             TotLen:16, _Id:16, _Frag:16, _Ttl:8, 17:8, _Sum:16,
             S1, S2, S3, S4, D1, D2, D3, D4, Rest0/binary>>) ->
    OptLen = (IHL - 5) * 4,
    <<_Opts:OptLen/binary, SPort:16, DPort:16, ULen:16, _USum:16, Rest/binary>> = Rest0,
    PayLen = ULen - 8,
    TotLen = 20 + OptLen + ULen,
    <<Payload:PayLen/binary>> = Rest,
    {{S1, S2, S3, S4}, {D1, D2, D3, D4}, SPort, DPort, Payload}.

%% A 60-byte broadcast Ethernet frame with ethertype 0x88B5 carrying Data.
ethernet_frame(Data) when byte_size(Data) =< 46 ->
    Pad = binary:copy(<<0>>, 46 - byte_size(Data)),
    <<16#FF, 16#FF, 16#FF, 16#FF, 16#FF, 16#FF,
      16#02, 16#00, 16#5E, 16#00, 16#53, 16#01,
      ?ETHERTYPE:16, Data/binary, Pad/binary>>.

assert_near_now(Microseconds) ->
    Now = os:system_time(microsecond),
    Diff = abs(Now - Microseconds),
    Diff =< 10000000 orelse ct:fail({time_off_by_us, Diff, Microseconds, Now}),
    ok.

is_string(S) ->
    is_list(S) andalso S =/= [] andalso io_lib:printable_unicode_list(S).

valid_ifattr({description, S}) -> is_list(S);
valid_ifattr({flag, L}) -> is_list(L);
valid_ifattr({K, A}) when K =:= addr; K =:= netmask; K =:= broadaddr; K =:= dstaddr ->
    (is_tuple(A) andalso (tuple_size(A) =:= 4 orelse tuple_size(A) =:= 8));
valid_ifattr(_) -> false.

%% The {Addr, Netmask} pairs of an interface, sorted (an address without a
%% netmask pairs with undefined).
addr_masks(Attrs) ->
    lists:sort(addr_masks(Attrs, [])).

addr_masks([], Acc) ->
    Acc;
addr_masks([{addr, A} | Rest], Acc) ->
    case Rest of
        [{netmask, M} | Rest1] -> addr_masks(Rest1, [{A, M} | Acc]);
        _ -> addr_masks(Rest, [{A, undefined} | Acc])
    end;
addr_masks([_ | Rest], Acc) ->
    addr_masks(Rest, Acc).

handles() ->
    {ok, Info} = ewpcap:info(),
    proplists:get_value(handles, Info).

find_handle(Ref, Handles) ->
    case [H || H <- Handles, proplists:get_value(ref, H) =:= Ref] of
        [H] -> H;
        [] -> false
    end.

has_handle(Ref) ->
    find_handle(Ref, handles()) =/= false.

handle_device(Ref) ->
    case find_handle(Ref, handles()) of
        false -> ct:fail({no_handle, Ref});
        H -> proplists:get_value(device, H)
    end.

%% No handle of this process is left open on the embedded daemon.
assert_no_handles() ->
    Self = self(),
    ?assertEqual([], [H || H <- handles(), proplists:get_value(owner, H) =:= Self]).

%% Calls F every 100 ms until it returns true or Timeout ms have passed.
poll(F, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    poll_until(F, Deadline).

poll_until(F, Deadline) ->
    case F() of
        true ->
            true;
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true ->
                    false;
                false ->
                    timer:sleep(100),
                    poll_until(F, Deadline)
            end
    end.

flush() ->
    _ = flush_list(),
    ok.

%% Empties the mailbox (at most 100000 messages); returns a summary.
flush_list() ->
    flush_list(100000, []).

flush_list(0, Acc) ->
    lists:reverse(Acc);
flush_list(N, Acc) ->
    receive
        M -> flush_list(N - 1, [summary(M) | Acc])
    after 0 ->
        lists:reverse(Acc)
    end.

summary({ewpcap, _Ref, DLT, _Time, Length, _Packet}) -> {ewpcap, DLT, Length};
summary(M) -> M.
