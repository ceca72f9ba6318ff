%%% @doc Attacks on the captures shared per device and options (cnode/source.c,
%%% demux.c, handles.c), with a daemon of the suite's own on `lo' (under
%%% `make ct-asan' the ASan build: a use after free is a crash there).
%%%
%%% <ul>
%%% <li>`peer_killed_mid_dispatch': a client node holds eight members of a
%%%     capture that this node shares, the first of them its opener (it
%%%     counts the ring), while datagrams flood the capture; the node is
%%%     killed (SIGKILL) in the middle. Its members leave from the daemon's
%%%     teardown, between two dispatches; this node's member goes on
%%%     getting its own datagrams and none of the others', and after it
%%%     closes too the daemon's descriptors are back to what they were.</li>
%%% <li>`filter_replaced_under_traffic': one member's filter is replaced
%%%     over and over while datagrams flow to both members: after each
%%%     replacement answered, no datagram sent afterwards that only the
%%%     old filter accepts reaches it, and the other member only ever gets
%%%     its own.</li>
%%% <li>`protochain_loop_packet': a member's filter is `ip6 protochain 6'
%%%     and a frame comes whose AH header leads back to itself, on which
%%%     libpcap's interpreter loops for ever: the daemon goes on, the other
%%%     member of the capture gets its datagrams.</li>
%%% </ul>
%%%
%%% Traffic: UDP on 127.0.0.1 only, to ports of sockets this suite binds.
%%% Every wait is bounded; nothing is timed against an absolute bound.
%%% @end
-module(ewpcap_shared_attack_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-compile([export_all, nowarn_export_all]).

-define(DH, ewpcap_daemon_helpers).
-define(OPTS, [{snaplen, 200}, {buffer, 4 bsl 20}]). % the same for all: one capture
-define(PEER_MEMBERS, 8).
-define(WAIT, 10000).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [peer_killed_mid_dispatch, filter_replaced_under_traffic, protochain_loop_packet,
     savefile_protochain_loop].

init_per_suite(Config) ->
    case ?DH:root() of
        true -> Config;
        false -> {skip, "needs root (capture on lo)"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    ?DH:flush(),
    D = ?DH:start(#{prefix => "ewp_hatk_d_"}),
    [{daemon, D} | Config].

end_per_testcase(_Case, Config) ->
    _ = ?DH:stop(?config(daemon, Config)),
    ?DH:flush(),
    ok.

%%% ===================================================================
%%% Cases
%%% ===================================================================

peer_killed_mid_dispatch() ->
    [{doc, "A client node holding eight members (the opener first) of a capture shared with "
           "this node is killed while datagrams flood it: this node's member keeps getting "
           "exactly its own, the daemon lives, its descriptors come back"}].
peer_killed_mid_dispatch(Config) ->
    #{node := D, os_pid := OsPid} = ?config(daemon, Config),
    _ = ?DH:handles(D), % this node connected: counted in the baseline
    Base = settled_fds(OsPid, undefined),
    {Sock0, P0} = udp_sink(),
    {Sock1, P1} = udp_sink(),
    {Peer, PNode} = start_client("ewp_hatk_c"),
    % the client node opens first: its first member creates the capture
    % and counts its ring; the rest join, one with no filter at all
    Own = "udp dst port " ++ integer_to_list(P1),
    Holder = spawn_holder(PNode, D, [Own || _ <- lists:seq(1, ?PEER_MEMBERS - 1)] ++ [""]),
    {ok, S0} = ewpcap:open(D, <<"lo">>, [{filter, "udp dst port " ++ integer_to_list(P0)} | ?OPTS]),
    ?assertEqual(?PEER_MEMBERS + 1, length(?DH:handles(D))),
    #ewpcap_resource{ref = Ref} = S0,
    Sender = start_sender([P0, P1]),
    try
        ?assert(count_own(Ref, P0, 20, ?WAIT) >= 20),
        ?assert(holder_count(Holder) > 0), % the client's members read too
        PeerOs = list_to_integer(erpc:call(PNode, os, getpid, [])),
        ?DH:kill_os(PeerOs),
        catch peer:stop(Peer),
        wait_handles(D, 1),
        % the survivor reads on: its own, no one else's
        ?assert(count_own(Ref, P0, 200, ?WAIT) >= 200),
        ok = ewpcap:close(S0)
    after
        stop_sender(Sender),
        catch peer:stop(Peer),
        gen_udp:close(Sock0),
        gen_udp:close(Sock1)
    end,
    wait_handles(D, 0),
    ?DH:flush(),
    ?assertEqual(Base, settled_fds(OsPid, Base)).

filter_replaced_under_traffic() ->
    [{doc, "One member's filter replaced 30 times under traffic: a datagram sent after the "
           "reply that only its old filter accepts never reaches it; the other member only "
           "gets its own"}].
filter_replaced_under_traffic(Config) ->
    #{node := D} = ?config(daemon, Config),
    {Sock1, P1} = udp_sink(),
    {Sock2, P2} = udp_sink(),
    {Sock3, P3} = udp_sink(),
    Port = fun(P) -> "udp dst port " ++ integer_to_list(P) end,
    {ok, S1} = ewpcap:open(D, <<"lo">>, [{filter, Port(P1)} | ?OPTS]),
    {ok, S2} = ewpcap:open(D, <<"lo">>, [{filter, Port(P2)} | ?OPTS]),
    #ewpcap_resource{ref = R1} = S1,
    #ewpcap_resource{ref = R2} = S2,
    Sender = start_sender([P1]),
    {ok, Tx} = gen_udp:open(0, [binary]),
    try
        lists:foreach(
            fun(I) ->
                {New, Old} = case I rem 2 of 0 -> {P2, P3}; 1 -> {P3, P2} end,
                ok = ewpcap:filter(S2, Port(New)),
                Tag = <<"after", I:32>>,
                [ok = gen_udp:send(Tx, {127, 0, 0, 1}, P, Tag) || _ <- lists:seq(1, 20),
                                                                  P <- [Old, New]],
                % those to its new filter's port arrive (each after one to the
                % old port: one of those delivered would come before it), then
                % none to the old; lo is shared, so some may be dropped
                Got = receive_tagged(R2, New, Old, Tag, 20, ?WAIT, 0),
                ?assert(Got > 0),
                {ok, _} = ewpcap:stats(S2), % a round trip: whatever was queued has come
                check_none(R2, Old, Tag)
            end,
            lists:seq(1, 30)),
        ?assert(count_own(R1, P1, 50, ?WAIT) >= 50),
        ok = ewpcap:close(S2),
        ok = ewpcap:close(S1)
    after
        stop_sender(Sender),
        gen_udp:close(Tx),
        [gen_udp:close(S) || S <- [Sock1, Sock2, Sock3]]
    end.

protochain_loop_packet() ->
    [{doc, "A shared capture with an `ip6 protochain 6' member gets a frame on which libpcap's "
           "protochain code loops for ever (AH naming AH, its length leading back): the "
           "daemon answers and the other member gets its datagrams"}].
