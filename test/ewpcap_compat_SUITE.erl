%%% @doc Drop-in compatibility with the original ewpcap NIF library
%%% (../shared/ewpcap-api.md), and the errors a user gets where we differ.
%%%
%%% Group `original': a user module written against the original API
%%% (test/ewpcap_compat_SUITE_data/orig_user.erl: its records, types,
%%% dirty_scheduler_enabled/0 and every option form) compiled and run
%%% unchanged; the timing options checked against a model of the
%%% original's open/2; filter/3 with open's options; close/1 from
%%% another process after the owner died.
%%%
%%% Group `errors': one case per error of issue 12: a node without
%%% ewpcapd, a node that is not distributed, a bad option value (badarg
%%% with error information), read/1 after eof and after nodedown, batch
%%% leftovers after close/1, the second close after nodedown, a frozen
%%% daemon (a call returns with the tick, not never).
%%%
%%% Live cases capture on lo (root) to 127.0.0.1 on ports chosen here.
%%% @end
-module(ewpcap_compat_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-compile([export_all, nowarn_export_all]).

-define(READY_TIMEOUT, 10000).
-define(POLLS, 2000).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [{group, original}, {group, errors}].

groups() ->
    [{original, [], [
        original_header_and_types,
        original_user_module,
        timing_as_original,
        filter_takes_open_options,
        close_after_owner_died
     ]},
     {errors, [], [
        no_ewpcapd_on_node,
        not_distributed,
        badarg_names_option,
        read_after_eof,
        read_and_close_after_nodedown,
        batch_leftovers_erased,
        frozen_daemon_call_bounded
     ]}].

init_per_suite(Config) ->
    case os:cmd("id -u") of
        "0\n" ->
            {ok, _} = application:ensure_all_started(ewpcap),
            Config;
        _ ->
            {skip, "live captures on lo need root"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    [catch port_close(P) || P <- erlang:ports(), erlang:port_info(P, name) =/= undefined,
                            lists:member(P, get_ports())],
    erase(ewpcap_compat_ports),
    ok.

%%% ===================================================================
%%% original
%%% ===================================================================

original_header_and_types() ->
    [{doc, "orig_user.erl (records #ewpcap{}, #ewpcap_stat{}, #ewpcap_resource{}, types ewpcap:ewpcap_resource()/ewpcap_stat()) compiles unchanged; the types are exported"}].
original_header_and_types(Config) ->
    {module, orig_user} = compile_user(Config),
    Exported = exported_types(ewpcap),
    ct:pal("ewpcap exports the types ~p", [Exported]),
    [?assert(lists:member(T, Exported)) || T <- [{ewpcap_resource, 0}, {ewpcap_stat, 0}, {reason, 0}]],
    % #ewpcap{} is the packet message
    ?assertMatch(#ewpcap{dlt = 1, length = 60}, packet_message(60)).

packet_message(Len) ->
    {ewpcap, make_ref(), 1, {0, 0, 0}, Len, <<0:(Len * 8)>>}.

original_user_module() ->
    [{doc, "orig_user:capture/2 runs unchanged with every option form the original accepted; dirty_scheduler_enabled/0 is false"}].
original_user_module(Config) ->
    {module, orig_user} = compile_user(Config),
    ?assertEqual(false, orig_user:scheduler()),
    ?assertEqual(false, ewpcap:dirty_scheduler_enabled()),
    lists:foreach(
      fun(Opts) ->
              user_run(Opts, original_timing(Opts))
      end, orig_user:option_forms()).

user_run(Opts, {false, infinity}) ->
    % no timeout: a single packet may wait for ever in the kernel
    ?assertMatch({Opts, {ok, #ewpcap_stat{}}}, {Opts, orig_user:open_close(Opts)});
user_run(Opts, _) ->
              Port = free_port(),
              Result = orig_user:capture(Opts, Port),
              ct:pal("~p: ~p", [Opts, element(1, Result)]),
              ?assertMatch({Opts, {ok, {seen, 1, _, _}, #ewpcap_stat{}}}, {Opts, Result}),
              {ok, {seen, 1, Len, Packet}, _} = Result,
              ?assertEqual({Opts, Len}, {Opts, byte_size(Packet)}),
              ?assertMatch({Opts, <<_:42/binary, "original">>}, {Opts, Packet}).

timing_as_original() ->
    [{doc, "The timing options give the mode and timeout of the original's open/2 (modelled here from ewpcap-api.md and its source), with our default when none is given"}].
timing_as_original(_Config) ->
    Forms = [[{to_ms, infinity}], [{to_ms, immediate}], [{to_ms, 7}],
             [{timeout, immediate}], [{timeout, infinity}], [{timeout, 100}],
             [{timeout, 100}, {to_ms, 5}], [{to_ms, 5}, {timeout, 100}],
             [{to_ms, infinity}, {timeout, 3}], [{timeout, immediate}, {to_ms, 9}],
             [{immediate, false}], [{immediate, true}], [immediate],
             [{timeout, infinity}, {immediate, true}], [{timeout, 5}, {immediate, false}],
             [{timeout, immediate}, {immediate, false}], [{to_ms, immediate}, {immediate, false}],
             [{timeout, 5}, {timeout, 6}], [{immediate, false}, {immediate, true}]],
    lists:foreach(
      fun(Opts) ->
              {ok, Norm} = ewpcap_opts:open(Opts),
              ?assertEqual({Opts, original_timing(Opts)}, {Opts, our_timing(Norm)})
      end, Forms),
    % no timing option: ours (1 ms blocks, the documented difference)
    ?assertEqual({ok, []}, ewpcap_opts:open([])).

%% The original: timeout (first occurrence) beats to_ms; immediate -> {true,
%% 500}, infinity -> {false, infinity}, N -> {false, N}; then immediate
%% overrides the flag. Returns {Immediate, Ms} with Ms only when not
%% immediate.
original_timing(Opts0) ->
    Opts = proplists:unfold(Opts0),
    T = proplists:get_value(timeout, Opts, proplists:get_value(to_ms, Opts, immediate)),
    {Imm0, Ms} = case T of
                     immediate -> {true, 500};
                     infinity -> {false, infinity};
                     N -> {false, N}
                 end,
    case proplists:get_value(immediate, Opts, Imm0) of
        true -> {true, ignored};
        false -> {false, Ms}
    end.

%% What we send ewpcapd: a single {timeout, T}.
our_timing(Norm) ->
    [T] = [V || {timeout, V} <- Norm],
    [] = [K || {K, _} <- Norm, K =:= to_ms orelse K =:= immediate],
    case T of
        immediate -> {true, ignored};
        _ -> {false, T}
    end.

filter_takes_open_options() ->
    [{doc, "filter/3 given open's option list is ok (the original ignored open options); unknown keys are still {bad_option, K}, wrong values badarg"}].
filter_takes_open_options(_Config) ->
    Opts = [{snaplen, 200}, promisc, {timeout, 10}, {to_ms, infinity}, {buffer, 0},
            {filter, "udp"}, {time_unit, microsecond}, {batch, 4}, {optimize, false},
            {share, false}],
    {ok, S} = ewpcap:open(<<"lo">>, Opts),
    ?assertEqual(ok, ewpcap:filter(S, "udp port 9", Opts)),
    ?assertEqual({ok, <<"udp port 9">>, [{optimize, false}]}, ewpcap_opts:filter("udp port 9", Opts)),
    ?assertEqual({error, {bad_option, foo}}, ewpcap:filter(S, "ip", [{foo, 1} | Opts])),
    ?assertError(badarg, ewpcap:filter(S, "ip", [{snaplen, -1}])),
    ok = ewpcap:close(S).

close_after_owner_died() ->
    [{doc, "The owner dies: close/1 from another process returns ok (as the original did), a second close/1 raises badarg"}].
close_after_owner_died(_Config) ->
    Self = self(),
    {Owner, MRef} = spawn_monitor(fun() ->
                                          {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp port 9"}]),
                                          Self ! {socket, S}
                                  end),
    S = receive {socket, S0} -> S0 end,
    receive {'DOWN', MRef, process, Owner, _} -> ok end,
    #ewpcap_resource{ref = Ref} = S,
    % the handle is gone from the daemon once the guard's exit arrived
    ?assert(poll(fun() -> not lists:member(Ref, daemon_refs(ewpcap:daemon_node())) end)),
    ?assertEqual(ok, ewpcap:close(S)),
    ?assertError(badarg, ewpcap:close(S)),
    % and a second close/1 of a handle close/1 closed, as before
    {ok, S2} = ewpcap:open(<<"lo">>, [{filter, "udp port 9"}]),
    ok = ewpcap:close(S2),
    ?assertError(badarg, ewpcap:close(S2)).

%%% ===================================================================
%%% errors
%%% ===================================================================

no_ewpcapd_on_node() ->
    [{doc, "A live node without ewpcapd (node() by mistake) is {error, {no_ewpcapd, Node}}, not an exit from the guard"}].
no_ewpcapd_on_node(_Config) ->
    N = node(),
    ?assertEqual({error, {no_ewpcapd, N}}, ewpcap:open(N, <<"lo">>, [])),
    ?assertEqual({error, {no_ewpcapd, N}}, ewpcap:dev(N)),
    ?assertEqual({error, {no_ewpcapd, N}}, ewpcap:getifaddrs(N)),
    ?assertEqual({error, {no_ewpcapd, N}}, ewpcap:info(N)),
    % the caller is still alive, nothing linked to it died
    ?assertEqual([], [P || {links, Ls} <- [process_info(self(), links)], P <- Ls,
                           is_pid(P), not is_process_alive(P)]).

not_distributed() ->
    [{doc, "open/3 and dev/1 from a node that is not distributed: {error, not_distributed}"}].
not_distributed(_Config) ->
    Erl = os:find_executable("erl"),
    Ebin = filename:dirname(code:which(ewpcap)),
    Script = "io:format(\"RESULT ~p ~p~n\", [ewpcap:open('ewpcap@localhost', <<\"lo\">>, []),"
             " ewpcap:dev('ewpcap@localhost')]), halt().",
    Out = os:cmd(Erl ++ " -noshell -pa " ++ Ebin ++ " -eval '" ++ Script ++ "'"),
    ct:pal("~s", [Out]),
    ?assertNotEqual(nomatch, string:find(Out, "RESULT {error,not_distributed} {error,not_distributed}")).

badarg_names_option() ->
    [{doc, "A bad option value raises badarg, with error information naming the option (what the shell prints)"}].
badarg_names_option(_Config) ->
    Cases = [{fun() -> ewpcap:open(<<"lo">>, [{snaplen, -1}]) end, "snaplen"},
             {fun() -> ewpcap:open(<<"lo">>, [{timeout, soon}]) end, "timeout"},
             {fun() -> ewpcap:open(<<"lo">>, [promisc, {netmask, {1, 2, 3}}]) end, "netmask"},
             {fun() -> ewpcap:open(<<"lo">>, not_a_list) end, "proper list"},
             {fun() -> ewpcap:open(lo, []) end, "device"},
             {fun() -> ewpcap_opts:filter(42, []) end, "filter"},
             {fun() -> ewpcap_opts:filter("ip", [{optimize, 1}]) end, "optimize"}],
    lists:foreach(
      fun({F, Word}) ->
              try F() of
                  Other -> ct:fail({no_badarg, Word, Other})
              catch
                  error:badarg:St ->
                      Text = lists:flatten(erl_error:format_exception(error, badarg, St)),
                      ct:pal("~ts", [Text]),
                      ?assertNotEqual({Word, nomatch}, {Word, string:find(Text, Word)})
              end
      end, Cases).

read_after_eof() ->
    [{doc, "read/1 after {error, eof} returns {error, eof} again at once instead of blocking"}].
read_after_eof(_Config) ->
    File = filename:join([filename:dirname(filename:dirname(code:which(ewpcap))),
                          "test", "data", "known.pcap"]),
    {ok, S} = ewpcap:open({file, File}, []),
    N = read_until_error(S, 0),
    ?assert(N > 0),
    ?assertEqual({error, eof}, returns_or_blocks(fun() -> ewpcap:read(S) end)),
    ?assertEqual({error, eof}, returns_or_blocks(fun() -> ewpcap:read(S) end)),
    ok = ewpcap:close(S).

read_until_error(S, N) ->
    case ewpcap:read(S) of
        {ok, _} -> read_until_error(S, N + 1);
        {error, eof} -> N
    end.

read_and_close_after_nodedown() ->
    [{doc, "The daemon is lost: read/1 returns {error, nodedown} again and again, the first close/1 is ok, the second raises badarg (as after any close)"}].
read_and_close_after_nodedown(Config) ->
    {Node, Port} = start_daemon(Config),
    {ok, S} = ewpcap:open(Node, <<"lo">>, [{filter, "udp port 9"}]),
    catch port_close(Port),
    ?assertEqual({error, nodedown}, ewpcap:read(S)),
    ?assertEqual({error, nodedown}, returns_or_blocks(fun() -> ewpcap:read(S) end)),
    ?assertEqual({error, nodedown}, ewpcap:stats(S)),
    ?assertEqual(ok, ewpcap:close(S)),
    ?assertError(badarg, ewpcap:close(S)).

batch_leftovers_erased() ->
    [{doc, "With {batch, N}, close/1 erases the packets read/1 kept in the process dictionary"}].
batch_leftovers_erased(_Config) ->
    Port = free_port(),
    {ok, S} = ewpcap:open(<<"lo">>, [{batch, 64}, {timeout, 50},
                                     {filter, "udp and dst port " ++ integer_to_list(Port)}]),
    #ewpcap_resource{ref = Ref} = S,
    Kept = batch_with_leftovers(S, Port, 20),
    ?assertMatch([_ | _], Kept),
    ok = ewpcap:close(S),
    ?assertEqual(undefined, get({ewpcap_batch, Ref})).

%% Bursts of packets until a read keeps some of a batch (a batch of more
%% than one packet needs them in one read of the kernel ring).
batch_with_leftovers(_S, _Port, 0) ->
    [];
batch_with_leftovers(S, Port, Tries) ->
    #ewpcap_resource{ref = Ref} = S,
    {ok, U} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    [ok = gen_udp:send(U, {127, 0, 0, 1}, Port, <<"batch">>) || _ <- lists:seq(1, 16)],
    gen_udp:close(U),
    {ok, _} = ewpcap:read(S),
    case get({ewpcap_batch, Ref}) of
        [_ | _] = Kept -> Kept;
        _ -> drain(S), batch_with_leftovers(S, Port, Tries - 1)
    end.

drain(S) ->
    case ewpcap:read(S, 100) of
        {ok, _} -> drain(S);
        {error, eagain} -> ok
    end.

frozen_daemon_call_bounded() ->
    [{doc, "A frozen daemon (SIGSTOP): a call waiting on it returns {error, nodedown} once the tick notices, no later than the node's own nodedown plus the time that took"}].
frozen_daemon_call_bounded(Config) ->
    Erl = os:find_executable("erl"),
    {Node, Port} = start_daemon(Config),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Ebin = filename:dirname(code:which(ewpcap)),
    Here = filename:dirname(code:which(?MODULE)),
    % a client node with a short tick, so that the case takes seconds
    Script = lists:flatten(io_lib:format(
               "io:format(\"RESULT ~~p~~n\", [ewpcap_compat_SUITE:frozen_client('~s', ~b)]), halt().",
               [Node, OsPid])),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Alive = "ewp_w12_compat_cli_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive])),
    Out = os:cmd(Erl ++ " -sname " ++ Alive ++ "@" ++ Host ++ " -setcookie " ++
                     atom_to_list(erlang:get_cookie()) ++ " -kernel net_ticktime 4"
                 " -noshell -pa " ++ Ebin ++ " -pa " ++ Here ++ " -eval '" ++ Script ++ "'"),
    _ = os:cmd("kill -CONT " ++ integer_to_list(OsPid)),
    ct:pal("~s", [Out]),
    {match, [Res]} = re:run(Out, "RESULT (.*)", [{capture, all_but_first, list}]),
    {ok, Toks, _} = erl_scan:string(Res ++ "."),
    {ok, {Call, CallMs, DownMs}} = erl_parse:parse_term(Toks),
    ?assertEqual({error, nodedown}, Call),
    % the call returned with the loss of the connection, not after it
    ?assert(CallMs =< 2 * DownMs).

%% Runs on the client node: opens a handle, freezes the daemon, calls
%% stats/1 in one process while another waits for nodedown. Returns
%% {CallResult, MsUntilCallReturned, MsUntilNodedown}.
frozen_client(Node, OsPid) ->
    {ok, S} = ewpcap:open(Node, <<"lo">>, [{filter, "udp port 9"}]),
    true = erlang:monitor_node(Node, true),
    Self = self(),
    T0 = erlang:monotonic_time(millisecond),
    _ = os:cmd("kill -STOP " ++ integer_to_list(OsPid)),
    spawn(fun() ->
                  R = ewpcap:stats(S),
                  Self ! {call, R, erlang:monotonic_time(millisecond) - T0}
          end),
    Down = receive {nodedown, Node} -> erlang:monotonic_time(millisecond) - T0 end,
    receive
        {call, R, Ms} -> {R, Ms, Down}
    after 2 * Down ->
        {hung, 2 * Down, Down}
    end.

%%% ===================================================================
%%% Helpers
%%% ===================================================================

compile_user(Config) ->
    Priv = ?config(priv_dir, Config),
    Data = ?config(data_dir, Config),
    % -include_lib("ewpcap/include/ewpcap.hrl") as in an application that
    % depends on ewpcap: a lib dir named ewpcap
    Root = filename:dirname(filename:dirname(code:which(ewpcap))),
    Lib = filename:join(Priv, "lib"),
    ok = filelib:ensure_dir(filename:join(Lib, "x")),
    _ = file:make_symlink(Root, filename:join(Lib, "ewpcap")),
    {ok, orig_user, Bin} = compile:file(filename:join(Data, "orig_user.erl"),
                                        [binary, return_errors, {i, Lib}, debug_info,
                                         warnings_as_errors]),
    code:load_binary(orig_user, "orig_user.beam", Bin).

exported_types(Mod) ->
    {ok, {Mod, [{abstract_code, {raw_abstract_v1, Forms}}]}} =
        beam_lib:chunks(code:which(Mod), [abstract_code]),
    lists:append([Ts || {attribute, _, export_type, Ts} <- Forms]).

free_port() ->
    {ok, U} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    {ok, P} = inet:port(U),
    gen_udp:close(U),
    P.

daemon_refs(Node) ->
    {ok, Info} = ewpcap:info(Node),
    [proplists:get_value(ref, H) || H <- proplists:get_value(handles, Info)].

poll(F) ->
    poll(F, ?POLLS).

poll(F, 0) ->
    F();
poll(F, N) ->
    case F() of
        true -> true;
        false -> receive after 5 -> poll(F, N - 1) end
    end.

%% Runs F in a process: its result, or `blocked' when the process waits
%% in a receive with an empty mailbox (it would wait forever).
returns_or_blocks(F) ->
    Self = self(),
    {Pid, MRef} = spawn_monitor(fun() -> Self ! {self(), F()} end),
    returns_or_blocks(Pid, MRef, ?POLLS).

returns_or_blocks(Pid, MRef, N) ->
    receive
        {Pid, R} ->
            erlang:demonitor(MRef, [flush]),
            R;
        {'DOWN', MRef, process, Pid, Reason} ->
            {died, Reason}
    after 5 ->
        case process_info(Pid, [status, message_queue_len]) of
            [{status, waiting}, {message_queue_len, 0}] when N < ?POLLS - 10 ->
                exit(Pid, kill),
                blocked;
            _ when N =:= 0 ->
                exit(Pid, kill),
                blocked;
            _ ->
                returns_or_blocks(Pid, MRef, N - 1)
        end
    end.

%% A private ewpcapd (so that losing it disturbs no other case); its port
%% is closed by end_per_testcase (--stdin: it exits).
start_daemon(_Config) ->
    Exe = ewpcap_daemon:executable(),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Prefix = case os:getenv("EWP_NS_PREFIX") of
                 false -> "ewp_ct_";
                 "" -> "ewp_ct_";
                 P -> P
             end,
    Name = Prefix ++ "compat_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive])) ++ "@" ++ Host,
    Port = open_port({spawn_executable, Exe},
                     [{args, ["-sname", Name, "--stdin"]},
                      {env, [{"EWPCAPD_COOKIE", atom_to_list(erlang:get_cookie())}]},
                      {line, 1024}, use_stdio, stderr_to_stdout, exit_status, binary]),
    put(ewpcap_compat_ports, [Port | get_ports()]),
    Deadline = erlang:monotonic_time(millisecond) + ?READY_TIMEOUT,
    Node = wait_ready(Port, Deadline),
    pong = net_adm:ping(Node),
    {Node, Port}.

get_ports() ->
    case get(ewpcap_compat_ports) of
        undefined -> [];
        Ps -> Ps
    end.

wait_ready(Port, Deadline) ->
    receive
        {Port, {data, {eol, <<"ready ", Node/binary>>}}} -> binary_to_atom(Node);
        {Port, {data, _}} -> wait_ready(Port, Deadline);
        {Port, {exit_status, St}} -> ct:fail({ewpcapd_exit, St})
    after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
        ct:fail(ewpcapd_not_ready)
    end.
