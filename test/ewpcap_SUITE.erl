%%% @doc Live tests of the ewpcap API through ewpcapd.
%%%
%%% Group `lo' captures on the loopback interface with the embedded daemon
%%% (the one the library starts itself); `make ct-memcheck' runs it under
%%% valgrind. The group `netns' (a second daemon in a namespace) is
%%% ewpcap_netns_SUITE's; the helpers are ewpcap_live's.
%%%
%%% Traffic goes only to 127.0.0.1 on lo. Every wait is bounded.
%%%
%%% Environment: EWPCAP_TEST_TIMEOUT (seconds) overrides the 5 minute
%%% timetrap.
%%% @end
-module(ewpcap_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-compile([export_all, nowarn_export_all]).

-import(ewpcap_live, [udp_receiver/0, udp_sender/0, udp_filter/1, marker/1, ethernet_frame/1,
                      expect_payload/3, unexpected/3, is_udp_to/2, decode_udp/1,
                      assert_near_now/1, is_string/1, valid_ifattr/1, addr_masks/1,
                      find_handle/2, has_handle/1, handle_device/1, assert_no_handles/0,
                      poll/2, flush/0]).

-define(WAIT, 5000).       % ms to wait for a packet that must come
-define(QUIET, 500).       % ms to wait for packets that must not come
-define(DLT_EN10MB, 1).

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
    [{group, lo}].

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
        ]}
    ].

init_per_suite(Config) ->
    % The CT node is not distributed: the library makes it so.
    Node = ewpcap:node(),
    ?assert(is_atom(Node)),
    ?assertNotEqual(nonode@nohost, erlang:node()),
    ct:pal("embedded ewpcapd: ~p, local node ~p", [Node, erlang:node()]),
    [{daemon, Node} | Config].

end_per_suite(_Config) ->
    _ = application:stop(ewpcap),
    ok.

init_per_group(lo, Config) ->
    % Skip (rather than fail every case) when this user may not capture.
    ewpcap_live:if_lo_captures(Config).

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