protochain_loop_packet(Config) ->
    #{node := D} = ?config(daemon, Config),
    {Sock, P} = udp_sink(),
    {ok, S1} = ewpcap:open(D, <<"lo">>, [{filter, "ip6 protochain 6"} | ?OPTS]),
    {ok, S2} = ewpcap:open(D, <<"lo">>, [{filter, "udp dst port " ++ integer_to_list(P)} | ?OPTS]),
    #ewpcap_resource{ref = R2} = S2,
    try
        % Ethernet, IPv6 with next header AH (51); the AH: next header AH,
        % length 8, which libpcap's code turns into the same offset again
        Ip6 = <<6:4, 0:28, 16:16, 51, 64, 0:128, 0:128>>,
        Frame = <<0:48, 0:48, 16#86dd:16, Ip6/binary, 51, 8, 0:(14 * 8)>>,
        ok = ewpcap:write(S1, Frame),
        % datagrams until one arrives (lo is shared: one alone may be dropped)
        Sender = start_sender([P]),
        Got = count_own(R2, P, 1, ?WAIT),
        stop_sender(Sender),
        ?assertEqual(1, Got),
        ?assertEqual(2, length(?DH:handles(D))),
        ok = ewpcap:close(S1),
        ok = ewpcap:close(S2)
    after
        gen_udp:close(Sock)
    end.

