%%% @doc Scale (issue 13, section 3): 200 handles from 4 client nodes on one
%%% ewpcapd, the shorter form of `make bench-scale' (1,000 from 20).
%%%
%%% The embedded daemon of the Common Test node serves four `peer' nodes.
%%% Each opens 50 handles on lo, one after the other, every handle with a
%%% filter of its own (`udp and src port S and dst port P_i'); the four
%%% open at once. Then the suite sends 1 to 3 datagrams to each P_i (the
%%% index in the payload), paced, and an end marker (three times over, in
%%% case the loopback backlog dropped one): every handle must get
%%% exactly its own datagrams, in order, before its marker (a capture
%%% delivers in order, so no waiting on time). The 200 opens are compared
%%% with one open measured in the same case (the median of 5, from the
%%% same node): no absolute bound, the machine is shared. After all are
%%% closed, the daemon's fds equal the baseline taken before (peers
%%% connected, one open and close done) and its RSS is within 8 MiB of it
%%% (printed only under a sanitizer, as in ewpcap_soak_SUITE): 200 opens at
%%% once leave 1.3-3.3 MB behind here, the same before the hash tables (what
%%% the allocator keeps after the burst, and the four nodes' connection
%%% buffers grown by it while they stay connected; not yet pinned down,
%%% see the README's Scale notes), which a 4 MiB allowance would let fail on
%%% a loaded machine; a leak of 40 KB a handle still fails it.
%%%
%%% Each handle asks for a 1 MiB kernel buffer: 200 rings of the default
%%% 16 MiB would take 3.2 GB of the shared machine's memory (each handle
%%% still has its own ring; see README, Scale).
%%%
%%% Traffic: UDP datagrams to 127.0.0.1 only. Every wait is bounded.
%%% @end
-module(ewpcap_scale_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([handles_200_from_4_nodes/0, handles_200_from_4_nodes/1]).
-export([client/4]).

-define(NODES, 4).
-define(PER_NODE, 50).
-define(BUFFER, 1048576).        % each handle's kernel buffer
-define(SINGLES, 5).             % single opens measured, the median kept
-define(OPEN_FACTOR, 8).         % 200 opens within 200 x median single x this
-define(RSS_SLACK_KB, 8192).
-define(WAIT, 60000).            % ms for a node's opens, its packets, its closes
-define(DRAIN, 15000).           % ms for the handle count to reach 0

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [handles_200_from_4_nodes].

init_per_suite(Config) ->
    case ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]) of
        {ok, S} ->
            ok = ewpcap:close(S),
            Config;
        {error, Reason} ->
            {skip, lists:flatten(io_lib:format("cannot capture on lo: ~tp", [Reason]))}
    end.

end_per_suite(_Config) ->
    _ = application:stop(ewpcap),
    ok.

%%% ===================================================================
%%% The case
%%% ===================================================================

handles_200_from_4_nodes() ->
    [{doc, "200 handles from 4 nodes: each gets exactly its filter's packets; the opens "
           "compared with one open measured here; fds and RSS back to the baseline"}].
handles_200_from_4_nodes(_Config) ->
    Daemon = ewpcap:node(),
    OsPid = os_pid(Daemon),
    {ok, Tx} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false}]),
    {ok, Src} = inet:port(Tx),
    Base = free_ports(?NODES * ?PER_NODE),
    Peers = [start_client(I) || I <- lists:seq(1, ?NODES)],
    try
        {_, Node1} = hd(Peers),
        % every node connected and warmed up (one open each) before the baseline
        [single_open(Node, Daemon, Src, Base) || {_, Node} <- tl(Peers)],
        Single = median([single_open(Node1, Daemon, Src, Base) || _ <- lists:seq(1, ?SINGLES)]),
        ok = wait_no_handles(Daemon),
        Before = usage(OsPid),
        ct:pal("ewpcapd ~p (os pid ~p) before: ~s; one open ~.1f ms (median of ~p)",
               [Daemon, OsPid, show(Before), Single / 1000, ?SINGLES]),
        T0 = erlang:monotonic_time(microsecond),
        Clients = [start(Node, Daemon, Src, [{Ix, Base + Ix} || Ix <- indices(I)])
                   || {I, {_, Node}} <- lists:enumerate(0, Peers)],
        [receive {C, opened} -> ok after ?WAIT -> ct:fail({open_timeout, C}) end
         || C <- Clients],
        Opens = erlang:monotonic_time(microsecond) - T0,
        N = ?NODES * ?PER_NODE,
        ?assertEqual(N, length(handles(Daemon))),
        During = usage(OsPid),
        ct:pal("~p opens from ~p nodes in ~.1f ms (~.2f ms each; one open alone ~.2f ms); "
               "with them open: ~s", [N, ?NODES, Opens / 1000, Opens / N / 1000,
                                      Single / 1000, show(During)]),
        Opens =< N * Single * ?OPEN_FACTOR orelse
            ct:fail({opens_slow, {all_us, Opens}, {single_us, Single}, {factor, ?OPEN_FACTOR}}),

        Expect = maps:from_list([{Ix, 1 + Ix rem 3} || Ix <- lists:seq(0, N - 1)]),
        paced(Tx, [{Base + Ix, <<"ewpscale", Ix:16>>} || Ix <- lists:seq(0, N - 1),
                                                          _ <- lists:seq(1, maps:get(Ix, Expect))]),
        % the end markers three times over: a client counts the first
        timer:sleep(50),
        [paced(Tx, [{Base + Ix, <<"ewp_end!", Ix:16>>} || Ix <- lists:seq(0, N - 1)])
         || _ <- lists:seq(1, 3)],
        Got = maps:from_list(lists:append([receive {C, counted, L} -> L
                                           after ?WAIT -> ct:fail({no_count, C})
                                           end || C <- Clients])),
        ?assertEqual(Expect, Got),
        ct:pal("every handle got exactly its ~p datagrams (~p in all)",
               [lists:usort(maps:values(Got)), lists:sum(maps:values(Got))]),

        [C ! {self(), close} || C <- Clients],
        [receive {C, closed} -> ok after ?WAIT -> ct:fail({close_timeout, C}) end
         || C <- Clients],
        ok = wait_no_handles(Daemon),
        ?assertEqual(OsPid, os_pid(Daemon)),
        {BaseFds, BaseRss} = Before,
        {Fds, Rss} = After = usage(OsPid),
        ct:pal("after closing all: ~s (before ~s): fds delta ~p, RSS delta ~p kB",
               [show(After), show(Before), Fds - BaseFds, Rss - BaseRss]),
        ?assertEqual(BaseFds, Fds),
        case ewpcap_testbed:sanitizer() of
            false ->
                Rss =< BaseRss + ?RSS_SLACK_KB orelse
                    ct:fail({rss_grew_kb, Rss - BaseRss, {before_kb, BaseRss}, {now_kb, Rss}});
            San ->
                ct:pal("RSS not checked under ~s", [San])
        end
    after
        ok = gen_udp:close(Tx),
        [catch peer:stop(P) || {P, _} <- Peers]
    end.

%%% ===================================================================
%%% The client nodes
%%% ===================================================================

start_client(I) ->
    Ebin = filename:dirname(code:which(ewpcap)),
    TestDir = filename:dirname(code:which(?MODULE)),
    Name = "ewp_scale" ++ integer_to_list(I) ++ "_" ++ os:getpid(),
    {ok, Peer, Node} = peer:start(#{name => list_to_atom(Name),
                                    args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                                             "-connect_all", "false",
                                             "-pa", Ebin, "-pa", TestDir]}),
    {Peer, Node}.

indices(I) ->
    lists:seq(I * ?PER_NODE, (I + 1) * ?PER_NODE - 1).

start(Node, Daemon, Src, Specs) ->
    spawn(Node, ?MODULE, client, [self(), Daemon, Src, Specs]).

%% Microseconds for one open (then closed) from Node
single_open(Node, Daemon, Src, Port) ->
    C = start(Node, Daemon, Src, [{0, Port}]),
    receive {C, opened} -> ok after ?WAIT -> ct:fail({open_timeout, C}) end,
    C ! {self(), took},
    Us = receive {C, took, T} -> T after ?WAIT -> ct:fail({no_time, C}) end,
    C ! {self(), close},
    receive {C, closed} -> ok after ?WAIT -> ct:fail({close_timeout, C}) end,
    Us.

%% Runs on a client node: opens a handle per {Index, Port}, one after the
%% other, and owns them all; counts each one's datagrams up to its end
%% marker (a datagram of another index fails the count), then closes them
%% when told.
client(Parent, Daemon, Src, Specs) ->
    T0 = erlang:monotonic_time(microsecond),
    Handles = [{open(Daemon, Src, Port), Ix} || {Ix, Port} <- Specs],
    Took = erlang:monotonic_time(microsecond) - T0,
    Parent ! {self(), opened},
    Refs = maps:from_list([{Ref, {Ix, 0}} || {#ewpcap_resource{ref = Ref}, Ix} <- Handles]),
    client_loop(Parent, Handles, Took, Refs, #{}).

open(Daemon, Src, Port) ->
    Filter = io_lib:format("udp and src port ~b and dst port ~b", [Src, Port]),
    case ewpcap:open(Daemon, <<"lo">>, [{filter, Filter}, {buffer, ?BUFFER}]) of
        {ok, S} -> S;
        Error -> exit({open, Port, Error})
    end.

client_loop(Parent, Handles, Took, Refs, Done) ->
    receive
        {ewpcap, Ref, _, _, _, Packet} when is_map_key(Ref, Refs) ->
            {Ix, Count} = maps:get(Ref, Refs),
            case binary:part(Packet, byte_size(Packet), -10) of
                <<"ewpscale", Ix:16>> ->
                    client_loop(Parent, Handles, Took, Refs#{Ref := {Ix, Count + 1}}, Done);
                <<"ewp_end!", Ix:16>> when is_map_key(Ix, Done) ->
                    client_loop(Parent, Handles, Took, Refs, Done);
                <<"ewp_end!", Ix:16>> ->
                    Done1 = Done#{Ix => Count},
                    map_size(Done1) =:= map_size(Refs) andalso
                        (Parent ! {self(), counted, maps:to_list(Done1)}),
                    client_loop(Parent, Handles, Took, Refs, Done1);
                Other ->
                    Parent ! {self(), counted, [{Ix, {stranger, Other}}]},
                    client_loop(Parent, Handles, Took, Refs, Done)
            end;
        {Parent, took} ->
            Parent ! {self(), took, Took},
            client_loop(Parent, Handles, Took, Refs, Done);
        {Parent, close} ->
            [ok = ewpcap:close(S) || {S, _} <- Handles],
            Parent ! {self(), closed}
    after ?WAIT ->
        exit(no_word_from_the_suite)
    end.

%%% ===================================================================
%%% Helpers
%%% ===================================================================

%% The first of N consecutive ports (the datagrams need no receiver: the
%% filters name our source port too, so nobody else's traffic matches)
free_ports(N) ->
    20000 + erlang:phash2(os:getpid(), 40000 - N).

%% 1 ms pause every 20 datagrams: on lo every datagram runs the kernel
%% filter of every open handle in the receive path, and a burst past the
%% backlog (net.core.netdev_max_backlog) is lost before any capture sees it
paced(Tx, Datagrams) ->
    lists:foldl(fun({Port, Payload}, I) ->
                        I rem 20 =:= 0 andalso timer:sleep(1),
                        ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, Payload),
                        I + 1
                end, 1, Datagrams),
    ok.

median(L) ->
    lists:nth((length(L) + 1) div 2, lists:sort(L)).

os_pid(Node) ->
    {ok, Info} = ewpcap:info(Node),
    proplists:get_value(os_pid, Info).

handles(Node) ->
    {ok, Info} = ewpcap:info(Node),
    proplists:get_value(handles, Info).

wait_no_handles(Node) ->
    ewpcap_testbed:poll(fun() -> handles(Node) =:= [] end, ?DRAIN) orelse
        ct:fail({handles_left, length(handles(Node))}),
    ok.

%% {Fds, RssKb} of an OS process
usage(Pid) ->
    P = integer_to_list(Pid),
    {ok, Fds} = file:list_dir("/proc/" ++ P ++ "/fd"),
    {ok, Status} = file:read_file("/proc/" ++ P ++ "/status"),
    {match, [Rss]} = re:run(Status, "VmRSS:\\s+(\\d+) kB", [{capture, all_but_first, list}]),
    {length(Fds), list_to_integer(Rss)}.

show({Fds, RssKb}) ->
    io_lib:format("~p fds, VmRSS ~p kB", [Fds, RssKb]).
