%%% @doc Hardening: faults around ewpcapd.
%%%
%%% <ul>
%%% <li>`interface_deleted': the captured interface disappears (a veth pair
%%%     in a namespace `ewp_ct_*', daemon started with `--netns').</li>
%%% <li>`failed_capture_members': the members of a shared capture whose
%%%     interface went away leave it while a new capture of the same
%%%     device and options runs (frames written on the veth's other end).</li>
%%% <li>`daemon_killed': the embedded daemon dies of SIGKILL.</li>
%%% <li>`epmd_restarted': epmd dies and comes back; the daemon registers
%%%     again. This uses a private epmd on a port of its own (`epmd -port
%%%     P', daemon started with `ERL_EPMD_PORT=P'): the host's epmd serves
%%%     every Erlang node of the machine (this CT node and other test runs),
%%%     and killing it would unregister them all.</li>
%%% <li>`client_node_killed' / `client_node_frozen': a client node that
%%%     holds handles dies (SIGKILL) or stops answering (SIGSTOP); the
%%%     daemon (`--ticktime 4') closes its handles within the tick time.</li>
%%% </ul>
%%%
%%% Everything a case starts (daemons, epmd, client nodes, namespaces) is
%%% registered with a janitor process and undone in end_per_testcase, also
%%% after a failure or a timetrap. Traffic: none but lo (filters that match
%%% nothing, and frames that ewpcapd writes on a veth inside a namespace).
%%% Every wait is bounded.
%%% @end
-module(ewpcap_fault_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-compile([export_all, nowarn_export_all]).

-import(ewpcap_daemon_helpers, [root/0, kill_os/1, info/1, handles/1, nodes_of/1, os_pid/1,
                                flush/0, flush_list/0]).

-define(DH, ewpcap_daemon_helpers).

-define(NODEDOWN_MAX, 5000).    % ms for {ewpcap_error, Ref, nodedown}
-define(IFERROR_MAX, 5000).     % ms for {ewpcap_error, Ref, String}
-define(RESTART_MAX, 15000).    % ms for the embedded daemon to come back
-define(REREGISTER_MAX, 10000). % ms for the daemon to register with epmd again
-define(TICKTIME, 4).           % s, --ticktime of the client cases' daemon
-define(NOMATCH, "udp port 9 and udp port 10").

%%% ===================================================================
%%% Common Test callbacks
%%% ===================================================================

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [
        interface_deleted,
        failed_capture_members,
        daemon_killed,
        epmd_restarted,
        epmd_restarted_netns_user,
        client_node_killed,
        client_node_frozen
    ].

init_per_suite(Config) ->
    _ = root() andalso ewpcap_netns:available() andalso
        ct:pal("deleted leftover namespaces: ~p", [ewpcap_netns:cleanup()]),
    Node = ewpcap:node(),
    ?assertNotEqual(nonode@nohost, erlang:node()),
    case ?DH:embedded_on_lo() of
        ok ->
            ct:pal("embedded ewpcapd ~p, local node ~p", [Node, erlang:node()]),
            Config;
        Skip ->
            Skip
    end.

end_per_suite(_Config) ->
    _ = application:stop(ewpcap),
    _ = root() andalso ewpcap_netns:available() andalso ewpcap_netns:cleanup(),
    ok.

init_per_testcase(_Case, Config) ->
    flush(),
    [{janitor, ?DH:janitor_start()} | Config].

end_per_testcase(_Case, Config) ->
    Done = ?DH:janitor_stop(?config(janitor, Config)),
    ct:pal("clean-up: ~p", [Done]),
    flush(),
    ok.

%%% ===================================================================
%%% Cases
%%% ===================================================================

interface_deleted() ->
    [{doc, "The captured interface is deleted: {ewpcap_error, Ref, String}, once, to both handles "
           "of its shared capture; close/1 is ok, the daemon lives"}].
interface_deleted(Config) ->
    need_netns(),
    J = ?config(janitor, Config),
    {ok, NS} = ewpcap_netns:create(),
    ?DH:janitor_add(J, {netns, NS}, fun() -> ewpcap_netns:delete(NS) end),
    {ok, Holder, Node, OsPid} = start_daemon(J, "ewp_ct_ifdel_", ["--netns", NS], []),
    ct:pal("namespace ~s, ewpcapd ~p (os pid ~p)", [NS, Node, OsPid]),
    {ok, S0} = ewpcap:open(Node, <<"ewpv0">>, [{filter, ?NOMATCH}]),
    % the same options: one capture shared with S0
    {ok, S0b} = ewpcap:open(Node, <<"ewpv0">>, [{filter, "udp port 7"}]),
    {ok, S1} = ewpcap:open(Node, <<"ewpv1">>, []),
    {ok, Slo} = ewpcap:open(Node, <<"lo">>, [{filter, ?NOMATCH}]),
    #ewpcap_resource{ref = R0} = S0,
    #ewpcap_resource{ref = R0b} = S0b,
    #ewpcap_resource{ref = R1} = S1,
    #ewpcap_resource{ref = Rlo} = Slo,
    ?assertEqual(4, length(handles(Node))),
    T0 = erlang:monotonic_time(millisecond),
    % deleting one end of a veth pair deletes both
    ?assertMatch({0, _}, ewpcap_netns:run("ip", ["-n", NS, "link", "del", "ewpv0"])),
    Errors = [{Ref, receive_error(Ref, T0 + ?IFERROR_MAX)} || Ref <- [R0, R0b, R1]],
    Ms = erlang:monotonic_time(millisecond) - T0,
    ct:pal("after ~p ms: ~p", [Ms, Errors]),
    lists:foreach(
        fun({Ref, Reason}) ->
            is_string(Reason) orelse ct:fail({no_error_string, Ref, Reason})
        end,
        Errors),
    % once each: no second error after two more interface checks (1 s apart)
    timer:sleep(2500),
    ?assertEqual([], [M || {ewpcap_error, _, _} = M <- flush_list()]),
    % the handles stay open (in info) until close/1, and close/1 works
    ?assertEqual(4, length(handles(Node))),
    ?assertEqual(ok, ewpcap:close(S0b)),
    ?assertEqual(ok, ewpcap:close(S0)),
    ?assertEqual(ok, ewpcap:close(S1)),
    ?assertEqual([Rlo], [proplists:get_value(ref, H) || H <- handles(Node)]),
    % the handle on lo was not disturbed, and the daemon answers
    ?assertEqual([], [M || {ewpcap_error, Ref, _} = M <- flush_list(), Ref =:= Rlo]),
    ?assertMatch({ok, #ewpcap_stat{}}, ewpcap:stats(Slo)),
    ?assertMatch({ok, _}, ewpcap:dev(Node)),
    ?assertEqual(OsPid, os_pid(Node)),
    ?assertEqual(ok, ewpcap:close(Slo)),
    ?assertEqual([], handles(Node)),
    stop_daemon(Holder).

failed_capture_members() ->
    [{doc, "Two handles of one shared capture lose their interface (a veth deleted): an open "
           "while it is gone fails and leaves nothing; once the veth is back, an open with the "
           "same options gets a capture of its own (it does not join the failed one) and its "
           "frames; the failed members' filter/2 answers, and their closes (the last one ends "
           "the failed pcap_t) leave the new capture reading; the daemon lives"}].
failed_capture_members(Config) ->
    need_netns(),
    J = ?config(janitor, Config),
    {ok, NS} = ewpcap_netns:create(),
    ?DH:janitor_add(J, {netns, NS}, fun() -> ewpcap_netns:delete(NS) end),
    {ok, Holder, Node, OsPid} = start_daemon(J, "ewp_ct_ifgone_", ["--netns", NS], []),
    Mine = fun(Tag) -> "ether proto 0x88b5 and ether[14] = " ++ integer_to_list(Tag) end,
    {ok, A} = ewpcap:open(Node, <<"ewpv0">>, [{filter, Mine(1)}]),
    {ok, B} = ewpcap:open(Node, <<"ewpv0">>, [{filter, Mine(2)}]),
    #ewpcap_resource{ref = RA} = A,
    #ewpcap_resource{ref = RB} = B,
    T0 = erlang:monotonic_time(millisecond),
    ?assertMatch({0, _}, ewpcap_netns:run("ip", ["-n", NS, "link", "del", "ewpv0"])),
    [?assert(is_list(receive_error(Ref, T0 + ?IFERROR_MAX))) || Ref <- [RA, RB]],
    ?assertMatch({error, _}, ewpcap:open(Node, <<"ewpv0">>, [{filter, Mine(1)}])),
    ?assertEqual(2, length(handles(Node))),
    [?assertMatch({0, _}, ewpcap_netns:run("ip", ["-n", NS | Step]))
     || Step <- [["link", "add", "ewpv0", "type", "veth", "peer", "name", "ewpv1"],
                 ["link", "set", "ewpv0", "up"], ["link", "set", "ewpv1", "up"]]],
    % the same options as A and B: were it to join their capture, it
    % would read the deleted interface's ring and get nothing
    {ok, C} = ewpcap:open(Node, <<"ewpv0">>, [{filter, Mine(1)}]),
    #ewpcap_resource{ref = RC} = C,
    {ok, W} = ewpcap:open(Node, <<"ewpv1">>, [{filter, ?NOMATCH}]),
    Frames = fun(First) ->
                     [begin
                          ok = ewpcap:write(W, ewpcap_live:ethernet_frame(<<1, I>>)),
                          ewpcap_live:ethernet_frame(<<1, I>>)
                      end || I <- lists:seq(First, First + 4)]
             end,
    Got = fun(Sent) -> ?assertEqual(Sent, [receive {ewpcap, RC, _, _, _, P} -> P
                                           after ?IFERROR_MAX -> ct:fail({missing, Sent})
                                           end || _ <- Sent])
          end,
    Got(Frames(1)),
    % the failed members still answer, one at a time, and leave
    ?assertEqual(ok, ewpcap:filter(A, Mine(3))),
    ?assertEqual(ok, ewpcap:close(A)),
    Got(Frames(10)),
    ?assertEqual(ok, ewpcap:close(B)),
    Got(Frames(20)),
    ?assertEqual([], [M || M <- flush_list(), element(2, M) =:= RA orelse element(2, M) =:= RB]),
    ?assertEqual(ok, ewpcap:close(C)),
    ?assertEqual(ok, ewpcap:close(W)),
    ?assertEqual([], handles(Node)),
    ?assertEqual(OsPid, os_pid(Node)),
    stop_daemon(Holder).

daemon_killed() ->
    [{doc, "SIGKILL of the embedded ewpcapd: every owner gets nodedown in < 5 s and lives; a new daemon serves opens"}].
daemon_killed(_Config) ->
    Old = ewpcap:node(),
    OldPid = os_pid(Old),
    Self = self(),
    % three owners with two handles each, and this process with one
    Owners = [spawn_owner(Self, 2) || _ <- lists:seq(1, 3)],
    OwnerRefs = [{Owner, receive {owner, Owner, Refs} -> Refs after 10000 -> ct:fail(open_timeout) end}
                 || Owner <- Owners],
    {ok, Mine} = ewpcap:open(<<"lo">>, [{filter, ?NOMATCH}]),
    MyRef = Mine#ewpcap_resource.ref,
    ?assertEqual(7, length(handles(Old))),
    ct:pal("killing ewpcapd ~p (os pid ~p) with 7 handles", [Old, OldPid]),
    T0 = erlang:monotonic_time(millisecond),
    _ = os:cmd("kill -9 " ++ integer_to_list(OldPid)),
    MyReason = receive_error(MyRef, T0 + ?NODEDOWN_MAX),
    MyMs = erlang:monotonic_time(millisecond) - T0,
    Got = [{Owner, Ref, receive {owner_error, Owner, Ref, Reason, At} -> {Reason, At - T0}
                        after max(0, T0 + ?NODEDOWN_MAX - erlang:monotonic_time(millisecond)) ->
                            timeout
                        end}
           || {Owner, Refs} <- OwnerRefs, Ref <- Refs],
    ct:pal("this process: ~p after ~p ms; owners: ~p", [MyReason, MyMs, Got]),
    ?assertEqual(nodedown, MyReason),
    ?assertEqual([], [G || {_, _, R} = G <- Got, not is_tuple(R) orelse element(1, R) =/= nodedown]),
    ?assert(lists:all(fun({_, _, {nodedown, Ms}}) -> Ms < ?NODEDOWN_MAX end, Got)),
    ?assert(MyMs < ?NODEDOWN_MAX),
    % nobody was killed by a link
    timer:sleep(500),
    ?assert(lists:all(fun erlang:is_process_alive/1, Owners)),
    ?assertNot(filelib:is_dir("/proc/" ++ integer_to_list(OldPid))),
    % the embedded daemon is restarted under a new name
    New = wait_new_node(Old, T0 + ?RESTART_MAX),
    NewPid = os_pid(New),
    ct:pal("new ewpcapd ~p (os pid ~p) answers ~p ms after the kill",
           [New, NewPid, erlang:monotonic_time(millisecond) - T0]),
    ?assertNotEqual(OldPid, NewPid),
    % a handle of the dead daemon: close/1 is ok, others raise badarg
    ?assertEqual(ok, ewpcap:close(Mine)),
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, ?NOMATCH}]),
    ?assertMatch(#ewpcap_resource{res = {New, _, _}}, S),
    ?assertMatch({ok, #ewpcap_stat{}}, ewpcap:stats(S)),
    ?assertEqual(ok, ewpcap:close(S)),
    [Owner ! stop || Owner <- Owners],
    ?assertEqual([], handles(New)).

epmd_restarted() ->
    [{doc, "epmd killed and started again: ewpcapd registers again within 10 s and is reachable; this node's distribution is untouched"}].
epmd_restarted(Config) ->
    Node = epmd_restart(Config, "ewp_ct_epmd_", []),
    ?assertMatch({ok, _}, ewpcap:dev()),
    ct:pal("~p", [Node]).

epmd_restarted_netns_user() ->
    [{doc, "The same with --netns NS --user nobody: it registers again without privileges "
           "(before: it stepped home with setns, which needs CAP_SYS_ADMIN, failed for 60 s and exited) "
           "and still captures in NS"}].
epmd_restarted_netns_user(Config) ->
    J = ?config(janitor, Config),
    {ok, NS} = ewpcap_netns:create(),
    ?DH:janitor_add(J, {netns, NS}, fun() -> ewpcap_netns:delete(NS) end),
    Node = epmd_restart(Config, "ewp_ct_epmdns_", ["--netns", NS, "--user", "nobody"]),
    {ok, Ifs} = remote_call(os:find_executable("erl"), get(epmd_port), Node, getifaddrs),
    Names = [N || {N, _} <- Ifs],
    ct:pal("getifaddrs through the new epmd: ~p", [Names]),
    ?assert(lists:member("ewpv0", Names) orelse lists:member(<<"ewpv0">>, Names)).

%% Start a daemon (Args) registered with a private epmd, kill that epmd,
%% start it again: the daemon registers again and answers a new node.
epmd_restart(Config, Prefix, Args) ->
    J = ?config(janitor, Config),
    Epmd = os:find_executable("epmd"),
    Erl = os:find_executable("erl"),
    (Epmd =/= false andalso Erl =/= false) orelse ct:fail(no_epmd_or_erl),
    Port = free_port(),
    P = integer_to_list(Port),
    Epmd1 = start_epmd(J, Epmd, Port),
    {ok, _Holder, Node, _OsPid} =
        start_daemon(J, Prefix, Args, [{"ERL_EPMD_PORT", P}]),
    [Alive, _] = string:split(atom_to_list(Node), "@"),
    ?assert(lists:member(Alive, epmd_names(Epmd, Port))),
    ?assertMatch({ok, _}, remote_dev(Erl, Port, Node)),
    ct:pal("private epmd on port ~p (os pid ~p); ewpcapd ~p registered", [Port, Epmd1, Node]),
    % kill it: the daemon's registration connection closes
    _ = os:cmd("kill -9 " ++ integer_to_list(Epmd1)),
    ?assert(ewpcap_testbed:poll(fun() -> epmd_names(Epmd, Port) =:= down end, 5000)),
    % epmd comes back only once the daemon has noticed it went away
    ?assert(ewpcap_testbed:poll(fun() ->
                                    lists:any(fun(L) -> string:find(L, "registering again") =/= nomatch end,
                                              daemon_lines(J, Node))
                                end, 5000)),
    T0 = erlang:monotonic_time(millisecond),
    Epmd2 = start_epmd(J, Epmd, Port),
    Registered = ewpcap_testbed:poll(fun() -> lists:member(Alive, epmd_names(Epmd, Port)) end,
                                     ?REREGISTER_MAX),
    Ms = erlang:monotonic_time(millisecond) - T0,
    Lines = daemon_lines(J, Node),
    ct:pal("epmd restarted (os pid ~p); registered again: ~p after ~p ms~ndaemon said: ~p",
           [Epmd2, Registered, Ms, Lines]),
    ?assert(Registered),
    ?assert(lists:any(fun(L) -> string:find(L, "registering again") =/= nomatch end, Lines)),
    ?assert(lists:any(fun(L) -> string:find(L, "registered " ++ atom_to_list(Node) ++
                                                " with epmd again") =/= nomatch end, Lines)),
    % a new node finds it through the new epmd and gets an answer
    ?assertMatch({ok, _}, remote_dev(Erl, Port, Node)),
    % this node's distribution (host epmd) was never touched
    [LocalAlive, _] = string:split(atom_to_list(erlang:node()), "@"),
    {ok, HostNames} = erl_epmd:names(),
    ?assert(lists:keymember(LocalAlive, 1, HostNames)),
    put(epmd_port, Port),
    Node.

client_node_killed() ->
    [{doc, "A client node holding handles is killed (SIGKILL): the daemon closes them within the tick time"}].
client_node_killed(Config) ->
    client_node_gone(Config, "KILL").

client_node_frozen() ->
    [{doc, "A client node holding handles stops (SIGSTOP): the daemon drops it and closes them within the tick time"}].
client_node_frozen(Config) ->
    client_node_gone(Config, "STOP").

client_node_gone(Config, Signal) ->
    J = ?config(janitor, Config),
    Erl = os:find_executable("erl"),
    Erl =/= false orelse ct:fail(no_erl),
    Tick = integer_to_list(?TICKTIME),
    {ok, _Holder, Node, _} = start_daemon(J, "ewp_ct_tick_", ["--ticktime", Tick], []),
    {Client, ClientPid} = start_client(J, Erl, Node, 3),
    ct:pal("ewpcapd ~p (--ticktime ~s); client ~p (os pid ~p)", [Node, Tick, Client, ClientPid]),
    Handles = [H || H <- handles(Node), node(proplists:get_value(owner, H)) =:= Client],
    ?assertEqual(3, length(Handles)),
    ?assert(lists:member(Client, nodes_of(Node))),
    Limit = case Signal of
                "KILL" ->
                    % the connection closes: found without waiting for a tick
                    ?TICKTIME * 1000;
                "STOP" ->
                    % the tick check runs every ticktime/4; the slack is twice
                    % what a killed client took just now, on this machine as
                    % loaded as it is (measured here, not a fixed figure)
                    Ref = killed_client_gone_ms(J, Erl, Node),
                    ct:pal("reference: a killed client's handles closed after ~p ms", [Ref]),
                    ?TICKTIME * 1000 + ?TICKTIME * 250 + 2 * Ref
            end,
    T0 = erlang:monotonic_time(millisecond),
    _ = os:cmd("kill -" ++ Signal ++ " " ++ integer_to_list(ClientPid)),
    Gone = ewpcap_testbed:poll(fun() -> client_handles(Node, Client) =:= [] end, Limit + 5000),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ct:pal("SIG~s: handles of ~p closed: ~p after ~p ms (limit ~p ms); daemon nodes ~p",
           [Signal, Client, Gone, Ms, Limit, nodes_of(Node)]),
    ?assert(Gone),
    ?assert(Ms =< Limit),
    ?assertNot(lists:member(Client, nodes_of(Node))),
    ?assertEqual([], handles(Node)),
    ?assertMatch({ok, _}, ewpcap:dev(Node)).

%%% ===================================================================
%%% Owners
%%% ===================================================================

%% A process that opens N handles on lo, reports their refs and forwards
%% every ewpcap_error it gets; it stays until told to stop (or 2 min).
spawn_owner(Parent, N) ->
    spawn(fun() ->
        Refs = [begin
                    {ok, S} = ewpcap:open(<<"lo">>, [{filter, ?NOMATCH}]),
                    S#ewpcap_resource.ref
                end || _ <- lists:seq(1, N)],
        Parent ! {owner, self(), Refs},
        owner_loop(Parent)
    end).

owner_loop(Parent) ->
    receive
        {ewpcap_error, Ref, Reason} ->
            Parent ! {owner_error, self(), Ref, Reason, erlang:monotonic_time(millisecond)},
            owner_loop(Parent);
        stop ->
            ok
    after 120000 ->
        ok
    end.

receive_error(Ref, Deadline) ->
    receive
        {ewpcap_error, Ref, Reason} -> Reason
    after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
        timeout
    end.

wait_new_node(Old, Deadline) ->
    T0 = erlang:monotonic_time(millisecond),
    Result = ewpcap_testbed:poll(fun() ->
                      case catch ewpcap:node() of
                          N when is_atom(N), N =/= Old -> true;
                          _ -> false
                      end
                  end,
                  max(0, Deadline - T0)),
    Result orelse ct:fail({embedded_daemon_not_restarted, Old}),
    ewpcap:node().

%%% ===================================================================
%%% Daemons, epmd and client nodes
%%% ===================================================================

%% ewpcapd -(s)name PREFIX<N>_<pid>@Host --stdin Args, with the cookie and
%% Env (ewpcap_daemon_helpers): {ok, D, Node, OsPid}. Stopped by the
%% janitor, where D is kept under {daemon_holder, Node}.
start_daemon(J, Prefix, Args, Env) ->
    #{node := Node, os_pid := OsPid} = D = ?DH:start(#{prefix => Prefix, args => Args, env => Env}),
    ?DH:janitor_add(J, {daemon, Node}, fun() -> ?DH:stop(D) end),
    ?DH:janitor_add(J, {daemon_holder, Node}, D),
    {ok, D, Node, OsPid}.

stop_daemon(D) ->
    ?DH:stop(D).

%% Its lines since `ready', as strings ("exit status N" once it exited).
daemon_lines(J, Node) ->
    [line_text(L) || L <- ?DH:lines(?DH:janitor_lookup(J, {daemon_holder, Node}))].

line_text({exit_status, St}) -> "exit status " ++ integer_to_list(St);
line_text(L) -> binary_to_list(L).

%% epmd in the foreground on Port, its OS pid registered with the janitor
%% (it does not exit with its port). Returns once it answers -names.
start_epmd(J, Epmd, Port) ->
    P = open_port({spawn_executable, Epmd},
                  [{args, ["-port", integer_to_list(Port)]}, exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(P, os_pid),
    ?DH:janitor_add(J, {epmd, OsPid}, fun() -> kill_os(OsPid) end),
    ewpcap_testbed:poll(fun() -> is_list(epmd_names(Epmd, Port)) end, 5000) orelse
        ct:fail({epmd_not_up, Port}),
    OsPid.

%% The names registered with the epmd on Port, or down.
epmd_names(Epmd, Port) ->
    case ewpcap_netns:run(Epmd, ["-port", integer_to_list(Port), "-names"], 5000) of
        {0, Out} ->
            [Name || Line <- string:lexemes(Out, "\n"),
                     ["name", Name | _] <- [string:lexemes(Line, " ")]];
        _ ->
            down
    end.

%% A TCP port nobody listens on (for a private epmd).
free_port() ->
    free_port(20).

free_port(0) ->
    ct:fail(no_free_port);
free_port(Tries) ->
    Port = 20000 + rand:uniform(20000),
    case gen_tcp:listen(Port, [{reuseaddr, false}]) of
        {ok, L} ->
            ok = gen_tcp:close(L),
            Port;
        {error, _} ->
            free_port(Tries - 1)
    end.

%% From a fresh node that uses the epmd on Port: gen_server:call dev.
remote_dev(Erl, Port, Node) ->
    remote_call(Erl, Port, Node, dev).

remote_call(Erl, Port, Node, Request) ->
    Name = "ewp_ct_epmdcli_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive])),
    Script = lists:flatten(io_lib:format(
        "R = (catch gen_server:call({ewpcap, '~s'}, ~w, 10000)),"
        "io:format(\"RESULT ~~w~~n\", [R]), halt().", [Node, Request])),
    {Status, Out} = ewpcap_netns:run(Erl, ["-sname", Name, "-epmd_port", integer_to_list(Port),
                                           "-setcookie", atom_to_list(erlang:get_cookie()),
                                           "-noshell", "-eval", Script], 30000),
    ct:pal("client via epmd ~p: ~p ~ts", [Port, Status, Out]),
    case string:find(Out, "RESULT ") of
        nomatch ->
            {error, {Status, Out}};
        Rest ->
            {ok, Tokens, _} = erl_scan:string(string:trim(string:prefix(Rest, "RESULT ")) ++ "."),
            {ok, Term} = erl_parse:parse_term(Tokens),
            Term
    end.

%% An erl node (net_ticktime 4) that opens N handles on lo through Node
%% and waits. Returns {ClientNode, OsPid} once they are open.
%% ms from SIGKILL of a fresh client holding one handle to its handle closed
killed_client_gone_ms(J, Erl, Node) ->
    {Client, Pid} = start_client(J, Erl, Node, 1),
    T0 = erlang:monotonic_time(millisecond),
    _ = os:cmd("kill -KILL " ++ integer_to_list(Pid)),
    ?assert(ewpcap_testbed:poll(fun() -> client_handles(Node, Client) =:= [] end,
                                ?TICKTIME * 2000)),
    erlang:monotonic_time(millisecond) - T0.

start_client(J, Erl, Node, N) ->
    [_, Host] = string:split(atom_to_list(erlang:node()), "@"),
    Alive = "ewp_ct_client_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive])),
    Ebin = filename:dirname(filename:absname(code:which(ewpcap))),
    Script = lists:flatten(io_lib:format(
        "spawn(fun() -> timer:sleep(120000), halt(3) end),"
        "Rs = [ewpcap:open('~s', <<\"lo\">>, [{filter, \"~s\"}]) || _ <- lists:seq(1, ~p)],"
        "io:format(\"OPENED ~~s ~~w~~n\", [os:getpid(), [element(1, R) || R <- Rs]]),"
        "receive stop -> ok end.", [Node, ?NOMATCH, N])),
    Port = open_port({spawn_executable, Erl},
                     [{args, ["-sname", Alive, "-setcookie", atom_to_list(erlang:get_cookie()),
                              "-kernel", "net_ticktime", integer_to_list(?TICKTIME),
                              "-pa", Ebin, "-noshell", "-eval", Script]},
                      {line, 1024}, use_stdio, stderr_to_stdout, exit_status, binary]),
    {os_pid, PortPid} = erlang:port_info(Port, os_pid),
    ?DH:janitor_add(J, {client, PortPid}, fun() -> kill_os(PortPid) end),
    Ok = lists:duplicate(N, ok),
    case wait_opened(Port, erlang:monotonic_time(millisecond) + 30000, []) of
        {OsPid, Ok} ->
            OsPid =/= PortPid andalso
                ?DH:janitor_add(J, {client, OsPid}, fun() -> kill_os(OsPid) end),
            {list_to_atom(Alive ++ "@" ++ Host), OsPid};
        Other ->
            ct:fail({client_start, Other})
    end.

wait_opened(Port, Deadline, Lines) ->
    receive
        {Port, {data, {eol, <<"OPENED ", Rest/binary>>}}} ->
            [Pid, Results] = string:split(binary_to_list(Rest), " "),
            {ok, Tokens, _} = erl_scan:string(Results ++ "."),
            {ok, Term} = erl_parse:parse_term(Tokens),
            {list_to_integer(Pid), Term};
        {Port, {data, {_, Line}}} ->
            wait_opened(Port, Deadline, [Line | Lines]);
        {Port, {exit_status, Status}} ->
            {exit, Status, lists:reverse(Lines)}
    after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
        {timeout, lists:reverse(Lines)}
    end.

%%% ===================================================================
%%% Helpers
%%% ===================================================================

need_netns() ->
    case {root(), ewpcap_netns:available()} of
        {true, true} -> ok;
        {false, _} -> exit({skip, "needs root"});
        {_, false} -> exit({skip, "no ip command"})
    end.

client_handles(Node, Client) ->
    [H || H <- handles(Node), node(proplists:get_value(owner, H)) =:= Client].

is_string(S) ->
    is_list(S) andalso S =/= [] andalso io_lib:printable_unicode_list(S).