%%% ===================================================================
%%% Helpers
%%% ===================================================================

udp_sink() ->
    {ok, S} = gen_udp:open(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}]),
    {ok, P} = inet:port(S),
    {S, P}.

%% UDP destination port of an Ethernet/IPv4 frame, or undefined
dst_port(<<_:12/binary, 16#0800:16, 4:4, Ihl:4, _:8/binary, 17, _/binary>> = F)
  when byte_size(F) >= 14 + Ihl * 4 + 4 ->
    <<_:(14 + Ihl * 4 + 2)/binary, Port:16, _/binary>> = F,
    Port;
dst_port(_) ->
    undefined.

payload(<<_:12/binary, 16#0800:16, 4:4, Ihl:4, _/binary>> = F) ->
    <<_:(14 + Ihl * 4 + 8)/binary, Data/binary>> = F,
    Data.

%% Counts packets of Ref until N or the time is up; any packet not to
%% port P fails the case (another member's, delivered here)
count_own(Ref, P, N, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    count_own(Ref, P, N, Deadline, 0).

count_own(_Ref, _P, N, _Deadline, Got) when Got >= N ->
    Got;
count_own(Ref, P, N, Deadline, Got) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {ewpcap, Ref, _, _, _, Pkt} ->
            case dst_port(Pkt) of
                P -> count_own(Ref, P, N, Deadline, Got + 1);
                Other -> ct:fail({not_its_packet, P, Other})
            end
    after Left ->
        ct:pal("~p packets to ~p of ~p", [Got, P, N]),
        Got
    end.

%% Packets of Ref tagged Tag to port P, until N or Ms without one (the
%% first waited for Ms, the rest 2 s each); one to Old tagged Tag fails
%% the case. Returns how many came.
receive_tagged(_Ref, _P, _Old, _Tag, 0, _Ms, Got) ->
    Got;
receive_tagged(Ref, P, Old, Tag, N, Ms, Got) ->
    receive
        {ewpcap, Ref, _, _, _, Pkt} ->
            case {dst_port(Pkt), payload(Pkt)} of
                {P, Tag} -> receive_tagged(Ref, P, Old, Tag, N - 1, 2000, Got + 1);
                {Old, Tag} -> ct:fail({old_filter_matched_after_reply, Old, Tag});
                _ -> receive_tagged(Ref, P, Old, Tag, N, Ms, Got) % sent before
            end
    after Ms ->
        Got
    end.

check_none(Ref, Old, Tag) ->
    receive
        {ewpcap, Ref, _, _, _, Pkt} ->
            case {dst_port(Pkt), payload(Pkt)} of
                {Old, Tag} -> ct:fail({old_filter_matched_after_reply, Old, Tag});
                _ -> check_none(Ref, Old, Tag)
            end
    after 0 ->
        ok
    end.

%% Datagrams to every port of Ports, in bursts, until stopped
start_sender(Ports) ->
    spawn_link(fun() ->
        {ok, S} = gen_udp:open(0, [binary]),
        send_loop(S, Ports)
    end).

send_loop(S, Ports) ->
    [gen_udp:send(S, {127, 0, 0, 1}, P, <<"flood">>) || _ <- lists:seq(1, 50), P <- Ports],
    receive stop -> gen_udp:close(S) after 2 -> send_loop(S, Ports) end.

stop_sender(Pid) ->
    unlink(Pid),
    Pid ! stop,
    ok.

start_client(Name) ->
    Ebin = filename:dirname(code:which(ewpcap)),
    TestDir = filename:dirname(code:which(?MODULE)),
    {ok, Peer, Node} = peer:start(#{name => list_to_atom(Name ++ "_" ++ os:getpid()),
                                    args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                                             "-pa", Ebin, "-pa", TestDir]}),
    {Peer, Node}.

%% A process on Node that opens one member per filter ("" none), in order,
%% and counts the packets it gets
spawn_holder(Node, D, Filters) ->
    Self = self(),
    Pid = spawn(Node, ?MODULE, holder, [Self, D, Filters]),
    receive {Pid, opened} -> Pid after ?WAIT -> ct:fail(holder_not_started) end.

holder(Parent, D, Filters) ->
    [{ok, _} = ewpcap:open(D, <<"lo">>, [{filter, F} || F =/= ""] ++ ?OPTS) || F <- Filters],
    Parent ! {self(), opened},
    holder_loop(0).

holder_loop(N) ->
    receive
        {ewpcap, _, _, _, _, _} -> holder_loop(N + 1);
        {count, From} -> From ! {count, self(), N}, holder_loop(N)
    end.

holder_count(Pid) ->
    Pid ! {count, self()},
    receive {count, Pid, N} -> N after ?WAIT -> ct:fail(holder_silent) end.

wait_handles(D, N) ->
    wait_handles(D, N, 100).

wait_handles(D, N, 0) ->
    ct:fail({handles, N, length(?DH:handles(D))});
wait_handles(D, N, Tries) ->
    case length(?DH:handles(D)) of
        N -> ok;
        _ -> timer:sleep(100), wait_handles(D, N, Tries - 1)
    end.

fds(OsPid) ->
    {ok, L} = file:list_dir("/proc/" ++ integer_to_list(OsPid) ++ "/fd"),
    length(L).

%% The daemon's descriptor count once it stops changing (or reaches Want)
settled_fds(OsPid, Want) ->
    settled_fds(OsPid, Want, fds(OsPid), 50).

settled_fds(_OsPid, _Want, N, 0) ->
    N;
settled_fds(_OsPid, Want, Want, _) ->
    Want;
settled_fds(OsPid, Want, Last, Tries) ->
    timer:sleep(100),
    case fds(OsPid) of
        Last when Want =:= undefined -> Last;
        N -> settled_fds(OsPid, Want, N, Tries - 1)
    end.

savefile_protochain_loop() ->
    [{doc, "A savefile holding the frame on which libpcap's ip6 protochain never ends, then a "
           "UDP datagram, read with `ip6 protochain 6 or udp': the daemon reads on, the UDP "
           "record arrives, then ewpcap_eof (before: the daemon spun in pcap_offline_filter)"}].
savefile_protochain_loop(Config) ->
    Path = filename:join(?config(priv_dir, Config), "protochain.pcap"),
    Ip6 = <<6:4, 0:28, 16:16, 51, 64, 0:128, 0:128>>,
    Bad = <<0:48, 0:48, 16#86dd:16, Ip6/binary, 51, 8, 0:(14 * 8)>>,
    Udp = <<0:48, 0:48, 16#0800:16, 4:4, 5:4, 0, 33:16, 0:16, 0:16, 64, 17, 0:16,
            127, 0, 0, 1, 127, 0, 0, 1, 40000:16, 40001:16, 13:16, 0:16, "hello">>,
    Rec = fun(Sec, F) -> <<Sec:32/little, 0:32, (byte_size(F)):32/little,
                           (byte_size(F)):32/little, F/binary>> end,
    ok = file:write_file(Path, [<<16#a1b2c3d4:32/little, 2:16/little, 4:16/little, 0:32, 0:32,
                                  65535:32/little, 1:32/little>>,
                                Rec(1, Bad), Rec(2, Udp)]),
    {ok, S} = ewpcap:open({file, Path}, [{filter, "ip6 protochain 6 or udp"}]),
    Ref = S#ewpcap_resource.ref,
    Got = receive {ewpcap, Ref, _, _, _, P} -> P after ?WAIT -> ct:fail(no_udp_record) end,
    ?assertEqual(Udp, Got),
    receive {ewpcap_eof, Ref} -> ok after ?WAIT -> ct:fail(no_eof) end,
    ok = ewpcap:close(S),
    % the daemon still answers
    ?assertMatch({ok, _}, ewpcap:dev()).
