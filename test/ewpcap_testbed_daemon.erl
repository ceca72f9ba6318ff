%%% @doc Test helper of ewpcap_testbed: ewpcapd inside one of the bed's
%%% namespaces (`ip netns exec'), its port held by a process that records
%%% every line it prints. ewpcap_testbed's start_daemon/2, stop_daemon/1,
%%% kill_daemon/1, signal_daemon/2, daemon_log/1, daemon_os_pid/1 and
%%% daemon_node/1 are these; a daemon started here is stopped by the bed's
%%% janitor. Every wait is bounded.
%%% @end
-module(ewpcap_testbed_daemon).

-export([start/2, stop/1, kill/1, signal/2, log/1, node/1, os_pid/1]).

-compile({no_auto_import, [node/1]}).

-define(READY_TIMEOUT, 15000).
-define(STOP_TIMEOUT, 5000).

%% @doc Starts `ip netns exec NS priv/ewpcapd -name Name -cookie Cookie
%% --stdin --ticktime 4 -v Args...' and waits for its `ready' line.
%% Options: `ns' (role, default b), `name' (default
%% `"ewpcap@10.77.1.2"'), `cookie', `cookie_via' (`arg' (default):
%% `-cookie'; `file': `--cookie-file' of a file deleted once the daemon is
%% ready; `env': `$EWPCAPD_COOKIE'), `ticktime' (default 4), `args' (more
%% flags), `verbose' (default true). The port is held by a process that
%% is linked to nobody and records every line the daemon prints (stderr
%% too). Returns a map describing the daemon.
-spec start(map(), map()) -> {ok, map()} | {error, term()}.
start(Bed, Opts) ->
    NS = ewpcap_testbed:ns(Bed, maps:get(ns, Opts, b)),
    Name = maps:get(name, Opts, "ewpcap@10.77.1.2"),
    Cookie = maps:get(cookie, Opts),
    Tick = integer_to_list(maps:get(ticktime, Opts, 4)),
    Verbose = case maps:get(verbose, Opts, true) of true -> ["-v"]; false -> [] end,
    {CookieArgs, Env, CookieFile} =
        case maps:get(cookie_via, Opts, arg) of
            arg ->
                {["-cookie", Cookie], [], undefined};
            env ->
                {[], [{"EWPCAPD_COOKIE", Cookie}], undefined};
            file ->
                F = filename:join("/tmp", "ewp_ct_rt_cookie_" ++
                                      integer_to_list(erlang:unique_integer([positive]))),
                ok = file:write_file(F, Cookie ++ "\n"),
                ok = file:change_mode(F, 8#600),
                {["--cookie-file", F], [], F}
        end,
    % wrap: a command the daemon runs under (e.g. setpriv ...), or []
    Args = ["netns", "exec", NS] ++ maps:get(wrap, Opts, []) ++ [daemon_path(), "-name", Name] ++ CookieArgs ++
        ["--stdin", "--ticktime", Tick] ++ Verbose ++ maps:get(args, Opts, []),
    Parent = self(),
    Tag = make_ref(),
    {Holder, MRef} = spawn_monitor(fun() -> daemon_holder(Parent, Tag, Args, Env) end),
    Result = daemon_started(Holder, MRef, Tag, Args),
    _ = CookieFile =/= undefined andalso file:delete(CookieFile),
    Result.

daemon_started(Holder, MRef, Tag, Args) ->
    receive
        {Tag, {ok, Node, OsPid}} ->
            erlang:demonitor(MRef, [flush]),
            D = #{holder => Holder, node => Node, os_pid => OsPid, args => Args},
            ewpcap_testbed:janitor_add({daemon, D}),
            {ok, D};
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

node(#{node := Node}) -> Node.
os_pid(#{os_pid := Pid}) -> Pid.

%% @doc Closes the daemon's standard input and waits (5 s) for it to exit;
%% kills it (-9, by pid) if it does not.
-spec stop(map()) -> ok.
stop(#{holder := Holder, os_pid := OsPid}) ->
    MRef = erlang:monitor(process, Holder),
    Holder ! stop,
    receive
        {'DOWN', MRef, process, Holder, _} -> ok
    after ?STOP_TIMEOUT ->
        erlang:demonitor(MRef, [flush]),
        exit(Holder, kill)
    end,
    case ewpcap_testbed:poll(fun() -> not ewpcap_testbed:pid_alive(OsPid) end, ?STOP_TIMEOUT) of
        true ->
            ok;
        false ->
            _ = ewpcap_testbed:os_cmd("kill", ["-9", integer_to_list(OsPid)]),
            true = ewpcap_testbed:poll(fun() -> not ewpcap_testbed:pid_alive(OsPid) end, ?STOP_TIMEOUT),
            ok
    end.

%% @doc kill -9 of the daemon (by its pid); waits until it is gone.
-spec kill(map()) -> ok.
kill(#{os_pid := OsPid}) ->
    {0, _} = ewpcap_testbed:os_cmd("kill", ["-9", integer_to_list(OsPid)]),
    true = ewpcap_testbed:poll(fun() -> not ewpcap_testbed:pid_alive(OsPid) end, ?STOP_TIMEOUT),
    ok.

%% @doc Sends a signal ("STOP", "CONT", ...) to the daemon (by its pid).
signal(#{os_pid := OsPid}, Sig) ->
    {0, _} = ewpcap_testbed:os_cmd("kill", ["-" ++ Sig, integer_to_list(OsPid)]),
    ok.

%% @doc Every line the daemon has printed so far (stdout and stderr).
-spec log(map()) -> [binary()].
log(#{holder := Holder}) ->
    MRef = erlang:monitor(process, Holder),
    Holder ! {log, self(), MRef},
    receive
        {MRef, Lines} ->
            erlang:demonitor(MRef, [flush]),
            Lines;
        {'DOWN', MRef, process, Holder, _} ->
            []
    after 5000 ->
        erlang:demonitor(MRef, [flush]),
        []
    end.

daemon_holder(Parent, Tag, Args, Env) ->
    Port = open_port({spawn_executable, os:find_executable("ip")},
                     [{args, Args}, {env, Env}, {line, 4096}, use_stdio, exit_status, binary,
                      stderr_to_stdout, hide]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Deadline = erlang:monotonic_time(millisecond) + ?READY_TIMEOUT,
    case wait_ready(Port, Deadline, []) of
        {ok, Node, Lines} ->
            Parent ! {Tag, {ok, Node, OsPid}},
            daemon_hold(Port, Lines, running);
        {error, _} = Error ->
            _ = ewpcap_testbed:os_cmd("kill", ["-9", integer_to_list(OsPid)]),
            catch port_close(Port),
            Parent ! {Tag, Error}
    end.

wait_ready(Port, Deadline, Lines) ->
    Timeout = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {eol, <<"ready ", Node/binary>> = Line}}} ->
            {ok, binary_to_atom(Node, utf8), [Line | Lines]};
        {Port, {data, {_, Line}}} ->
            wait_ready(Port, Deadline, [Line | Lines]);
        {Port, {exit_status, Status}} ->
            {error, {ewpcapd_exit, Status, lists:reverse(Lines)}}
    after Timeout ->
        {error, {ewpcapd_timeout, lists:reverse(Lines)}}
    end.

%% Lines are kept in reverse order; after stop, the holder stays a little
%% to collect the last lines, then exits.
daemon_hold(Port, Lines, State) ->
    receive
        stop when State =:= running ->
            catch port_close(Port),
            ok;
        {log, From, Ref} ->
            From ! {Ref, lists:reverse(Lines)},
            daemon_hold(Port, Lines, State);
        {Port, {exit_status, Status}} ->
            daemon_hold(Port, [iolist_to_binary(io_lib:format("(exit status ~p)", [Status])) | Lines],
                        exited);
        {Port, {data, {_, Line}}} ->
            daemon_hold(Port, [Line | Lines], State);
        stop ->
            ok;
        _ ->
            daemon_hold(Port, Lines, State)
    end.

%% The embedded daemon's executable (priv/ewpcapd, or $EWPCAPD as under
%% make ct-asan): daemons started here run what the library would.
daemon_path() ->
    ewpcap_daemon:executable().
