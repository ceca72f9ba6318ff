%%% @doc The relay (issue 13, section 1): a handle of one packet per
%%% message is sent in batches to its guard, which hands the owner each
%%% packet as its own `{ewpcap, ...}' message.
%%%
%%% What the owner sees must not change: every case opens a relayed handle
%%% and, beside it, one with `{relay, false}' (ewpcapd sending to the
%%% owner itself), and compares the two message sequences term for term:
%%% on lo, where both handles share one capture (the same packets with the
%%% same time stamps), and on savefiles (packets then `ewpcap_eof'; a cut
%%% file: packets then `ewpcap_error'). Each case also checks that the
%%% relayed handle really is relayed (the daemon's info names a relay pid
%%% on this node and the owner as owner, and no `{ewpcap_batch, ...}'
%%% reached the owner), so that a relay turned off cannot pass for a
%%% working one. Then: nothing reaches the owner after close/1 returns;
%%% the owner's exit closes a relayed handle; which options turn the
%%% relay on and off, and `badarg' for a bad value.
%%%
%%% Traffic: UDP datagrams to 127.0.0.1 only. Every wait is bounded.
%%% @end
-module(ewpcap_relay_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1, end_per_testcase/2]).
-export([old_ewpcapd/1]).
-export([same_as_direct_live/0, same_as_direct_live/1,
         same_as_direct_file/0, same_as_direct_file/1,
         same_as_direct_cut_file/0, same_as_direct_cut_file/1,
         nothing_after_close/0, nothing_after_close/1,
         calls_after_packets/0, calls_after_packets/1,
         owner_exit_closes/0, owner_exit_closes/1,
         older_daemon/0, older_daemon/1,
         close_from_another_node/0, close_from_another_node/1,
         close_through_rpc/0, close_through_rpc/1,
         second_close_after_rpc/0, second_close_after_rpc/1,
         which_handles/0, which_handles/1,
         bad_value/0, bad_value/1]).

-define(WAIT, 20000).       % ms for messages that must come
-define(COUNT, 600).        % datagrams or savefile records per case
-define(FLUSH_WAIT, 300).   % ms of silence that ends a collection

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [same_as_direct_live, same_as_direct_file, same_as_direct_cut_file,
     nothing_after_close, calls_after_packets, owner_exit_closes, older_daemon,
     close_from_another_node, close_through_rpc, second_close_after_rpc, which_handles,
     bad_value].

init_per_suite(Config) ->
    _ = application:load(ewpcap),
    ewpcap_live:if_lo_captures(Config).

end_per_suite(_Config) ->
    ok.

end_per_testcase(_Case, _Config) ->
    ok = application:unset_env(ewpcap, relay),
    _ = ewpcap_live:flush(),
    ok.

%%% ===================================================================
%%% Cases
%%% ===================================================================

same_as_direct_live() ->
    [{doc, "On lo: a relayed handle and a {relay, false} one of the same filter (one shared "
           "capture) get the same ewpcap messages, term for term, in the order sent"}].
same_as_direct_live(_Config) ->
    {Rx, Port} = ewpcap_live:udp_receiver(),
    Tx = ewpcap_live:udp_sender(),
    Filter = ewpcap_live:udp_filter(Port),
    {ok, R} = ewpcap:open(<<"lo">>, [{filter, Filter}]),
    {ok, D} = ewpcap:open(<<"lo">>, [{filter, Filter}, {relay, false}]),
    try
        assert_relayed(R),
        assert_direct(D),
        Payloads = [<<"relay ", (integer_to_binary(I))/binary, " ",
                      (ewpcap_live:marker(8 + I rem 900))/binary>> || I <- lists:seq(1, ?COUNT)],
        [ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, P) || P <- Payloads],
        RMsgs = collect(R, ?COUNT),
        DMsgs = collect(D, ?COUNT),
        ?assertEqual(Payloads, [udp_payload(P) || {ewpcap, _, _, _, _, P} <- RMsgs]),
        ?assertEqual(retag(DMsgs, D, R), RMsgs),
        assert_no_batch()
    after
        ok = ewpcap:close(R),
        ok = ewpcap:close(D),
        gen_udp:close(Tx),
        gen_udp:close(Rx)
    end.

