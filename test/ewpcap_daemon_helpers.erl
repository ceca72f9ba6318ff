%%% @doc Test helper of the suites that run ewpcapd on this host
%%% (ewpcap_attack_SUITE, ewpcap_attack_load_SUITE, ewpcap_fault_SUITE,
%%% ewpcap_stall_SUITE, ewpcap_soak_SUITE, and ewpcap_bad_input for the
%%% two bad input suites): a standalone daemon of a case's own, the
%%% embedded one's check, a janitor, and the daemon's info.
%%%
%%% A standalone daemon (start/1) is `ewpcapd -(s)name PREFIX<N>_<pid>@Host
%%% --stdin Args', the executable the library would run
%%% (ewpcap_daemon:executable/0: priv/ewpcapd, or $EWPCAPD as under make
%%% ct-asan), with this node's cookie; a process holds its port and keeps
%%% its output lines. stop/1 closes its stdin, waits for it to exit and
%%% SIGKILLs it by its OS pid if it does not. Every wait is bounded.
%%%
%%% The janitor is a process that outlives a failed case: what a case
%%% registers with it (janitor_add/3) runs at janitor_stop/1, in
%%% end_per_testcase.
%%% @end
-module(ewpcap_daemon_helpers).

-export([
    %% a standalone ewpcapd
    start/1, stop/1, lines/1,
    %% the embedded ewpcapd
    embedded_on_lo/0,
    %% the janitor
    janitor_start/0, janitor_add/3, janitor_lookup/2, janitor_stop/1,
    %% the daemon's info, this node's mailbox, OS processes
    info/1, handles/1, nodes_of/1, os_pid/1, flush/0, flush_list/0,
    kill_os/1, root/0
]).

-define(READY_TIMEOUT, 20000).
-define(STOP_TIMEOUT, 15000).
-define(NOMATCH, "udp port 9 and udp port 10").

%%% ===================================================================
%%% A standalone ewpcapd
%%% ===================================================================

%% Starts one and waits for its `ready' line; fails the case when it does
%% not come. Opts: args (after `--stdin'), env (besides EWPCAPD_COOKIE),
%% wrap (a command that runs the daemon, e.g. ["prlimit", ...]), prefix
%% (of its node name). Returns #{node, os_pid, holder, first_lines}: the
%% lines it wrote before `ready'.
start(Opts) ->
    Exe0 = ewpcap_daemon:executable(),
    {Exe, Pre} = case maps:get(wrap, Opts, []) of
                     [] -> {Exe0, []};
                     [W | WArgs] -> {os:find_executable(W), WArgs ++ [Exe0]}
                 end,
    [_, Host] = string:split(atom_to_list(erlang:node()), "@"),
    Flag = case lists:member($., Host) of true -> "-name"; false -> "-sname" end,
    Name = maps:get(prefix, Opts, "ewp_ct_d_") ++
        integer_to_list(erlang:unique_integer([positive])) ++ "_" ++ os:getpid() ++ "@" ++ Host,
    Args = Pre ++ [Flag, Name, "--stdin" | maps:get(args, Opts, [])],
    Env = [{"EWPCAPD_COOKIE", atom_to_list(erlang:get_cookie())} | maps:get(env, Opts, [])],
    Parent = self(),
    Tag = make_ref(),
    Holder = spawn(fun() ->
        Port = open_port({spawn_executable, Exe},
                         [{args, Args}, {env, Env}, {line, 4096}, use_stdio, stderr_to_stdout,
                          exit_status, binary]),
        {os_pid, OsPid} = erlang:port_info(Port, os_pid),
        case wait_ready(Port, erlang:monotonic_time(millisecond) + ?READY_TIMEOUT, []) of
            {ok, Node, Lines} ->
                Parent ! {Tag, {ok, Node, OsPid, lists:reverse(Lines)}},
                hold(Port, OsPid, []);
            {error, _} = Error ->
                kill_os(OsPid),
                catch port_close(Port),
                Parent ! {Tag, Error}
        end
    end),
    receive
        {Tag, {ok, Node, OsPid, Lines}} ->
            #{node => Node, os_pid => OsPid, holder => Holder, first_lines => Lines};
        {Tag, {error, Why}} ->
            ct:fail({ewpcapd, Why})
    after ?READY_TIMEOUT + 5000 ->
        exit(Holder, kill),
        ct:fail({ewpcapd, no_ready})
    end.

%% Stops it and logs its output. Returns ok, or timeout when its holder
%% did not answer (then killed).
stop(#{holder := H} = D) ->
    MRef = erlang:monitor(process, H),
    H ! {stop, self()},
    receive
        {stopped, H, Lines, Killed} ->
            erlang:demonitor(MRef, [flush]),
            ct:pal("ewpcapd ~p log (~p lines; killed: ~p):~n~ts",
                   [maps:get(node, D), length(Lines), Killed,
                    [[L, $\n] || L <- lists:sublist(Lines, 200), is_binary(L)]]),
            ok;
        {'DOWN', MRef, process, H, _} ->
            ok
    after ?STOP_TIMEOUT ->
        erlang:demonitor(MRef, [flush]),
        exit(H, kill),
        timeout
    end.

%% Its output lines since `ready' (binaries), and {exit_status, St} last
%% when it has exited.
lines(#{holder := H}) ->
    H ! {lines, self()},
    receive {lines, H, L} -> L after 5000 -> [] end.

wait_ready(Port, Deadline, Lines) ->
    receive
        {Port, {data, {eol, <<"ready ", Node/binary>>}}} ->
            {ok, binary_to_atom(Node, utf8), Lines};
        {Port, {data, {_, Line}}} ->
            wait_ready(Port, Deadline, [Line | Lines]);
        {Port, {exit_status, St}} ->
            {error, {exit, St, lists:reverse(Lines)}}
    after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
        {error, {timeout, lists:reverse(Lines)}}
    end.

hold(Port, OsPid, Lines) ->
    receive
        {Port, {data, {_, Line}}} ->
            hold(Port, OsPid, [Line | Lines]);
        {Port, {exit_status, St}} ->
            hold_dead(St, Lines);
        {lines, From} ->
            From ! {lines, self(), lists:reverse(Lines)},
            hold(Port, OsPid, Lines);
        {stop, From} ->
            catch port_close(Port),
            % --stdin: it exits when its stdin closes; else it is wedged
            Alive = wait_gone(OsPid, 100),
            _ = Alive andalso kill_os(OsPid),
            From ! {stopped, self(), lists:reverse(Lines), Alive}
    end.

hold_dead(St, Lines) ->
    receive
        {lines, From} ->
            From ! {lines, self(), lists:reverse([{exit_status, St} | Lines])},
            hold_dead(St, Lines);
        {stop, From} ->
            From ! {stopped, self(), lists:reverse(Lines), false}
    end.

%% true if OsPid is still there after N polls of 50 ms
wait_gone(_OsPid, 0) -> true;
wait_gone(OsPid, N) ->
    case filelib:is_dir("/proc/" ++ integer_to_list(OsPid)) of
        false -> false;
        true -> receive after 50 -> wait_gone(OsPid, N - 1) end
    end.

%%% ===================================================================
%%% The embedded ewpcapd
%%% ===================================================================

%% ok when the embedded daemon (started here if it is not) opens lo with
%% a filter that matches nothing; {skip, Why} when it cannot.
embedded_on_lo() ->
    case ewpcap:open(<<"lo">>, [{filter, ?NOMATCH}]) of
        {ok, S} ->
            ok = ewpcap:close(S);
        {error, Reason} ->
            {skip, lists:flatten(io_lib:format("cannot capture on lo: ~tp", [Reason]))}
    end.

%%% ===================================================================
%%% The janitor
%%% ===================================================================

janitor_start() ->
    spawn(fun() -> janitor([]) end).

%% What runs at janitor_stop/1 (a fun of no arguments), or a value kept
%% for janitor_lookup/2, under Key.
janitor_add(J, Key, What) ->
    J ! {add, Key, What},
    ok.

janitor_lookup(J, Key) ->
    J ! {lookup, Key, self()},
    receive {janitor, V} -> V after 5000 -> undefined end.

%% Runs every fun added, the last added first: [{Key, Result}], or timeout.
janitor_stop(J) ->
    MRef = erlang:monitor(process, J),
    J ! {stop, self()},
    receive
        {janitor_done, J, Done} -> erlang:demonitor(MRef, [flush]), Done;
        {'DOWN', MRef, process, J, Why} -> {janitor_down, Why}
    after 60000 ->
        erlang:demonitor(MRef, [flush]),
        timeout
    end.

janitor(Items) ->
    receive
        {add, Key, What} ->
            janitor([{Key, What} | Items]);
        {lookup, Key, From} ->
            From ! {janitor, proplists:get_value(Key, Items)},
            janitor(Items);
        {stop, From} ->
            Done = [{Key, catch F()} || {Key, F} <- Items, is_function(F, 0)],
            From ! {janitor_done, self(), Done}
    end.

%%% ===================================================================
%%% The daemon's info, this node's mailbox, OS processes
%%% ===================================================================

%% ewpcap:info/1 with a retry (a daemon with a short --ticktime drops this
%% node when it is silent, and the next call connects again); fails the
%% case when the daemon does not answer three times.
info(Node) ->
    info(Node, 3).

info(Node, Tries) ->
    case catch ewpcap:info(Node) of
        {ok, Info} -> Info;
        _ when Tries > 1 -> timer:sleep(100), info(Node, Tries - 1);
        Other -> ct:fail({info, Node, Other})
    end.

handles(Node) ->
    proplists:get_value(handles, info(Node)).

nodes_of(Node) ->
    proplists:get_value(nodes, info(Node)).

os_pid(Node) ->
    proplists:get_value(os_pid, info(Node)).

flush() ->
    _ = flush_list(),
    ok.

%% The messages waiting, taken out.
flush_list() ->
    receive
        M -> [M | flush_list()]
    after 0 ->
        []
    end.

kill_os(OsPid) ->
    _ = os:cmd("kill -9 " ++ integer_to_list(OsPid) ++ " 2>/dev/null"),
    ok.

root() ->
    os:cmd("id -u") =:= "0\n".
