%%% The receive buffer of the distribution connection to each ewpcapd
%%% (ewpcap_distbuf): set on the connection to the embedded daemon and to
%%% a standalone one, not on another node's connection, set again when the
%%% connection drops and comes back (by the library's own call, and by a
%%% plain ping: the nodeup path), and not at all with `{dist_buffer,
%%% false}'. The TLS case is in ewpcap_tls_SUITE (tls_dist_buffer).
%%%
%%% The options are read from the connection's port, as inet:getopts/2 sees
%%% them (erlang:system_info(dist_ctrl)), not through the module under test.
%%% Daemons started here are ended by their OS pid.
-module(ewpcap_distbuf_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, end_per_testcase/2]).
% the cases' docs, which ct reads
-export([embedded_daemon_only/0, reconnect/0, turned_off/0]).
-export([embedded_daemon_only/1, reconnect/1, turned_off/1]).

-define(DEFAULT, 1048576). % the documented default of dist_buffer
-define(WAIT, 30000).      % ms: a condition not met by then is a failure

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [embedded_daemon_only, reconnect, turned_off].

init_per_suite(Config) ->
    _ = application:load(ewpcap),
    ok = application:unset_env(ewpcap, dist_buffer),
    % the embedded daemon (and distribution, when ct_run gave none)
    D = ewpcap:node(),
    [{daemon, D} | Config].

end_per_suite(_Config) ->
    ok.

end_per_testcase(_Case, _Config) ->
    ok = application:unset_env(ewpcap, dist_buffer).

%%% ===================================================================
%%% Cases
%%% ===================================================================

embedded_daemon_only() ->
    [{doc, "The connection to the embedded daemon gets buffer = 1 MiB (the default) and a "
           "raised recbuf; a peer node's connection, up before the library's calls, keeps "
           "what distribution gave it"}].
embedded_daemon_only(Config) ->
    D = ?config(daemon, Config),
    {ok, Peer, PNode} = peer:start(#{name => name("peer"),
                                     args => ["-setcookie", atom_to_list(erlang:get_cookie())]}),
    try
        ?assertEqual(pong, net_adm:ping(PNode)),
        Before = opts(PNode),
        {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
        {ok, _} = ewpcap:stats(S),
        ok = ewpcap:close(S),
        {ok, _} = ewpcap:dev(D),
        Daemon = opts(D),
        Other = opts(PNode),
        ct:pal("daemon ~p: ~p~npeer ~p: ~p (before the calls ~p)",
               [D, Daemon, PNode, Other, Before]),
        ?assertEqual(?DEFAULT, proplists:get_value(buffer, Daemon)),
        ?assert(proplists:get_value(recbuf, Daemon) >= min(?DEFAULT, rmem_max())),
        ?assert(proplists:get_value(buffer, Other) < ?DEFAULT),
        ?assertEqual(proplists:get_value(buffer, Before), proplists:get_value(buffer, Other))
    after
        peer:stop(Peer)
    end.

reconnect() ->
    [{doc, "A standalone daemon: set on the first call; after the connection drops, set again "
           "when a plain ping brings it back (nodeup) and when an open brings it back"}].
reconnect(_Config) ->
    Size = 3 * 65536,
    ok = application:set_env(ewpcap, dist_buffer, Size),
    {D, Port, OsPid} = start_daemon("rc"),
    try
        ?assertEqual(false, lists:keymember(D, 1, erlang:system_info(dist_ctrl))),
        {ok, _} = ewpcap:dev(D),
        ?assertEqual(Size, buffer(D)),
        First = ctrl(D),
        % dropped, back by a ping: not the library's call, its nodeup
        drop(D),
        ?assertEqual(pong, net_adm:ping(D)),
        ?assertNotEqual(First, ctrl(D)),
        ?assertEqual(Size, wait_buffer(D, Size)),
        % dropped, back by the library's open: set before it returns
        drop(D),
        {ok, S} = ewpcap:open(D, <<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
        ?assertEqual(Size, buffer(D)),
        ok = ewpcap:close(S)
    after
        stop_daemon(Port, OsPid)
    end.

turned_off() ->
    [{doc, "{dist_buffer, false}: a standalone daemon's connection keeps distribution's "
           "buffer; a value of the wrong type is logged and sets nothing either"}].
turned_off(_Config) ->
    [begin
         ok = application:set_env(ewpcap, dist_buffer, Value),
         {D, Port, OsPid} = start_daemon("off"),
         try
             {ok, _} = ewpcap:dev(D),
             {ok, S} = ewpcap:open(D, <<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
             ok = ewpcap:close(S),
             Opts = opts(D),
             ct:pal("dist_buffer ~p: ~p", [Value, Opts]),
             % 65536 and up would be a raised buffer: distribution's is about an MTU
             ?assert(proplists:get_value(buffer, Opts) < 65536)
         after
             stop_daemon(Port, OsPid)
         end
     end || Value <- [false, "1048576"]],
    ok.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

name(What) ->
    "ewp_distbuf_" ++ os:getpid() ++ "_" ++ What ++ "_" ++
        integer_to_list(erlang:unique_integer([positive])).

ctrl(Node) ->
    {Node, Ctrl} = lists:keyfind(Node, 1, erlang:system_info(dist_ctrl)),
    Ctrl.

%% buffer and recbuf of the connection's port, as inet sees them.
opts(Node) ->
    {ok, Opts} = inet:getopts(ctrl(Node), [buffer, recbuf]),
    Opts.

buffer(Node) ->
    proplists:get_value(buffer, opts(Node)).

%% The buffer once it is Size, or what it is after ?WAIT.
wait_buffer(Node, Size) ->
    Deadline = erlang:monotonic_time(millisecond) + ?WAIT,
    wait_buffer(Node, Size, Deadline).

wait_buffer(Node, Size, Deadline) ->
    case buffer(Node) of
        Size ->
            Size;
        Other ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true ->
                    Other;
                false ->
                    timer:sleep(10),
                    wait_buffer(Node, Size, Deadline)
            end
    end.

%% Drops the connection and waits for the nodedown.
drop(Node) ->
    ok = net_kernel:monitor_nodes(true, [{node_type, all}]),
    true = erlang:disconnect_node(Node),
    receive
        {nodedown, Node, _} -> ok
    after ?WAIT ->
        ct:fail({no_nodedown, Node})
    end,
    ok = net_kernel:monitor_nodes(false, [{node_type, all}]),
    flush_nodes().

flush_nodes() ->
    receive
        {nodeup, _, _} -> flush_nodes();
        {nodedown, _, _} -> flush_nodes()
    after 0 -> ok
    end.

rmem_max() ->
    {ok, B} = file:read_file("/proc/sys/net/core/rmem_max"),
    binary_to_integer(string:trim(B)).

%% A standalone ewpcapd with this node's cookie and host part, once ready:
%% {Node, Port, OsPid}.
start_daemon(What) ->
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Name = name(What) ++ "@" ++ Host,
    {ok, Addr} = inet:getaddr(Host, inet),
    Exe = ewpcap_daemon:executable(),
    Port = open_port({spawn_executable, Exe},
                     [{args, ["-sname", Name, "-cookie", atom_to_list(erlang:get_cookie()),
                              "--listen", inet:ntoa(Addr), "--stdin"]},
                      {line, 4096}, stderr_to_stdout, exit_status, binary]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    receive
        {Port, {data, {eol, <<"ready ", N/binary>>}}} ->
            {binary_to_atom(N), Port, OsPid}
    after ?WAIT ->
        stop_daemon(Port, OsPid),
        ct:fail(daemon_not_ready)
    end.

stop_daemon(Port, OsPid) ->
    catch port_close(Port),
    _ = os:cmd("kill " ++ integer_to_list(OsPid) ++ " 2>/dev/null"),
    ok.