same_as_direct_file() ->
    [{doc, "A savefile of 600 records of 60 to 1,500 bytes: relayed and direct handles get "
           "the same packets and then ewpcap_eof, term for term"}].
same_as_direct_file(Config) ->
    Path = savefile(Config, "relay_file.pcap", records(?COUNT), <<>>),
    compare_file(Path, eof).

same_as_direct_cut_file() ->
    [{doc, "A savefile cut inside its last record: relayed and direct handles get the same "
           "packets and then the same ewpcap_error"}].
same_as_direct_cut_file(Config) ->
    Path = savefile(Config, "relay_cut.pcap", records(?COUNT),
                    <<(record(?COUNT + 1, 400))/binary>>, 200),
    compare_file(Path, error).

nothing_after_close() ->
    [{doc, "close/1 of a relayed handle while its savefile's packets stream: when close "
           "returns, what reached the owner is a prefix of the file, in order, and nothing "
           "comes after"}].
nothing_after_close(Config) ->
    N = 20000,
    Path = savefile(Config, "relay_close.pcap", records(N), <<>>),
    {ok, S} = ewpcap:open({file, Path}, []),
    #ewpcap_resource{ref = Ref} = S,
    % close once some packets are in (or all: then the prefix is the file)
    First = receive {ewpcap, Ref, _, _, _, _} = M -> M after ?WAIT -> ct:fail(no_packet) end,
    ok = ewpcap:close(S),
    Got = [First | drain(Ref, [])],
    timer:sleep(?FLUSH_WAIT),
    Late = drain(Ref, []),
    ct:pal("~b of ~b packets before close; ~b after", [length(Got), N, length(Late)]),
    ?assertEqual([], Late),
    Seqs = [Seq || {ewpcap, _, _, _, _, <<Seq:32, _/binary>>} <- Got],
    ?assertEqual(lists:seq(1, length(Seqs)), Seqs),
    ?assert(length(Seqs) >= 1),
    assert_no_batch().

calls_after_packets() ->
    [{doc, "stats/1 and filter/2 return once the guard has handed the owner every packet "
           "ewpcapd sent before their reply, as without the relay: with the guard held "
           "(suspended) while ewpcapd sends it 50 packets, the call does not return until it "
           "is let go, and then all 50 are in the owner's mailbox"}].
calls_after_packets(_Config) ->
    {Rx, Port} = ewpcap_live:udp_receiver(),
    Tx = ewpcap_live:udp_sender(),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, ewpcap_live:udp_filter(Port)}]),
    #ewpcap_resource{ref = Ref} = S,
    try
        H = ewpcap_live:find_handle(Ref, handles()),
        Guard = proplists:get_value(relay, H),
        ?assert(is_pid(Guard)),
        Self = self(),
        [begin
             % a process of its own holds the guard: only the suspender may
             % resume it
             Holder = spawn_link(fun() ->
                                         true = erlang:suspend_process(Guard),
                                         Self ! {held, self()},
                                         receive go -> ok end,
                                         timer:sleep(?FLUSH_WAIT),
                                         Self ! {released, erlang:monotonic_time(millisecond)},
                                         true = erlang:resume_process(Guard)
                                 end),
             receive {held, Holder} -> ok after ?WAIT -> ct:fail(not_held) end,
             % ewpcapd has sent the guard all 50
             send_sent(Tx, Port, Ref, <<"call ">>, 50),
             Holder ! go,
             ?assertEqual(Want, Call(S)),
             Returned = erlang:monotonic_time(millisecond),
             ReleasedAt = receive {released, T} -> T after ?WAIT -> ct:fail(not_released) end,
             ?assert(Returned >= ReleasedAt),
             Got = drain(Ref, []),
             ?assertEqual([<<"call ", (integer_to_binary(I))/binary>> || I <- lists:seq(1, 50)],
                          [udp_payload(P) || {ewpcap, _, _, _, _, P} <- Got])
         end || {Call, Want} <- [{fun(X) -> element(1, ewpcap:stats(X)) end, ok},
                                 {fun(X) -> ewpcap:filter(X, ewpcap_live:udp_filter(Port)) end, ok}]],
        ok
    after
        ok = ewpcap:close(S),
        gen_udp:close(Tx),
        gen_udp:close(Rx)
    end.

