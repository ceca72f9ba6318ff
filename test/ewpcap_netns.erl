%%% @doc Test helper: network namespaces for ewpcap_SUITE, and an ewpcapd
%%% started inside one.
%%%
%%% Namespaces made here are named `ewp_ct_<random>' and hold a veth pair
%%% `ewpv0'/`ewpv1' (both ends inside the namespace) and `lo', all up.
%%% Nothing here sends traffic; every external command is bounded by a
%%% timeout.
%%% @end
-module(ewpcap_netns).

-export([
    available/0,
    tag/0,
    owner_alive/1,
    create/0,
    delete/1,
    cleanup/0,
    list/0,
    prefix/0,
    start_daemon/1,
    stop_daemon/1,
    run/2,
    run/3
]).

-define(DEFAULT_PREFIX, "ewp_ct_").
-define(CMD_TIMEOUT, 15000).
-define(READY_TIMEOUT, 15000).
-define(STOP_TIMEOUT, 10000).

%%% ===================================================================
%%% Namespaces
%%% ===================================================================

%% @doc The prefix of every namespace the tests make: `ewp_ct_', or
%% `$EWP_NS_PREFIX' (letters, digits and `_', at most 16), so that runs
%% side by side on one machine (make ct-asan sets its own) neither share
%% names nor delete each other's namespaces as leftovers.
-spec prefix() -> string().
prefix() ->
    case os:getenv("EWP_NS_PREFIX") of
        Unset when Unset =:= false; Unset =:= "" ->
            ?DEFAULT_PREFIX;
        P ->
            case re:run(P, "^[a-z0-9_]{1,16}$", [{capture, none}]) of
                match -> P;
                nomatch -> erlang:error({bad_env, "EWP_NS_PREFIX", P})
            end
    end.

%% @doc true when the `ip' command exists.
-spec available() -> boolean().
available() ->
    os:find_executable("ip") =/= false.

%% @doc Creates `ewp_ct_<ospid>x<random>' with the veth pair and lo up. On any
%% failure the namespace is deleted again and `{error, Reason}' returned.
-spec create() -> {ok, string()} | {error, term()}.
create() ->
    NS = prefix() ++ tag(),
    Steps = [
        ["netns", "add", NS],
        ["-n", NS, "link", "add", "ewpv0", "type", "veth", "peer", "name", "ewpv1"],
        ["-n", NS, "link", "set", "ewpv0", "up"],
        ["-n", NS, "link", "set", "ewpv1", "up"],
        ["-n", NS, "link", "set", "lo", "up"]
    ],
    case run_steps(Steps) of
        ok ->
            {ok, NS};
        {error, _} = Error ->
            _ = delete(NS),
            Error
    end.

%% @doc Deletes a namespace; a namespace that does not exist is fine.
-spec delete(string()) -> ok | {error, term()}.
delete(NS) ->
    case lists:member(NS, list()) of
        false ->
            ok;
        true ->
            case ip(["netns", "delete", NS]) of
                {0, _} -> ok;
                {Status, Out} -> {error, {ip_netns_delete, NS, Status, Out}}
            end
    end.

%% @doc Deletes every namespace named `ewp_ct_*' (prefix/0) left over by a
%% killed run: one whose name carries the OS pid of a BEAM that is gone
%% (see tag/0), or no pid at all. A concurrent run's namespaces are left
%% alone. Returns the names it deleted.
-spec cleanup() -> [string()].
cleanup() ->
    [NS || NS <- list(), lists:prefix(prefix(), NS), not owner_alive(NS), delete(NS) =:= ok].

%% @doc `<ospid>x<random>': a namespace name part that says which OS
%% process made it, so that cleanups never delete a live run's namespaces.
-spec tag() -> string().
tag() ->
    os:getpid() ++ "x" ++ string:lowercase(integer_to_list(rand:uniform(16#7FFFFFF), 36)).

%% @doc Whether the process that named NS (`<prefix>[rt]<ospid>x...') still
%% runs; false for names without a pid.
-spec owner_alive(string()) -> boolean().
owner_alive(NS) ->
    case re:run(NS, "^" ++ prefix() ++ "(?:rt)?([0-9]+)x", [{capture, all_but_first, list}]) of
        {match, [Pid]} -> filelib:is_dir("/proc/" ++ Pid);
        nomatch -> false
    end.

