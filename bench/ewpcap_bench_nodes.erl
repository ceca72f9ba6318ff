%%% @doc make bench: the daemons (same-host, remote, TLS, the old binary's),
%%% the client nodes and the peer; the counters that own the captures and
%%% receive the baseline; and the client node's own side (it runs
%%% `-run ewpcap_bench client', driven over its standard input).
%%% @end
-module(ewpcap_bench_nodes).

-include("ewpcap.hrl").
-include("ewpcap_bench.hrl").

-export([client/0, client_call/3, counter_handle/1, counter_latencies/1, finish_handle/2,
         remote_node/2, start_before_daemons/2, start_client/1, start_counter/2,
         start_local_daemon/1, start_local_daemon/3, start_peer/1, start_remote_daemon/1,
         start_remote_daemon/3, start_tls/1, stop_counter/1, stop_tls/1, wait_done/4,
         wait_done/6]).

%%% -------------------------------------------------------------------
%%% Daemons, the client node, the peer
%%% -------------------------------------------------------------------

%% ewpcapd on this host, capturing inside the capture namespace (--netns),
%% reached over the host's loopback.
start_local_daemon(Ctx) ->
    start_local_daemon(maps:get(ewpcapd, Ctx), "ewp_bench_d_", Ctx).

start_local_daemon(Exe, Prefix, Ctx) ->
    #{cap_ns := NS, cookie := Cookie} = Ctx,
    Name = Prefix ++ os:getpid(),
    Port = open_port({spawn_executable, Exe},
                     [{args, ["-sname", Name, "--stdin", "--netns", NS]},
                      {env, [{"EWPCAPD_COOKIE", Cookie}]},
                      {line, 1024}, exit_status, use_stdio, binary]),
    {ok, <<"ready ", N/binary>>} = ewpcap_bench_proc:wait_line(Port, "ready ", 15000),
    Node = binary_to_atom(N),
    pong = net_adm:ping(Node),
    {os_pid, Pid} = erlang:port_info(Port, os_pid),
    ewpcap_bench_report:say("bench: same-host ~s ~s (os pid ~b, --netns ~s)", [Exe, Node, Pid, NS]),
    {Port, Node, Pid}.

%% ewpcapd inside the capture namespace, reachable only from the client
%% namespace over the cx0/cx1 veth pair.
start_remote_daemon(Ctx) ->
    start_remote_daemon(maps:get(ewpcapd, Ctx), "ewpcap", Ctx).

start_remote_daemon(Exe, Name, Ctx) ->
    #{cap_ns := NS, cookie := Cookie, cap_addr := Addr} = Ctx,
    Port = ewpcap_bench_proc:ns_port(Ctx, NS, Exe, ["-name", Name ++ "@" ++ Addr, "-cookie", Cookie, "--stdin"]),
    {ok, _} = ewpcap_bench_proc:wait_line(Port, "ready ", 15000),
    {os_pid, Pid} = erlang:port_info(Port, os_pid),
    %% ip netns exec execs the command: the port's process is ewpcapd
    {ok, Comm} = file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/comm"),
    true = lists:member(Comm, [<<"ewpcapd\n">>, iolist_to_binary([lists:sublist(filename:basename(Exe), 15), $\n])]),
    ewpcap_bench_report:say("bench: remote ~s ~s@~s in ~s (os pid ~b)", [Exe, Name, Addr, NS, Pid]),
    {Port, Pid}.

remote_node(#{cap_addr := Addr}, Name) ->
    list_to_atom(Name ++ "@" ++ Addr).

%% BENCH_EWPCAPD_BEFORE: the old binary, same-host and remote, beside the
%% current ones. Returns the ports and the context keys that point a row
%% at them (undefined when the variable is unset).
%% With the TLS rows, a TLS daemon of the old binary too, reached by the
%% same TLS client node.
start_before_daemons(#{ewpcapd_before := undefined}, _Tls) ->
    {[], undefined};
start_before_daemons(#{ewpcapd_before := Exe} = Ctx, Tls) ->
    {LPort, LNode, LPid} = start_local_daemon(Exe, "ewp_bench_dbefore_", Ctx),
    {RPort, RPid} = start_remote_daemon(Exe, "ewpcap_before", Ctx),
    B = #{local_node => LNode, local_pid => LPid, remote_pid => RPid,
          remote_node => remote_node(Ctx, "ewpcap_before")},
    case Tls of
        undefined ->
            {[RPort, LPort], B};
        #{optfile := Optfile} ->
            {TPort, TPid, TNode} = start_tls_daemon(Exe, "ewpcap_tls_before", Optfile, Ctx),
            {[TPort, RPort, LPort], B#{tls => Tls#{pid := TPid, node := TNode}}}
    end.

%% The client node: an Erlang node in the client namespace, driven over its
%% standard input (this node cannot reach that namespace).
start_client(Ctx) ->
    #{cli_ns := NS, cookie := Cookie, cli_addr := Addr, cap_addr := DAddr,
      ebin := Ebin, bench_ebin := BEbin} = Ctx,
    Erl = os:find_executable("erl"),
    Port = ewpcap_bench_proc:ns_port(Ctx, NS, Erl, ["-noshell", "-name", "ewp_bench_cli@" ++ Addr,
                                  "-setcookie", Cookie, "+C", "multi_time_warp",
                                  "-pa", Ebin, "-pa", BEbin,
                                  "-ewpcap", "node", "'ewpcap@" ++ DAddr ++ "'",
                                  "-run", "ewpcap_bench", "client"]),
    {ok, <<"hello ", P/binary>>} = ewpcap_bench_proc:wait_line(Port, "hello ", 30000),
    Pid = binary_to_integer(P),
    ewpcap_bench_report:say("bench: client node ewp_bench_cli@~s in ~s (os pid ~b)", [Addr, NS, Pid]),
    #{port => Port, pid => Pid}.

client_call(#{port := Port}, Term, Timeout) ->
    true = port_command(Port, io_lib:format("~w.~n", [Term])),
    case Term of
        quit ->
            ewpcap_bench_proc:wait_exit(Port, Timeout);
        _ ->
            {ok, <<"reply ", R/binary>>} = ewpcap_bench_proc:wait_line(Port, "reply ", Timeout),
            {ok, Toks, _} = erl_scan:string(binary_to_list(R) ++ "."),
            {ok, Reply} = erl_parse:parse_term(Toks),
            case Reply of
                {failed, E} -> erlang:error({client, E});
                _ -> Reply
            end
    end.

%% The TLS rows (remote_tls, remote_tls_batch64): certificates made with
%% openssl in bench/out/tls, a second remote ewpcapd with --tls-* and a
%% second client node with -proto_dist inet_tls; undefined when those
%% modes are not asked for.
start_tls(#{modes := Modes} = Ctx) ->
    case [M || M <- Modes, M =:= remote_tls orelse M =:= remote_tls_batch64] of
        [] -> undefined;
        _ -> start_tls_nodes(Ctx)
    end.

start_tls_nodes(Ctx) ->
    #{out := Out, ewpcapd := Exe, cookie := Cookie, cap_addr := Addr,
      cli_ns := CNS, cli_addr := CAddr, ebin := Ebin, bench_ebin := BEbin} = Ctx,
    Dir = filename:join(Out, "tls"),
    ok = filelib:ensure_path(Dir),
    F = fun(N, E) -> filename:join(Dir, N ++ E) end,
    Ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    {ok, _} = run_ok("openssl", ["req", "-x509" | Ec] ++ ["-keyout", F("ca", ".key"),
                     "-out", F("ca", ".pem"), "-days", "2", "-subj", "/CN=ewpcap-bench-ca"]),
    San = "subjectAltName=IP:" ++ Addr ++ ",IP:" ++ CAddr ++ ",DNS:" ++ Addr ++ ",DNS:" ++ CAddr,
    {ok, _} = run_ok("openssl", ["req" | Ec] ++ ["-keyout", F("node", ".key"), "-out",
                     F("node", ".csr"), "-subj", "/CN=node", "-addext", San]),
    {ok, _} = run_ok("openssl", ["x509", "-req", "-in", F("node", ".csr"), "-CA", F("ca", ".pem"),
                     "-CAkey", F("ca", ".key"), "-set_serial", "1", "-days", "2",
                     "-copy_extensions", "copy", "-out", F("node", ".pem")]),
    Opts = [{certfile, F("node", ".pem")}, {keyfile, F("node", ".key")},
            {cacertfile, F("ca", ".pem")}, {verify, verify_peer}],
    Optfile = F("optfile", ".conf"),
    ok = file:write_file(Optfile, io_lib:format("~tp.~n", [[{server, [{fail_if_no_peer_cert, true} | Opts]},
                                                            {client, Opts ++ tls_client_opts()}]])),
    {DPort, DPid, DNode} = start_tls_daemon(Exe, "ewpcap_tls", Optfile, Ctx),
    %% BENCH_TLS_ERL: another erl for the TLS client node (an OTP 27 root's)
    Erl = ewpcap_bench:env("BENCH_TLS_ERL", os:find_executable("erl")),
    CPort = ewpcap_bench_proc:ns_port(Ctx, CNS, Erl, ["-noshell", "-name", "ewp_bench_clitls@" ++ CAddr,
                                    "-setcookie", Cookie, "+C", "multi_time_warp",
                                    "-proto_dist", "inet_tls", "-ssl_dist_optfile", Optfile,
                                    "-pa", Ebin, "-pa", BEbin,
                                    "-ewpcap", "node", "'ewpcap_tls@" ++ Addr ++ "'",
                                    "-run", "ewpcap_bench", "client"]),
    {ok, <<"hello ", P/binary>>} = ewpcap_bench_proc:wait_line(CPort, "hello ", 30000),
    ewpcap_bench_report:say("bench: TLS ewpcapd ewpcap_tls@~s (os pid ~b), TLS client node (os pid ~s)",
        [Addr, DPid, P]),
    #{daemon_port => DPort, pid => DPid, node => DNode, optfile => Optfile,
      client => #{port => CPort, pid => binary_to_integer(P)}}.

%% BENCH_TLS_CLIENT_OPTS: more ssl options of the TLS client node, an
%% Erlang list, e.g. "[{versions, ['tlsv1.2']}]"
tls_client_opts() ->
    {ok, Toks, _} = erl_scan:string(ewpcap_bench:env("BENCH_TLS_CLIENT_OPTS", "[]") ++ "."),
    {ok, L} = erl_parse:parse_term(Toks),
    true = is_list(L),
    L.

%% A TLS ewpcapd (Exe) named Name@ the capture address: {Port, OsPid, Node}
start_tls_daemon(Exe, Name, Optfile, Ctx) ->
    #{cap_ns := NS, cookie := Cookie, cap_addr := Addr} = Ctx,
    Port = ewpcap_bench_proc:ns_port(Ctx, NS, Exe, ["-name", Name ++ "@" ++ Addr, "-cookie", Cookie, "--stdin",
                                  "--tls-optfile", Optfile]),
    {ok, _} = ewpcap_bench_proc:wait_line(Port, "ready ", 30000),
    {os_pid, Pid} = erlang:port_info(Port, os_pid),
    {Port, Pid, list_to_atom(Name ++ "@" ++ Addr)}.

stop_tls(undefined) ->
    ok;
stop_tls(#{daemon_port := DPort, client := Cli}) ->
    catch client_call(Cli, quit, 2000),
    ewpcap_bench_proc:stop_port(DPort).

run_ok(Cmd, Args) ->
    case ewpcap_bench_proc:run_cmd(Cmd, Args) of
        {ok, _} = Ok -> Ok;
        Other -> erlang:error({Cmd, Args, Other})
    end.

start_peer(Ctx) ->
    #{cookie := Cookie, bench_ebin := BEbin} = Ctx,
    peer:start(#{name => "ewp_bench_tx_" ++ os:getpid(),
                 args => ["-setcookie", Cookie, "-pa", BEbin]}).

%%% ===================================================================
%%% Counters (owners of captures, receivers of the baseline)
%%% ===================================================================

start_counter(OpenFun, Kind) ->
    Parent = self(),
    Pid = spawn_link(fun() ->
                             Res = OpenFun(),
                             Parent ! {self(), opened, Res},
                             case Kind of
                                 count -> count_loop(0, undefined, undefined);
                                 latency -> lat_loop(0, undefined, undefined, [])
                             end
                     end),
    Pid.

counter_handle(Pid) ->
    receive
        {Pid, opened, {ok, S}} -> {ok, S};
        {Pid, opened, none} -> {ok, none};
        {Pid, opened, Other} -> erlang:error({open, Other})
    after 15000 ->
        erlang:error(open_timeout)
    end.

%% Every message is taken in order (no selective receive over a long
%% mailbox): a request is answered once the packets before it are counted.
count_loop(N, F, L) ->
    receive
        {ewpcap, _, _, _, _, _} ->
            T = erlang:monotonic_time(nanosecond),
            count_loop(N + 1, first(F, T), T);
        {ewpcap_batch, _, _, Ps} ->
            T = erlang:monotonic_time(nanosecond),
            count_loop(N + length(Ps), first(F, T), T);
        {get, From} ->
            From ! {self(), count, N, F, L},
            count_loop(N, F, L);
        stop ->
            ok;
        _ ->
            count_loop(N, F, L)
    end.

lat_loop(N, F, L, Lat) ->
    receive
        {ewpcap, _, _, _, _, <<_:42/binary, _Seq:64, Ts:64, _/binary>>} ->
            %% the OS's CLOCK_REALTIME, pktgen's clock: erlang:system_time/1
            %% differs from it by the offset latency/1 records
            %% (clock_offset_ns), which was never subtracted
            Now = os:system_time(nanosecond),
            T = erlang:monotonic_time(nanosecond),
            lat_loop(N + 1, first(F, T), T, [Now - Ts | Lat]);
        {get, From} ->
            From ! {self(), count, N, F, L},
            lat_loop(N, F, L, Lat);
        {latencies, From} ->
            From ! {self(), latencies, Lat},
            lat_loop(N, F, L, Lat);
        stop ->
            ok;
        _ ->
            lat_loop(N, F, L, Lat)
    end.

first(undefined, T) -> T;
first(F, _) -> F.

%% Waits until Sent packets arrived, or none for IdleMs, or MaxMs passed.
wait_done(Counter, Sent, IdleMs, MaxMs) ->
    Deadline = erlang:monotonic_time(millisecond) + MaxMs,
    wait_done(Counter, Sent, IdleMs, Deadline, -1, erlang:monotonic_time(millisecond)).

wait_done(Counter, Sent, IdleMs, Deadline, Prev, Since) ->
    Counter ! {get, self()},
    {N, F, L} = receive {Counter, count, N0, F0, L0} -> {N0, F0, L0}
                after 30000 -> erlang:error(counter_timeout)
                end,
    Now = erlang:monotonic_time(millisecond),
    Since1 = case N of Prev -> Since; _ -> Now end,
    if
        N >= Sent; Now - Since1 >= IdleMs; Now >= Deadline ->
            #{received => N, first => F, last => L};
        true ->
            timer:sleep(50),
            wait_done(Counter, Sent, IdleMs, Deadline, N, Since1)
    end.

counter_latencies(Counter) ->
    Counter ! {latencies, self()},
    receive {Counter, latencies, Lat} -> Lat after 30000 -> [] end.

stop_counter(Counter) ->
    unlink(Counter),
    Counter ! stop,
    ok.

%% pcap stats and ewpcapd's counters of a handle, then close it.
finish_handle(Node, #ewpcap_resource{ref = Ref} = S) ->
    {ok, #ewpcap_stat{recv = Recv, drop = Drop, ifdrop = IfDrop}} = ewpcap:stats(S),
    {ok, Info} = ewpcap:info(Node),
    [H] = [H || H <- proplists:get_value(handles, Info), proplists:get_value(ref, H) =:= Ref],
    ok = ewpcap:close(S),
    #{recv => Recv, drop => Drop, ifdrop => IfDrop,
      daemon_drops => proplists:get_value(drops, H),
      daemon_packets => proplists:get_value(packets, H)}.

%%% ===================================================================
%%% The client node (runs in the client namespace)
%%% ===================================================================

%% Reads one term per line from standard input, answers "reply Term".
client() ->
    _ = application:load(ewpcap),
    {ok, Daemon} = application:get_env(ewpcap, node),
    connect(Daemon, 100),
    io:format("hello ~s~n", [os:getpid()]),
    client_loop(Daemon, undefined).

connect(Daemon, 0) ->
    io:format("cannot reach ~p~n", [Daemon]),
    erlang:halt(1);
connect(Daemon, Tries) ->
    case net_adm:ping(Daemon) of
        pong -> ok;
        pang -> timer:sleep(100), connect(Daemon, Tries - 1)
    end.

client_loop(Daemon, State) ->
    case io:get_line("") of
        eof ->
            erlang:halt(0);
        Line ->
            {ok, Toks, _} = erl_scan:string(Line),
            {ok, Cmd} = erl_parse:parse_term(Toks),
            {Reply, State1} =
                try
                    client_cmd(Cmd, Daemon, State)
                catch
                    C:R -> {{failed, lists:flatten(io_lib:format("~p:~p", [C, R]))}, State}
                end,
            io:format("reply ~w~n", [Reply]),
            client_loop(Daemon, State1)
    end.

client_cmd({open, Dev, Opts}, Daemon, undefined) ->
    client_cmd({open, Daemon, Dev, Opts}, Daemon, undefined);
client_cmd({open, Node, Dev, Opts}, _, undefined) ->
    Counter = start_counter(fun() -> ewpcap:open(Node, Dev, Opts) end, count),
    {ok, S} = counter_handle(Counter),
    {ok, {Counter, S, Node}};
client_cmd({wait, Sent, IdleMs, MaxMs}, _, {Counter, _, _} = State) ->
    {maps:to_list(wait_done(Counter, Sent, IdleMs, MaxMs)), State};
client_cmd(finish, _, {Counter, S, Node}) ->
    Fin = finish_handle(Node, S),
    stop_counter(Counter),
    {maps:to_list(Fin), undefined};
client_cmd({dist_buffer, Value}, Daemon, undefined) ->
    {ewpcap_bench_dist:set(Daemon, Value), undefined};
client_cmd(quit, _, _) ->
    erlang:halt(0).