owner_exit_closes() ->
    [{doc, "The owner of a relayed handle exits: the daemon closes the handle and its relay "
           "(the guard) is gone"}].
owner_exit_closes(_Config) ->
    Self = self(),
    {Owner, MRef} =
        spawn_monitor(fun() ->
                          {ok, #ewpcap_resource{ref = Ref}} =
                              ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
                          Self ! {opened, self(), Ref},
                          receive stop -> ok end
                      end),
    Ref = receive {opened, Owner, R} -> R after ?WAIT -> ct:fail(open_timeout) end,
    H = ewpcap_live:find_handle(Ref, handles()),
    Relay = proplists:get_value(relay, H),
    ?assertEqual(Owner, proplists:get_value(owner, H)),
    ?assert(is_pid(Relay) andalso node(Relay) =:= node() andalso Relay =/= Owner),
    ?assert(is_process_alive(Relay)),
    Owner ! stop,
    receive {'DOWN', MRef, process, Owner, _} -> ok after ?WAIT -> ct:fail(owner_alive) end,
    ?assert(ewpcap_live:poll(fun() -> not ewpcap_live:has_handle(Ref) end, ?WAIT)),
    ?assert(ewpcap_live:poll(fun() -> not is_process_alive(Relay) end, ?WAIT)).

older_daemon() ->
    [{doc, "An ewpcapd from before the relay answers {relay, Pid} with {error, badarg} (here a "
           "node whose registered ewpcap answers as that daemon did): open/3 opens again "
           "without the relay and the owner gets the packets from the daemon itself"}].
older_daemon(_Config) ->
    Dir = filename:dirname(code:which(?MODULE)),
    {ok, Peer, PNode} = peer:start(#{name => "ewp_relay_old_" ++ os:getpid(),
                                     args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                                              "-pa", Dir]}),
    try
        Self = self(),
        Old = erpc:call(PNode, erlang, spawn, [?MODULE, old_ewpcapd, [Self]]),
        receive {Old, registered} -> ok after ?WAIT -> ct:fail(no_fake_daemon) end,
        {ok, #ewpcap_resource{ref = Ref} = S} = ewpcap:open(PNode, <<"lo">>, []),
        receive
            {ewpcap, Ref, 1, {1, 2, 3}, 3, <<1, 2, 3>>} -> ok
        after ?WAIT ->
            ct:fail(no_packet)
        end,
        ok = ewpcap:close(S),
        Old ! {opens, self()},
        Opens = receive {Old, opens, O} -> O after ?WAIT -> ct:fail(no_opens) end,
        ct:pal("the opens the old daemon saw: ~p", [Opens]),
        % first with the relay (refused), then as an open without it
        [First, Second] = Opens,
        ?assertMatch({relay, P} when is_pid(P), lists:keyfind(relay, 1, First)),
        ?assertEqual({batch, 64}, lists:keyfind(batch, 1, First)),
        ?assertEqual(false, lists:keyfind(relay, 1, Second)),
        ?assertEqual(false, lists:keyfind(batch, 1, Second)),
        assert_no_batch()
    after
        peer:stop(Peer)
    end.

close_from_another_node() ->
    [{doc, "A socket opened on a peer node and closed on this one: when close/1 returns, the "
           "handle and its guard on the peer are gone (a guard left behind would tell its "
           "owner nodedown for a closed handle when the connection drops)"}].
close_from_another_node(_Config) ->
    D = ewpcap:node(),
    Paths = [filename:dirname(code:which(M)) || M <- [ewpcap, ?MODULE]],
    {ok, Peer, PNode} = peer:start(#{name => "ewp_relay_close_" ++ os:getpid(),
                                     args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                                              "-pa" | Paths]}),
    try
        Self = self(),
        Owner = erlang:spawn(PNode, fun() ->
                                            Self ! {socket, ewpcap:open(D, <<"lo">>, [{filter, "udp port 9 and udp port 10"}])},
                                            receive stop -> ok end
                                    end),
        S = receive {socket, {ok, S0}} -> S0 after ?WAIT -> ct:fail(no_socket) end,
        #ewpcap_resource{ref = Ref, res = {D, Guard, _}} = S,
        ?assertEqual(PNode, node(Guard)),
        ?assert(erpc:call(PNode, erlang, is_process_alive, [Guard])),
        ?assert(ewpcap_live:has_handle(Ref)),
        ok = ewpcap:close(S),
        ?assertNot(ewpcap_live:has_handle(Ref)),
        ?assertNot(erpc:call(PNode, erlang, is_process_alive, [Guard])),
        Owner ! stop
    after
        peer:stop(Peer)
    end.

