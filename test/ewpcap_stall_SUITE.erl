%%% @doc Hardening: peers that stop reading while they still send requests.
%%%
%%% ewpcapd drops a peer whose output buffer would pass its hard limit
%%% (EWP_OUT_MAX, 64 MiB, cnode/node.h). These cases bring a peer to the
%%% edge of that limit and then make the daemon send it one more frame from
%%% inside a request that holds a handle: the `close' of a handle (its
%%% UNLINK_ID) and an `open' (its LINK). The daemon must drop that peer and
%%% close its handles without touching freed memory, stay the same OS
%%% process, and keep serving everybody else.
%%%
%%% <ul>
%%% <li>`stalled_peer_close' / `stalled_peer_open': a fake node
%%%     (ewpcap_rawdist, receive buffer 4096) opens a handle on lo, stops
%%%     reading, and fills its own output queue in the daemon to exactly
%%%     ?ROOM bytes below 64 MiB with `rpc:block_call' requests for
%%%     `ewpcap:no_such_fun(Binary)', whose `undef' reply echoes the binary
%%%     (so each reply's size is chosen to the byte). The queue is read
%%%     from `ewpcap:info/1' (`{queue, Bytes}' of the fake node's handle);
%%%     what the kernel socket buffers absorb first is not known, so the
%%%     fill measures: it waits until the queue is stable, learns a reply's
%%%     overhead from two measured calls, then tops up and checks that the
%%%     queue lands where wanted. Then the last request: `close' of the
%%%     handle, or another `open'.</li>
%%% <li>`sigstop_peer': a real node opens captures on lo of a UDP flood,
%%%     fires raw close/open calls and is SIGSTOPped at once; its queue
%%%     grows in the daemon; then SIGCONT, and its raw calls are answered.</li>
%%% </ul>
%%% In every case this node keeps its own capture of UDP packets it sends
%%% itself on 127.0.0.1, and checks that each packet sent before, during
%%% and after arrives; the daemon's OS pid is the same at the end and no
%%% handle is left. Traffic: lo only. Every wait is bounded; every
%%% process started (fake connections, the peer node, the flood) is ended
%%% by the case or its end_per_testcase.
%%% @end
-module(ewpcap_stall_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-compile([export_all, nowarn_export_all]).

-import(ewpcap_daemon_helpers, [janitor_add/3, info/1, handles/1, nodes_of/1, os_pid/1, flush/0]).

-define(DH, ewpcap_daemon_helpers).

-define(OUT_MAX, 67108864).    % EWP_OUT_MAX: a peer past this is dropped
-define(ROOM, 24).             % bytes left below it: less than any control frame
-define(CHUNK, 8388608).       % largest binary echoed by one call of the fill
-define(PROBE, 1048576).       % binary of the calls that measure the overhead
-define(SETTLE_MAX, 20000).    % ms for the queue to settle
-define(GONE_MAX, 10000).      % ms for a dropped peer's handles to go
-define(STREAM_MAX, 10000).    % ms for this node's packets to arrive
-define(STREAM_N, 100).        % packets per stream check
-define(NOMATCH, "udp port 9 and udp port 10").

%%% ===================================================================
%%% Common Test callbacks
%%% ===================================================================

suite() ->
    [{timetrap, {minutes, 4}}].

all() ->
    [stalled_peer_close, stalled_peer_open, sigstop_peer].

init_per_suite(Config) ->
    Node = ewpcap:node(),
    ?assertNotEqual(nonode@nohost, erlang:node()),
    case ?DH:embedded_on_lo() of
        ok ->
            ct:pal("embedded ewpcapd ~p (os pid ~p), local node ~p",
                   [Node, os_pid(Node), erlang:node()]),
            Config;
        Skip ->
            Skip
    end.

end_per_suite(_Config) ->
    _ = application:stop(ewpcap),
    ok.

init_per_testcase(_Case, Config) ->
    flush(),
    % the janitor outlives a failed case: it ends what the case started
    [{janitor, ?DH:janitor_start()} | Config].

end_per_testcase(_Case, Config) ->
    ct:pal("clean-up: ~p", [?DH:janitor_stop(?config(janitor, Config))]),
    flush(),
    ok.

%%% ===================================================================
%%% Cases
%%% ===================================================================

stalled_peer_close() ->
    [{doc, "A node that stopped reading, 24 bytes below the 64 MiB output limit, closes its handle: "
           "dropped cleanly, the daemon lives on and serves this node"}].
stalled_peer_close(Config) ->
    stalled(Config, close).

stalled_peer_open() ->
    [{doc, "A node that stopped reading, 24 bytes below the 64 MiB output limit, opens a handle: "
           "dropped cleanly, no handle of it is left, the daemon lives on"}].
stalled_peer_open(Config) ->
    stalled(Config, open).

stalled(Config, Last) ->
    J = ?config(janitor, Config),
    D = ewpcap:node(),
    OsPid = os_pid(D),
    Before = handle_refs(D),
    St = stream_start(J),
    ?assertEqual(?STREAM_N, stream_check(St, ?STREAM_N)),
    {ok, F} = ewpcap_rawdist:connect(D, erlang:get_cookie(), #{recbuf => 4096}),
    janitor_add(J, {rawdist, ewpcap_rawdist:name(F)}, fun() -> ewpcap_rawdist:close(F) end),
    FName = ewpcap_rawdist:name(F),
    T = ewpcap_rawdist:call(F, ewpcap, {open, <<"lo">>, [{filter, ?NOMATCH}]}),
    {ok, {ok, FRef}} = ewpcap_rawdist:recv(F, T, 5000),
    ok = ewpcap_rawdist:stop_reading(F),
    Target = ?OUT_MAX - ?ROOM,
    {Q, Fill} = fill(D, F, FName, Target),
    ct:pal("~p stopped reading; its queue in ewpcapd: ~p bytes (target ~p, room ~p); fill: ~w",
           [FName, Q, Target, ?OUT_MAX - Q, Fill]),
    ?assertEqual(Target, Q),
    ?assert(lists:member(FName, nodes_of(D))),
    % this node is not held up by the stalled one
    ?assertEqual(?STREAM_N, stream_check(St, ?STREAM_N)),
    Request = case Last of
                  close -> {close, FRef};
                  open -> {open, <<"lo">>, [{filter, ?NOMATCH}]}
              end,
    T0 = erlang:monotonic_time(millisecond),
    _ = ewpcap_rawdist:call(F, ewpcap, Request),
    Gone = ewpcap_testbed:poll(fun() -> peer_handles(D, FName) =:= [] andalso
                                        not lists:member(FName, nodes_of(D)) end, ?GONE_MAX),
    Ms = erlang:monotonic_time(millisecond) - T0,
    Info = info(D),
    ct:pal("after ~p: ~p's handles and connection gone: ~p after ~p ms; daemon os pid ~p (was ~p); "
           "nodes ~p", [Request, FName, Gone, Ms, proplists:get_value(os_pid, Info), OsPid,
                        proplists:get_value(nodes, Info)]),
    ?assertEqual(OsPid, proplists:get_value(os_pid, Info)),
    Gone orelse ct:fail({not_dropped, FName, peer_handles(D, FName), nodes_of(D)}),
    ?assertEqual(?STREAM_N, stream_check(St, ?STREAM_N)),
    ?assertMatch({ok, _}, ewpcap:dev(D)),
    ok = ewpcap_rawdist:close(F),
    ok = stream_stop(St),
    ?assert(ewpcap_testbed:poll(fun() -> handle_refs(D) =:= Before end, ?GONE_MAX)),
    ?assertEqual(OsPid, os_pid(D)).

sigstop_peer() ->
    [{doc, "A real node with captures of a flood fires raw close/open calls and is SIGSTOPped: its queue "
           "grows, the daemon lives on and this node's stream continues; after SIGCONT its calls are answered"}].
sigstop_peer(Config) ->
    J = ?config(janitor, Config),
    D = ewpcap:node(),
    OsPid = os_pid(D),
    Before = handle_refs(D),
    St = stream_start(J),
    ?assertEqual(?STREAM_N, stream_check(St, ?STREAM_N)),
    % the flood goes to a port of its own
    {ok, Sink} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}, {active, false}, {recbuf, 4096}]),
    {ok, FloodPort} = inet:port(Sink),
    Flood = "udp dst port " ++ integer_to_list(FloodPort),
    {Peer, PNode, POsPid} = start_peer(J),
    Firer = peer:call(Peer, ?MODULE, peer_owner_start, [D, Flood, ?NOMATCH], 15000),
    ct:pal("peer ~p (os pid ~p), flood on udp port ~p", [PNode, POsPid, FloodPort]),
    ?assertEqual(2, length(peer_handles(D, PNode))),
    Flooder = flood_start(J, FloodPort),
    ?assert(ewpcap_testbed:poll(fun() -> peer_packets(D, PNode) > 1000 end, 20000)),
    % fire the raw calls, stop the node at once
    fired = peer:call(Peer, ?MODULE, peer_fire, [Firer], 15000),
    janitor_add(J, {sigcont, POsPid}, fun() -> _ = signal(POsPid, "CONT"), ok end),
    ok = signal(POsPid, "STOP"),
    T0 = erlang:monotonic_time(millisecond),
    % its queue grows until the daemon pauses its captures (16 MiB); if
    % the stop came while they were paused and the queue draining, it
    % stays where it was, above the 12 MiB at which they would resume
    Grew = ewpcap_testbed:poll(fun() -> peer_queue(D, PNode) > 12 bsl 20 end, 60000),
    ct:pal("SIGSTOP: queue of ~p ~p bytes (over 12 MiB: ~p) after ~p ms",
           [PNode, peer_queue(D, PNode), Grew, erlang:monotonic_time(millisecond) - T0]),
    ?assert(Grew),
    ?assertEqual(?STREAM_N, stream_check(St, ?STREAM_N)),
    ?assertEqual(OsPid, os_pid(D)),
    Sent = flood_stop(Flooder),
    ok = signal(POsPid, "CONT"),
    Replies = peer:call(Peer, ?MODULE, peer_replies, [Firer, 30000], 35000),
    ct:pal("flood: ~p packets sent; after SIGCONT the peer's raw calls got ~p", [Sent, Replies]),
    ?assertMatch([{close, ok}, {open, {ok, _}}], lists:sort(Replies)),
    ?assertEqual(?STREAM_N, stream_check(St, ?STREAM_N)),
    ok = peer:stop(Peer),
    ?assert(ewpcap_testbed:poll(fun() -> peer_handles(D, PNode) =:= [] end, ?GONE_MAX)),
    ok = stream_stop(St),
    ok = gen_udp:close(Sink),
    ?assert(ewpcap_testbed:poll(fun() -> handle_refs(D) =:= Before end, ?GONE_MAX)),
    ?assertEqual(OsPid, os_pid(D)).

%%% ===================================================================
%%% The fill
%%% ===================================================================

%% Brings FName's queue in the daemon to Target: {Queue, Steps}.
%% 1. one ?CHUNK call: the kernel buffers fill, the rest queues; wait
%%    until the queue is positive and stable;
%% 2. two ?PROBE calls: each adds ?PROBE + K bytes, K the reply's
%%    overhead (frame header, control, tag, the 'EXIT' tuple); the two
%%    measures must agree;
%% 3. top-up calls of at most ?CHUNK, each checked to add exactly B + K.
fill(D, F, FName, Target) ->
    _ = ewpcap_rawdist:block_call(F, ewpcap, no_such_fun, [binary:copy(<<0>>, ?CHUNK)]),
    Q0 = settle(D, FName, fun(Q) -> Q > 0 end),
    {K, Q2} = probe(D, F, FName, Q0, 3),
    {Q, Steps} = top_up(D, F, FName, Q2, K, Target, 20, []),
    {Q, [{absorbed_by_kernel, ?CHUNK + K - Q0}, {overhead, K} | Steps]}.

probe(D, F, FName, Q0, Tries) ->
    Q1 = probe_one(D, F, FName, Q0),
    Q2 = probe_one(D, F, FName, Q1),
    case {Q1 - Q0 - ?PROBE, Q2 - Q1 - ?PROBE} of
        {K, K} when K > 0, K < 1000 -> {K, Q2};
        Ks when Tries > 1 -> ct:pal("overhead measures differ: ~p", [Ks]),
                             probe(D, F, FName, Q2, Tries - 1);
        Ks -> ct:fail({overhead_unstable, Ks})
    end.

probe_one(D, F, FName, Q0) ->
    _ = ewpcap_rawdist:block_call(F, ewpcap, no_such_fun, [binary:copy(<<1>>, ?PROBE)]),
    settle(D, FName, fun(Q) -> Q > Q0 end).

top_up(_D, _F, _FName, Q, _K, Target, _, Steps) when Q >= Target ->
    {Q, lists:reverse(Steps)};
top_up(_D, _F, _FName, Q, K, Target, 0, Steps) ->
    ct:fail({fill_gave_up, Q, K, Target, lists:reverse(Steps)});
top_up(D, F, FName, Q, K, Target, N, Steps) ->
    R = Target - Q,
    R >= K orelse ct:fail({cannot_top_up, Q, K, Target}),
    B = case R - K > 2 * ?CHUNK of
            true -> ?CHUNK;
            false when R - K > ?CHUNK -> (R - 2 * K) div 2; % two calls left
            false -> R - K
        end,
    _ = ewpcap_rawdist:block_call(F, ewpcap, no_such_fun, [binary:copy(<<2>>, B)]),
    Want = Q + B + K,
    Q1 = settle(D, FName, fun(X) -> X >= Want end),
    top_up(D, F, FName, Q1, K, Target, N - 1, [{B, Want, Q1} | Steps]).

%% Polls the queue until Ok(Queue) holds and the value stayed the same for
%% 200 ms (ten polls): the daemon has queued everything it was sent.
settle(D, FName, Ok) ->
    settle(D, FName, Ok, erlang:monotonic_time(millisecond) + ?SETTLE_MAX, undefined, 0).

settle(D, FName, Ok, Deadline, Last, Same) ->
    Q = peer_queue(D, FName),
    Now = erlang:monotonic_time(millisecond),
    case Ok(Q) andalso Q =:= Last of
        true when Same >= 10 -> Q;
        _ when Now > Deadline -> ct:fail({queue_not_settled, FName, Q});
        true -> timer:sleep(20), settle(D, FName, Ok, Deadline, Q, Same + 1);
        false -> timer:sleep(20), settle(D, FName, Ok, Deadline, Q, 0)
    end.

%%% ===================================================================
%%% This node's own capture on lo
%%% ===================================================================

%% A capture of the UDP packets this node sends to a port of its own.
stream_start(J) ->
    {ok, Rx} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}, {active, false}, {recbuf, 4096}]),
    {ok, Port} = inet:port(Rx),
    {ok, Tx} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp dst port " ++ integer_to_list(Port)}]),
    janitor_add(J, stream, fun() -> catch ewpcap:close(S), gen_udp:close(Rx), gen_udp:close(Tx) end),
    #{s => S, rx => Rx, tx => Tx, port => Port}.

%% Sends N packets, returns how many were captured (waits at most
%% ?STREAM_MAX ms for the last).
stream_check(#{s := #ewpcap_resource{ref = Ref}, tx := Tx, port := Port}, N) ->
    Round = erlang:unique_integer([positive]) band 16#FFFFFFFF,
    [ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, <<Round:32, I:32>>) || I <- lists:seq(1, N)],
    Deadline = erlang:monotonic_time(millisecond) + ?STREAM_MAX,
    stream_count(Ref, Round, N, 0, Deadline).

stream_count(_Ref, _Round, N, N, _Deadline) ->
    N;
stream_count(Ref, Round, N, Got, Deadline) ->
    receive
        {ewpcap, Ref, _, _, _, Pkt} ->
            case binary:match(Pkt, <<Round:32>>) of
                nomatch -> stream_count(Ref, Round, N, Got, Deadline);
                _ -> stream_count(Ref, Round, N, Got + 1, Deadline)
            end
    after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
        ct:pal("stream: ~p of ~p packets arrived", [Got, N]),
        Got
    end.

stream_stop(#{s := S, rx := Rx, tx := Tx}) ->
    ok = ewpcap:close(S),
    ok = gen_udp:close(Rx),
    ok = gen_udp:close(Tx).

%%% ===================================================================
%%% The flood, the peer node and what runs on it
%%% ===================================================================

flood_start(J, Port) ->
    Case = self(),
    Pid = spawn_link(fun() ->
        {ok, Tx} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
        flood(Case, Tx, Port, binary:copy(<<"f">>, 1000), 0)
    end),
    janitor_add(J, flood, fun() -> unlink(Pid), exit(Pid, kill) end),
    Pid.

%% At most 20 million packets; told to stop, it says how many it sent.
flood(Case, Tx, Port, Payload, N) ->
    receive
        {stop, Case} -> Case ! {flooded, N}
    after 0 ->
        _ = gen_udp:send(Tx, {127, 0, 0, 1}, Port, Payload),
        N < 20000000 andalso flood(Case, Tx, Port, Payload, N + 1)
    end.

flood_stop(Pid) ->
    Pid ! {stop, self()},
    receive {flooded, N} -> unlink(Pid), N after 10000 -> ct:fail(flood_stop_timeout) end.

start_peer(J) ->
    Name = "wta_stall_peer_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive])),
    Ebin = filename:dirname(code:which(ewpcap)),
    {ok, Peer, PNode} =
        peer:start(#{name => Name, connection => standard_io, wait_boot => 30000,
                     args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                              "-connect_all", "false", "-pa", Ebin,
                              "-kernel", "logger_level", "critical"]}),
    POsPid = list_to_integer(peer:call(Peer, os, getpid, [], 15000)),
    janitor_add(J, {peer, PNode}, fun() ->
        _ = signal(POsPid, "CONT"),
        catch peer:stop(Peer),
        _ = os:cmd("kill -9 " ++ integer_to_list(POsPid) ++ " 2>/dev/null"),
        ok
    end),
    {Mod, Bin, File} = code:get_object_code(?MODULE),
    {module, Mod} = peer:call(Peer, code, load_binary, [Mod, File, Bin], 15000),
    {Peer, PNode, POsPid}.

%% @private On the peer: an owner process with two handles, one on the
%% flood and one that matches nothing, which drops the packets it gets;
%% and a firer, which sends the raw calls and keeps their replies (the
%% owner's mailbox is full of packets). Returns the firer.
peer_owner_start(D, Flood, NoMatch) ->
    Self = self(),
    Owner = spawn(fun() ->
        {ok, S1} = ewpcap:open(D, <<"lo">>, [{filter, Flood}]),
        {ok, S2} = ewpcap:open(D, <<"lo">>, [{filter, NoMatch}]),
        Self ! {opened, self(), [S1, S2]},
        peer_owner()
    end),
    receive
        {opened, Owner, [_, #ewpcap_resource{ref = Quiet}]} ->
            spawn(fun() -> peer_firer(D, Flood, Owner, Quiet, [], []) end)
    after 10000 ->
        error(open_timeout)
    end.

peer_owner() ->
    receive _ -> peer_owner() end.

peer_firer(D, Flood, Owner, Quiet, Pending, Replies) ->
    receive
        {fire, From} ->
            % raw calls, sent without waiting: close of the quiet handle,
            % another open of the flood for the owner
            TC = make_ref(),
            TO = make_ref(),
            {ewpcap, D} ! {'$gen_call', {self(), TC}, {close, Quiet}},
            {ewpcap, D} ! {'$gen_call', {self(), TO}, {open, <<"lo">>, [{filter, Flood}], Owner}},
            From ! {fired, self()},
            peer_firer(D, Flood, Owner, Quiet, [{TC, close}, {TO, open}], Replies);
        {replies, From} ->
            From ! {replies, self(), Replies},
            peer_firer(D, Flood, Owner, Quiet, Pending, Replies);
        {Tag, Reply} when is_reference(Tag) ->
            case lists:keyfind(Tag, 1, Pending) of
                {Tag, What} -> peer_firer(D, Flood, Owner, Quiet, Pending, [{What, Reply} | Replies]);
                false -> peer_firer(D, Flood, Owner, Quiet, Pending, Replies)
            end;
        _ ->
            peer_firer(D, Flood, Owner, Quiet, Pending, Replies)
    end.

%% @private On the peer.
peer_fire(Firer) ->
    Firer ! {fire, self()},
    receive {fired, Firer} -> fired after 10000 -> error(fire_timeout) end.

%% @private On the peer: the replies to the raw calls, once both are in.
peer_replies(Firer, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    peer_replies_until(Firer, Deadline).

peer_replies_until(Firer, Deadline) ->
    Firer ! {replies, self()},
    Replies = receive {replies, Firer, R} -> R after 5000 -> [] end,
    case length(Replies) >= 2 orelse erlang:monotonic_time(millisecond) > Deadline of
        true -> Replies;
        false -> timer:sleep(50), peer_replies_until(Firer, Deadline)
    end.

signal(OsPid, Sig) ->
    case os:cmd("kill -" ++ Sig ++ " " ++ integer_to_list(OsPid) ++ " 2>&1") of
        "" -> ok;
        Err -> {error, Err}
    end.

%%% ===================================================================
%%% Helpers
%%% ===================================================================

handle_refs(Node) -> lists:sort([proplists:get_value(ref, H) || H <- handles(Node)]).

peer_handles(D, PNode) ->
    [H || H <- handles(D), node(proplists:get_value(owner, H)) =:= PNode].

%% The bytes queued in the daemon for PNode (as its handles report them).
peer_queue(D, PNode) ->
    case peer_handles(D, PNode) of
        [H | _] -> proplists:get_value(queue, H);
        [] -> ct:fail({no_handle_of, PNode})
    end.

peer_packets(D, PNode) ->
    lists:sum([proplists:get_value(packets, H) || H <- peer_handles(D, PNode)]).
