%%% Node names between a client and ewpcapd: long names, FQDN host parts,
%%% a -sname client and a -name daemon (and the other way round). Each
%%% mismatch is a clear {error, {bad_node_name, Text}} at once, not a hang
%%% and not a bare nodedown; each case also shows, with a client of the
%%% right kind, that the daemon is there (so the error is about the name).
%%%
%%% The CT node is a -sname node (ct_run -sname). Daemons started here are
%%% ended by their OS pid; peers run with long names over standard_io (no
%%% distribution between them and this node).
-module(ewpcap_names_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
% the cases' docs, which ct reads
-export([sname_client_long_daemon/0, name_client_short_daemon/0, fqdn_host_part_from_sname/0, long_alive_part/0]).
-export([sname_client_long_daemon/1, name_client_short_daemon/1,
         fqdn_host_part_from_sname/1, long_alive_part/1]).

-define(WAIT, 30000). % ms: a call that takes longer is a hang

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [sname_client_long_daemon, name_client_short_daemon, fqdn_host_part_from_sname,
     long_alive_part].

init_per_suite(Config) ->
    % the CT node must be a short-name node for these cases to mean anything
    false = net_kernel:longnames(),
    {ok, _} = application:ensure_all_started(ewpcap),
    Config.

end_per_suite(_Config) ->
    ok.

%%% ===================================================================
%%% Cases
%%% ===================================================================

sname_client_long_daemon() ->
    [{doc, "A -sname client calling a -name daemon: {error, {bad_node_name, _}} naming -sname; "
           "a -name client reaches the same daemon"}].
sname_client_long_daemon(_Config) ->
    Alive = "ewp_names_" ++ os:getpid() ++ "_L",
    D = list_to_atom(Alive ++ "@127.0.0.1"),
    {Port, OsPid} = start_daemon(["-name", atom_to_list(D)]),
    try
        {error, {bad_node_name, Text}} = bounded(fun() -> ewpcap:dev(D) end),
        ct:pal("~ts", [Text]),
        ?assertNotEqual(nomatch, string:find(Text, "-sname")),
        ?assertMatch({error, {bad_node_name, _}},
                     bounded(fun() -> ewpcap:open(D, <<"lo">>, []) end)),
        % the daemon is there: a -name client gets an answer
        {ok, Peer} = long_peer(),
        try
            ?assertMatch({ok, _}, peer:call(Peer, ewpcap, dev, [D], ?WAIT))
        after
            peer:stop(Peer)
        end
    after
        stop_daemon(Port, OsPid)
    end.

name_client_short_daemon() ->
    [{doc, "A -name client calling a -sname daemon: {error, {bad_node_name, _}} naming -name; "
           "this -sname node reaches it"}].
name_client_short_daemon(_Config) ->
    D = ewpcap:node(),
    ?assertMatch({ok, _}, ewpcap:dev(D)),
    {ok, Peer} = long_peer(),
    try
        {error, {bad_node_name, Text}} =
            bounded(fun() -> peer:call(Peer, ewpcap, dev, [D], ?WAIT) end),
        ct:pal("~ts", [Text]),
        ?assertNotEqual(nomatch, string:find(Text, "-name"))
    after
        peer:stop(Peer)
    end.

fqdn_host_part_from_sname() ->
    [{doc, "A -sname client and a daemon named with an FQDN host part: bad_node_name at once"}].
fqdn_host_part_from_sname(_Config) ->
    [_, Host] = string:split(atom_to_list(ewpcap:node()), "@"),
    D = list_to_atom("ewpcap@" ++ Host ++ ".example.org"),
    ?assertMatch({error, {bad_node_name, _}}, bounded(fun() -> ewpcap:dev(D) end)),
    % the same name without the domain is a well-formed short name
    ?assertEqual(ok, ewpcap_dist:check_name(list_to_atom("ewpcap@" ++ Host))).

long_alive_part() ->
    [{doc, "Long names: a daemon named with a 200-character name part serves; a 255-character "
           "node name (the longest atom) is an error at once, not a hang; a daemon given a "
           "300-character name exits at once with a message (status 2)"}].
long_alive_part(_Config) ->
    [_, Host] = string:split(atom_to_list(ewpcap:node()), "@"),
    Alive = "ewp_names_" ++ os:getpid() ++ "_",
    D = list_to_atom(Alive ++ lists:duplicate(200 - length(Alive), $l) ++ "@" ++ Host),
    {Port, OsPid} = start_daemon(["-sname", atom_to_list(D)]),
    try
        ?assertMatch({ok, _}, bounded(fun() -> ewpcap:dev(D) end))
    after
        stop_daemon(Port, OsPid)
    end,
    Longest = list_to_atom(lists:duplicate(255 - length(Host) - 1, $a) ++ "@" ++ Host),
    ?assertEqual(255, length(atom_to_list(Longest))),
    ?assertEqual({error, nodedown}, bounded(fun() -> ewpcap:dev(Longest) end)),
    {Port2, _} = start_daemon(["-sname", lists:duplicate(300, $a)]),
    {Status, Out} = collect(Port2, []),
    ct:pal("ewpcapd with a 300-character name: status ~p: ~ts", [Status, Out]),
    ?assertEqual(2, Status),
    ?assertNotEqual(nomatch, string:find(Out, "bad node name")).

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

%% Runs F in a process of its own; a call that does not return within
%% ?WAIT is a hang and fails the case.
bounded(F) ->
    Self = self(),
    {Pid, MRef} = spawn_monitor(fun() -> Self ! {self(), F()} end),
    receive
        {Pid, R} -> erlang:demonitor(MRef, [flush]), R;
        {'DOWN', MRef, process, Pid, Reason} -> ct:fail({crashed, Reason})
    after ?WAIT ->
        exit(Pid, kill),
        ct:fail(hang)
    end.

%% ewpcapd (as the library would start it) with Args and this node's
%% cookie; {Port, OsPid}, once it is ready (or has exited).
start_daemon(Args) ->
    Exe = ewpcap_daemon:executable(),
    Port = open_port({spawn_executable, Exe},
                     [{args, Args ++ ["-cookie", atom_to_list(erlang:get_cookie()), "--stdin"]},
                      {line, 4096}, stderr_to_stdout, exit_status, binary]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Deadline = erlang:monotonic_time(millisecond) + ?WAIT,
    wait_ready(Port, OsPid, Deadline, []).

%% Until the daemon's "ready" line (log lines before it, such as the one
%% saying it listens on every address, are kept for collect/2), or its
%% exit, which is handed on to collect/2 too.
wait_ready(Port, OsPid, Deadline, Lines) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {eol, <<"ready ", _/binary>>}}} ->
            {Port, OsPid};
        {Port, {data, {_, Line}}} ->
            wait_ready(Port, OsPid, Deadline, [Line | Lines]);
        {Port, {exit_status, S}} ->
            [self() ! {Port, {data, {eol, L}}} || L <- lists:reverse(Lines)],
            self() ! {Port, {exit_status, S}},
            {Port, OsPid}
    after Left ->
        stop_daemon(Port, OsPid),
        ct:fail({daemon_not_ready, lists:reverse(Lines)})
    end.

stop_daemon(Port, OsPid) ->
    catch port_close(Port),
    _ = os:cmd("kill " ++ integer_to_list(OsPid) ++ " 2>/dev/null"),
    ok.

%% The daemon's output until it exits (bounded).
collect(Port, Acc) ->
    receive
        {Port, {data, {_, Line}}} -> collect(Port, [Acc, Line, $\n]);
        {Port, {exit_status, S}} -> {S, unicode:characters_to_list(Acc)}
    after ?WAIT ->
        ct:fail(daemon_did_not_exit)
    end.

%% A -name peer (127.0.0.1) with ewpcap in its path, controlled over
%% standard_io: it never connects to this -sname node.
long_peer() ->
    Ebin = filename:dirname(code:which(ewpcap)),
    Name = "ewp_names_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive])),
    {ok, Peer, _Node} = peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                                     connection => standard_io,
                                     args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                                              "-pa", Ebin]}),
    {ok, Peer}.