close_through_rpc() ->
    [{doc, "A socket closed through ewpcapd's rpc by another process (rpc:call(D, ewpcap, "
           "close, [S]), which the library never sees): ewpcapd tells the handle's guard "
           "({ewpcap_closed, Ref}), which hands the owner the 50 packets sent before and ends "
           "(a guard left behind would tell its owner nodedown for a closed handle when the "
           "connection drops); the owner's own close/1 is then a second close (badarg). "
           "Relayed and not"}].
close_through_rpc(_Config) ->
    {Rx, Port} = ewpcap_live:udp_receiver(),
    Tx = ewpcap_live:udp_sender(),
    D = ewpcap:node(),
    try
        [begin
             {ok, S} = ewpcap:open(<<"lo">>, [{filter, ewpcap_live:udp_filter(Port)} | Opts]),
             #ewpcap_resource{ref = Ref, res = {D, Guard, _}} = S,
             ?assertEqual(node(), node(Guard)),
             send_sent(Tx, Port, Ref, <<"rpc ">>, 50),
             MRef = erlang:monitor(process, Guard),
             Self = self(),
             Closer = spawn_link(fun() -> Self ! {closed, self(), rpc:call(D, ewpcap, close, [S])} end),
             ?assertEqual(ok, receive {closed, Closer, R} -> R after ?WAIT -> ct:fail(no_close) end),
             ?assertNot(ewpcap_live:has_handle(Ref)),
             receive
                 {'DOWN', MRef, process, Guard, Why} -> ?assertEqual(normal, Why)
             after ?WAIT ->
                 ct:fail({guard_left, Opts})
             end,
             Got = drain(Ref, []),
             ?assertEqual([<<"rpc ", (integer_to_binary(I))/binary>> || I <- lists:seq(1, 50)],
                          [udp_payload(P) || {ewpcap, _, _, _, _, P} <- Got]),
             ?assertError(badarg, ewpcap:close(S))
         end || Opts <- [[], [{relay, false}]]],
        ok
    after
        gen_udp:close(Tx),
        gen_udp:close(Rx)
    end.

second_close_after_rpc() ->
    [{doc, "After a close made through ewpcapd's rpc, the owner's close/1 is a second close "
           "(badarg) however things fall: when the guard has not yet taken ewpcapd's word "
           "(held, suspended, while the rpc close and close/1 are made: close/1 returns once "
           "it is let go) and after read/2 returned eof (a savefile read to its end); a close/1 "
           "after the owner's exit closed the handle is still the first (ok)"}].