%% @doc The names of all namespaces (`ip netns list').
-spec list() -> [string()].
list() ->
    case available() of
        false ->
            [];
        true ->
            {_, Out} = ip(["netns", "list"]),
            % lines are "NAME" or "NAME (id: N)"
            [hd(string:lexemes(Line, " ")) || Line <- string:lexemes(Out, "\n"),
                                               string:trim(Line) =/= ""]
    end.

%%% ===================================================================
%%% A daemon inside a namespace
%%% ===================================================================

%% @doc Starts `priv/ewpcapd -(s)name ewp_ct_ns_<random>@Host --stdin
%% --netns NS' (the local node must be distributed) and waits for its
%% `ready NODE' line. The port is owned by a holder process that is not
%% linked to the caller (Common Test runs init_per_group in a short-lived
%% process); stop_daemon/1 closes the port, and the daemon exits. Returns
%% `{ok, Holder, Node}' once the node answers a ping.
-spec start_daemon(string()) -> {ok, pid(), node()} | {error, term()}.
start_daemon(NS) ->
    Exe = daemon_path(),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Flag =
        case lists:member($., Host) of
            true -> "-name";
            false -> "-sname"
        end,
    Name = "ewp_ct_ns_" ++ integer_to_list(rand:uniform(16#7FFFFFFF)) ++ "@" ++ Host,
    Cookie = atom_to_list(erlang:get_cookie()),
    Parent = self(),
    Tag = make_ref(),
    {Holder, MRef} = spawn_monitor(fun() -> holder(Parent, Tag, Exe, Flag, Name, NS, Cookie) end),
    receive
        {Tag, {ok, Node}} ->
            erlang:demonitor(MRef, [flush]),
            case net_adm:ping(Node) of
                pong ->
                    {ok, Holder, Node};
                pang ->
                    stop_daemon(Holder),
                    {error, {pang, Node}}
            end;
        {Tag, {error, _} = Error} ->
            erlang:demonitor(MRef, [flush]),
            Error;
        {'DOWN', MRef, process, Holder, Reason} ->
            {error, {holder_died, Reason}}
    after ?READY_TIMEOUT + 5000 ->
        erlang:demonitor(MRef, [flush]),
        exit(Holder, kill),
        {error, {ewpcapd, timeout}}
    end.

%% @doc Stops a daemon started by start_daemon/1 and waits for its exit.
-spec stop_daemon(pid()) -> ok.
stop_daemon(Holder) ->
    MRef = erlang:monitor(process, Holder),
    Holder ! stop,
    receive
        {'DOWN', MRef, process, Holder, _} -> ok
    after ?STOP_TIMEOUT ->
        exit(Holder, kill),
        receive
            {'DOWN', MRef, process, Holder, _} -> ok
        after ?STOP_TIMEOUT -> ok
        end
    end.

holder(Parent, Tag, Exe, Flag, Name, NS, Cookie) ->
    Port = open_port(
        {spawn_executable, Exe},
        [
            {args, [Flag, Name, "--stdin", "--netns", NS]},
            {env, [{"EWPCAPD_COOKIE", Cookie}]},
            {line, 1024},
            use_stdio,
            exit_status,
            binary
        ]
    ),
    Deadline = erlang:monotonic_time(millisecond) + ?READY_TIMEOUT,
    case wait_ready(Port, Deadline, []) of
        {ok, Node} ->
            Parent ! {Tag, {ok, Node}},
            hold(Port);
        {error, _} = Error ->
            catch port_close(Port),
            Parent ! {Tag, Error}
    end.

wait_ready(Port, Deadline, Lines) ->
    Timeout = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {eol, <<"ready ", Node/binary>>}}} ->
            {ok, binary_to_atom(Node, utf8)};
        {Port, {data, {_, Line}}} ->
            wait_ready(Port, Deadline, [Line | Lines]);
        {Port, {exit_status, Status}} ->
            {error, {ewpcapd_exit, Status, lists:reverse(Lines)}}
    after Timeout ->
        {error, {ewpcapd_timeout, lists:reverse(Lines)}}
    end.

%% Keep the port (stdin of the daemon) open until told to stop; log what
%% the daemon prints.
hold(Port) ->
    receive
        stop ->
            catch port_close(Port),
            ok;
        {Port, {exit_status, Status}} ->
            logger:error("netns ewpcapd exited with status ~p", [Status]),
            ok;
        {Port, {data, {_, Line}}} ->
            logger:notice("netns ewpcapd: ~ts", [Line]),
            hold(Port);
        _ ->
            hold(Port)
    end.

%% The embedded daemon's executable (priv/ewpcapd, or $EWPCAPD as under
%% make ct-asan): daemons started here run what the library would.
daemon_path() ->
    ewpcap_daemon:executable().

%%% ===================================================================
%%% Commands
%%% ===================================================================

%% @doc Runs an executable (found in PATH) with arguments, no shell,
%% bounded by 15 seconds. Returns `{ExitStatus, Output}' (stderr included)
%% or `{timeout, Output}' after killing it.
-spec run(string(), [string()]) -> {integer() | timeout, string()}.
run(Cmd, Args) ->
    run(Cmd, Args, ?CMD_TIMEOUT).

-spec run(string(), [string()], timeout()) -> {integer() | timeout, string()}.
run(Cmd, Args, Timeout) ->
    case os:find_executable(Cmd) of
        false ->
            {127, Cmd ++ ": not found"};
        Exe ->
            Port = open_port({spawn_executable, Exe},
                             [{args, Args}, exit_status, stderr_to_stdout, binary, hide]),
            Deadline = erlang:monotonic_time(millisecond) + Timeout,
            collect(Port, Deadline, [])
    end.

collect(Port, Deadline, Acc) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, Data}} ->
            collect(Port, Deadline, [Data | Acc]);
        {Port, {exit_status, Status}} ->
            {Status, unicode:characters_to_list(lists:reverse(Acc))}
    after Left ->
        kill_port(Port),
        {timeout, unicode:characters_to_list(lists:reverse(Acc))}
    end.

kill_port(Port) ->
    case erlang:port_info(Port, os_pid) of
        {os_pid, OsPid} ->
            _ = os:cmd("kill -9 " ++ integer_to_list(OsPid));
        undefined ->
            ok
    end,
    catch port_close(Port),
    ok.

ip(Args) ->
    run("ip", Args).

run_steps([]) ->
    ok;
run_steps([Args | Rest]) ->
    case ip(Args) of
        {0, _} -> run_steps(Rest);
        {Status, Out} -> {error, {ip, Args, Status, Out}}
    end.