second_close_after_rpc(Config) ->
    D = ewpcap:node(),
    RpcClose = fun(S) -> ?assertEqual(ok, rpc:call(D, ewpcap, close, [S])) end,
    % the guard held
    {ok, S1} = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
    #ewpcap_resource{ref = Ref1, res = {D, Guard, _}} = S1,
    Self = self(),
    Holder = spawn_link(fun() ->
                                true = erlang:suspend_process(Guard),
                                Self ! {held, self()},
                                receive go -> ok end,
                                timer:sleep(?FLUSH_WAIT),
                                true = erlang:resume_process(Guard)
                        end),
    receive {held, Holder} -> ok after ?WAIT -> ct:fail(not_held) end,
    RpcClose(S1),
    Holder ! go,
    ?assertError(badarg, ewpcap:close(S1)),
    ?assertNot(is_process_alive(Guard)),
    ?assertEqual([], drain(Ref1, [])),
    % after eof
    Path = savefile(Config, "relay_eof.pcap", records(5), <<>>),
    {ok, S2} = ewpcap:open({file, Path}, []),
    [?assertMatch({ok, _}, ewpcap:read(S2, ?WAIT)) || _ <- lists:seq(1, 5)],
    ?assertEqual({error, eof}, ewpcap:read(S2, ?WAIT)),
    RpcClose(S2),
    ?assertError(badarg, ewpcap:close(S2)),
    % the owner's exit closed it: the first close/1 from elsewhere is ok
    {Owner, MRef} = spawn_monitor(fun() ->
                                          {ok, S3} = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
                                          Self ! {socket, S3},
                                          receive stop -> ok end
                                  end),
    S3 = receive {socket, S} -> S after ?WAIT -> ct:fail(no_socket) end,
    Owner ! stop,
    receive {'DOWN', MRef, process, Owner, _} -> ok after ?WAIT -> ct:fail(owner_left) end,
    ?assert(ewpcap_live:poll(fun() -> not ewpcap_live:has_handle(S3#ewpcap_resource.ref) end, ?WAIT)),
    ?assertEqual(ok, ewpcap:close(S3)),
    ?assertError(badarg, ewpcap:close(S3)).

%% On the peer: answers ewpcap's calls as an ewpcapd from before the
%% relay: {relay, Pid} is an unknown option (badarg); an open without it
%% sends the owner one packet.
old_ewpcapd(Parent) ->
    true = register(ewpcap, self()),
    Parent ! {self(), registered},
    old_ewpcapd_loop([]).

old_ewpcapd_loop(Opens) ->
    receive
        {'$gen_call', From, {open, _Dev, Opts, Owner}} ->
            case lists:keyfind(relay, 1, Opts) of
                {relay, P} when is_pid(P) ->
                    gen_server:reply(From, {error, badarg});
                _ ->
                    Ref = make_ref(),
                    gen_server:reply(From, {ok, Ref}),
                    Owner ! {ewpcap, Ref, 1, {1, 2, 3}, 3, <<1, 2, 3>>}
            end,
            old_ewpcapd_loop([Opts | Opens]);
        {'$gen_call', From, {close, _Ref}} ->
            gen_server:reply(From, ok),
            old_ewpcapd_loop(Opens);
        {'$gen_call', From, _} ->
            gen_server:reply(From, {error, unknown_request}),
            old_ewpcapd_loop(Opens);
        {opens, From} ->
            From ! {self(), opens, lists:reverse(Opens)},
            old_ewpcapd_loop(Opens)
    end.

which_handles() ->
    [{doc, "Relayed: the default, `relay', {relay, true}, {batch, 1}, a savefile, immediate "
           "mode with {relay, true}. Not: {relay, false}, {batch, N > 1}, immediate mode, "
           "application environment relay = false (unless {relay, true}); the first "
           "{relay, _} counts; filter/3 takes {relay, _} too. stats/1 and filter/2 wait for "
           "the guard (a sync) only when relayed"}].
which_handles(_Config) ->
    F = {filter, "udp port 9 and udp port 10"},
    Relayed = [[], [relay], [{relay, true}], [{batch, 1}], [{relay, true}, {relay, false}],
               [{timeout, immediate}, {relay, true}], [immediate, {relay, true}],
               [{timeout, 5}]],
    Direct = [[{relay, false}], [{relay, false}, {relay, true}], [{batch, 2}],
              [{batch, 64}, {relay, true}], [{timeout, immediate}], [immediate],
              [{to_ms, immediate}]],
    [relayed(Opts ++ [F], true) || Opts <- Relayed],
    [relayed(Opts ++ [F], false) || Opts <- Direct],
    ok = application:set_env(ewpcap, relay, false),
    relayed([F], false),
    relayed([{relay, true}, F], true),
    ok = application:unset_env(ewpcap, relay),
    {ok, S} = ewpcap:open(<<"lo">>, [F]),
    ?assertEqual(ok, ewpcap:filter(S, "udp port 11 and udp port 12", [{relay, false}])),
    ok = ewpcap:close(S).

bad_value() ->
    [{doc, "{relay, V} with V not a boolean is badarg with error information naming it; "
           "no handle is left"}].
bad_value(_Config) ->
    [begin
         ?assertError(badarg, ewpcap:open(<<"lo">>, [{relay, V}])),
         try ewpcap:open(<<"lo">>, [{relay, V}]) of
             _ -> ct:fail(no_badarg)
         catch
             error:badarg:St ->
                 #{1 := Text} = ewpcap_opts:format_error(badarg, St),
                 ?assertNotEqual(nomatch, string:find(Text, "option relay")),
                 ?assertNotEqual(nomatch, string:find(Text, "a boolean"))
         end
     end || V <- [1, yes, "true", self(), [true]]],
    ewpcap_live:assert_no_handles().

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

%% Opens with Opts, checks whether the daemon relays the handle, closes.
relayed(Opts, Want) ->
    {ok, S} = ewpcap:open(<<"lo">>, Opts),
    try
        case Want of
            true -> assert_relayed(S);
            false -> assert_direct(S)
        end,
        Syncs = syncs(S, fun() ->
                                 {ok, #ewpcap_stat{}} = ewpcap:stats(S),
                                 ok = ewpcap:filter(S, "udp port 13 and udp port 14")
                         end),
        ?assertEqual(case Want of true -> 2; false -> 0 end, Syncs)
    catch
        C:R:St -> erlang:raise(C, {Opts, R}, St)
    after
        ok = ewpcap:close(S)
    end.

%% How many syncs the socket's guard received while Fun ran (stats/1 and
%% filter/2 wait for one when the guard relays)
syncs(#ewpcap_resource{res = {_, Guard, _}}, Fun) ->
    1 = erlang:trace(Guard, true, ['receive', {tracer, self()}]),
    Fun(),
    1 = erlang:trace(Guard, false, ['receive']),
    count_syncs(Guard, 0).

count_syncs(Guard, N) ->
    receive
        {trace, Guard, 'receive', {sync, _, _}} -> count_syncs(Guard, N + 1);
        {trace, Guard, 'receive', _} -> count_syncs(Guard, N)
    after 300 ->
        N
    end.

assert_relayed(#ewpcap_resource{ref = Ref}) ->
    H = ewpcap_live:find_handle(Ref, handles()),
    Relay = proplists:get_value(relay, H),
    ?assertEqual(self(), proplists:get_value(owner, H)),
    ?assert(is_pid(Relay)),
    ?assertEqual(node(), node(Relay)),
    ?assertNotEqual(self(), Relay).

assert_direct(#ewpcap_resource{ref = Ref}) ->
    H = ewpcap_live:find_handle(Ref, handles()),
    ?assertEqual(self(), proplists:get_value(owner, H)),
    ?assertEqual(false, proplists:get_value(relay, H)).

assert_no_batch() ->
    receive
        {ewpcap_batch, _, _, _} = B -> ct:fail({batch_reached_the_owner, B})
    after 0 ->
        ok
    end.

%% The handle's next N messages (packets, eof, errors), waiting at most
%% ?WAIT for each.
collect(#ewpcap_resource{ref = Ref}, N) ->
    collect(Ref, N, []).

collect(_Ref, 0, Acc) ->
    lists:reverse(Acc);
collect(Ref, N, Acc) ->
    receive
        {ewpcap, Ref, _, _, _, _} = M -> collect(Ref, N - 1, [M | Acc]);
        {ewpcap_eof, Ref} = M -> collect(Ref, N - 1, [M | Acc]);
        {ewpcap_error, Ref, _} = M -> collect(Ref, N - 1, [M | Acc])
    after ?WAIT ->
        ct:fail({missing, N, length(Acc)})
    end.

%% N datagrams to Port, payloads Prefix 1 to Prefix N, once ewpcapd has
%% sent them on (the handle Ref's packet count in its info).
send_sent(Tx, Port, Ref, Prefix, N) ->
    Sent0 = proplists:get_value(packets, ewpcap_live:find_handle(Ref, handles())),
    [ok = gen_udp:send(Tx, {127, 0, 0, 1}, Port, <<Prefix/binary, (integer_to_binary(I))/binary>>)
     || I <- lists:seq(1, N)],
    ?assert(ewpcap_live:poll(fun() ->
                                     H = ewpcap_live:find_handle(Ref, handles()),
                                     proplists:get_value(packets, H) >= Sent0 + N
                             end, ?WAIT)).

%% What of Ref is in the mailbox now.
drain(Ref, Acc) ->
    receive
        {ewpcap, Ref, _, _, _, _} = M -> drain(Ref, [M | Acc]);
        {ewpcap_eof, Ref} = M -> drain(Ref, [M | Acc]);
        {ewpcap_error, Ref, _} = M -> drain(Ref, [M | Acc])
    after 0 ->
        lists:reverse(Acc)
    end.

handles() ->
    {ok, Info} = ewpcap:info(),
    proplists:get_value(handles, Info).

retag(Msgs, #ewpcap_resource{ref = From}, #ewpcap_resource{ref = To}) ->
    [setelement(2, M, To) || M <- Msgs, element(2, M) =:= From].

udp_payload(Packet) ->
    {_Src, _Dst, _SPort, _DPort, Payload} = ewpcap_live:decode_udp(Packet),
    Payload.

%% The two handles of a savefile, relayed and direct, and their messages
%% up to the end (End: eof or error), compared.
compare_file(Path, End) ->
    {ok, R} = ewpcap:open({file, Path}, []),
    {ok, D} = ewpcap:open({file, Path}, [{relay, false}]),
    try
        assert_relayed(R),
        assert_direct(D),
        RMsgs = collect(R, ?COUNT + 1),
        DMsgs = collect(D, ?COUNT + 1),
        ct:pal("last message: ~tp", [lists:last(RMsgs)]),
        ?assertEqual(retag(DMsgs, D, R), RMsgs),
        ?assertEqual(lists:seq(1, ?COUNT),
                     [Seq || {ewpcap, _, _, _, _, <<Seq:32, _/binary>>} <- RMsgs]),
        case {End, lists:last(RMsgs)} of
            {eof, {ewpcap_eof, _}} -> ok;
            {error, {ewpcap_error, _, Reason}} when is_list(Reason) -> ok;
            {_, Last} -> ct:fail({last, End, Last})
        end,
        timer:sleep(?FLUSH_WAIT),
        #ewpcap_resource{ref = RRef} = R,
        ?assertEqual([], drain(RRef, [])),
        assert_no_batch()
    after
        ok = ewpcap:close(R),
        ok = ewpcap:close(D)
    end.

%% A pcap savefile (Ethernet, microseconds): the records, then Tail; with
%% Cut, the last Cut bytes of the tail left out.
savefile(Config, Name, Records, Tail) ->
    savefile(Config, Name, Records, Tail, 0).

savefile(Config, Name, Records, Tail, Cut) ->
    Path = filename:join(?config(priv_dir, Config), Name),
    Header = <<16#a1b2c3d4:32/little, 2:16/little, 4:16/little, 0:32, 0:32,
               65535:32/little, 1:32/little>>,
    TailKept = binary:part(Tail, 0, byte_size(Tail) - Cut),
    ok = file:write_file(Path, [Header, Records, TailKept]),
    list_to_binary(Path).

records(N) ->
    [record(I, 60 + (I * 37) rem 1441) || I <- lists:seq(1, N)].

%% Record I: Size bytes, the sequence number first, stamped I ms apart.
record(I, Size) ->
    Data = <<I:32, (binary:copy(<<(I rem 256)>>, Size - 4))/binary>>,
    <<(1700000000 + I div 1000):32/little, ((I rem 1000) * 1000):32/little,
      Size:32/little, Size:32/little, Data/binary>>.
