%%% @doc The embedded ewpcapd: one C-node started and watched by the
%%% ewpcap application.
%%%
%%% ewpcap_sup starts this server unless the application environment
%%% variable `node' names a daemon to use instead. It:
%%% <ol>
%%% <li>makes the local node distributed when it is not
%%%     (`node() =:= nonode@nohost'): it starts epmd (`epmd -daemon', found
%%%     in `PATH' or in the Erlang installation) and then the distribution
%%%     with `net_kernel:start([ewpcap_client_<OsPid>_<Random>, shortnames])'.
%%%     The node stays distributed after the application stops; its cookie is
%%%     the usual one (`~/.erlang.cookie', created when missing);</li>
%%% <li>runs `priv/ewpcapd -sname ewpcapd_<OsPid>_<N>@<Host> --stdin' (with
%%%     `-name' when the local node uses long names), where `OsPid' is the
%%%     emulator's OS pid, `N' a number unique in this emulator, so that a
%%%     restarted daemon has a new name, and `Host' the host part of the
%%%     local node's name. The cookie is passed in the environment variable
%%%     `EWPCAPD_COOKIE';</li>
%%% <li>when the local node runs TLS distribution (`-proto_dist inet_tls'
%%%     or `inet6_tls'), passes the node's own server options to the
%%%     daemon as `--tls-*' flags (tls_args/0): the daemon then speaks TLS
%%%     only, with the node's certificate, so that this node (and any node
%%%     it trusts) reaches it. Over `inet6_tcp' the daemon listens on the
%%%     host's IPv6 address (listen_args/1);</li>
%%% <li>waits up to 10 seconds for the daemon's line `ready <Node>' on
%%%     its standard output (other lines are logged), pings the node and
%%%     monitors it.</li>
%%% </ol>
%%% When the daemon exits or its node goes down the server stops with
%%% `{shutdown, {ewpcapd_exit, Status}}' or `{shutdown, nodedown}' and the
%%% supervisor starts a fresh daemon under a new name (handles of the old
%%% one are gone; their owners got `{ewpcap_error, Ref, nodedown}'). When
%%% the server stops it closes the daemon's standard input, and the daemon
%%% exits.
%%%
%%% Application environment:
%%% <ul>
%%% <li>`{ewpcapd, Path}': the daemon executable. When unset, the
%%%     environment variable `EWPCAPD' (when set and not empty), else
%%%     `ewpcapd' in the application's `priv' directory (see executable/0).</li>
%%% </ul>
%%% @end
-module(ewpcap_daemon).

-behaviour(gen_server).

-export([start_link/0, daemon_node/0, executable/0, tls_args/0, tls_flags/1]).

-export([
    init/1,
    handle_call/3,
    handle_cast/2,
    handle_info/2,
    terminate/2
]).

-define(READY_TIMEOUT, 10000).

-record(state, {
    port :: port(),       % the daemon's stdin/stdout
    node :: node(),       % its node name
    os_pid :: integer() | undefined % its OS pid, for the logs
}).

%%% ===================================================================
%%% API
%%% ===================================================================

%% @doc Starts the daemon and the server that watches it, registered as
%% `ewpcap_daemon'. Returns once the daemon answers a ping, or
%% `{error, Reason}': `{ewpcapd, {enoent, Path}}' when the executable is
%% missing, `{ewpcapd, timeout}' when it did not say it was ready in 10
%% seconds, `{ewpcapd_exit, Status}' when it exited first,
%% `{ewpcapd, pang}' when it did not answer, `{distribution, Reason}' when
%% the local node could not be made distributed.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc The node name of the running embedded daemon. Exits (as
%% gen_server:call/3) when the server is not running.
-spec daemon_node() -> node().
daemon_node() ->
    gen_server:call(?MODULE, node, infinity).

%%% ===================================================================
%%% gen_server callbacks
%%% ===================================================================

%% @private
-spec init([]) ->
    {ok, #state{}}
    | {stop,
        {distribution, term()}
        | {ewpcapd, pang | timeout | {enoent, file:filename_all()}}
        | {ewpcapd_exit, term()}}.
init([]) ->
    process_flag(trap_exit, true),
    case distribution() of
        ok -> start_daemon();
        {error, Reason} -> {stop, {distribution, Reason}}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) ->
    {reply, node() | {error, unknown_request}, #state{}}.
handle_call(node, _From, #state{node = Node} = State) ->
    {reply, Node, State};
handle_call(Request, _From, State) ->
    logger:warning("ewpcap_daemon: unknown call ~tp", [Request]),
    {reply, {error, unknown_request}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(Msg, State) ->
    logger:warning("ewpcap_daemon: unknown cast ~tp", [Msg]),
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) ->
    {noreply, #state{}} | {stop, {shutdown, term()}, #state{}}.
handle_info({Port, {exit_status, Status}}, #state{port = Port} = State) ->
    logger:error("ewpcapd ~p (os pid ~p) exited with status ~p",
                 [State#state.node, State#state.os_pid, Status]),
    {stop, {shutdown, {ewpcapd_exit, Status}}, State};
handle_info({nodedown, Node}, #state{node = Node} = State) ->
    logger:error("ewpcapd ~p (os pid ~p): node down",
                 [Node, State#state.os_pid]),
    {stop, {shutdown, nodedown}, State};
handle_info({Port, {data, Data}}, #state{port = Port} = State) ->
    log_output(atom_to_list(State#state.node), Data),
    {noreply, State};
handle_info({'EXIT', Port, normal}, #state{port = Port} = State) ->
    % follows exit_status
    {noreply, State};
handle_info(Info, State) ->
    logger:warning("ewpcap_daemon: unexpected message ~tp", [Info]),
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{port = Port}) ->
    % ewpcapd started with --stdin exits when its standard input closes
    try
        port_close(Port)
    catch
        error:badarg -> ok
    end,
    ok.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

%% Make the local node distributed (ewpcap_dist starts epmd first).
distribution() ->
    case erlang:node() of
        nonode@nohost ->
            case ewpcap_dist:ensure("ewpcap_client", shortnames) of
                ok ->
                    logger:notice("ewpcap: started distribution as ~p", [erlang:node()]),
                    ok;
                {error, _} = Error ->
                    Error
            end;
        _ ->
            ok
    end.

start_daemon() ->
    Exe = executable(),
    case filelib:is_regular(Exe) of
        true -> start_daemon(Exe);
        false -> {stop, {ewpcapd, {enoent, Exe}}}
    end.

%% The embedded daemon runs as the same user as this node: it may read and
%% write savefiles wherever that user may (app env `files', default "/").
files_args() ->
    case application:get_env(ewpcap, files, "/") of
        none -> [];
        Dir -> ["--files", Dir]
    end.

%% The embedded daemon serves this node only, never every interface: it
%% listens on the one address its node name's host resolves to, the
%% address this node connects to. That is loopback where the host name
%% maps to 127.0.0.1 or 127.0.1.1 (Debian's /etc/hosts); where it
%% resolves to a network address, only that address (see README).
%% Over `inet6_tcp'/`inet6_tls' the node connects over IPv6: the address
%% is the host's IPv6 one (`::1' for loopback).
listen_args(Host) ->
    Protos = case init:get_argument(proto_dist) of
                 {ok, Ps} -> lists:append(Ps);
                 error -> []
             end,
    {Family, Loopback} =
        case lists:member("inet6_tcp", Protos) orelse lists:member("inet6_tls", Protos) of
            true -> {inet6, {0, 0, 0, 0, 0, 0, 0, 1}};
            false -> {inet, {127, 0, 0, 1}}
        end,
    Addr = case inet:getaddr(Host, Family) of
               {ok, A} -> A;
               {error, _} -> Loopback
           end,
    ["--listen", inet:ntoa(Addr)].

start_daemon(Exe) ->
    [_, Host] = string:split(atom_to_list(erlang:node()), "@"),
    {NameFlag, Name} = daemon_name(Host),
    Port = open_port(
        {spawn_executable, Exe},
        [
            {args, [NameFlag, Name, "--stdin" | listen_args(Host) ++ files_args() ++ tls_args()]},
            {env, [{"EWPCAPD_COOKIE", atom_to_list(erlang:get_cookie())}]},
            {line, 1024},
            use_stdio,
            exit_status,
            binary
        ]
    ),
    OsPid =
        case erlang:port_info(Port, os_pid) of
            {os_pid, P} -> P;
            undefined -> undefined
        end,
    Deadline = erlang:monotonic_time(millisecond) + ?READY_TIMEOUT,
    case wait_ready(Port, Name, Deadline) of
        {ok, Node} ->
            case net_adm:ping(Node) of
                pong ->
                    true = erlang:monitor_node(Node, true),
                    ok = ewpcap_distbuf:ensure(Node),
                    logger:info("ewpcapd ~p (os pid ~p) ready", [Node, OsPid]),
                    {ok, #state{port = Port, node = Node, os_pid = OsPid}};
                pang ->
                    stop_port(Port),
                    {stop, {ewpcapd, pang}}
            end;
        {error, Reason} ->
            stop_port(Port),
            {stop, Reason}
    end.

%% @doc The daemon executable the embedded daemon runs: the application
%% environment `ewpcapd', else `$EWPCAPD' (not empty), else
%% `priv/ewpcapd'. `$EWPCAPD' reaches every node started from this one's
%% environment: `make ct-asan' sets it to test/sanitize/ewpcapd-asan, and
%% the test helpers that start daemons themselves run this path too.
-spec executable() -> file:filename().
executable() ->
    case application:get_env(ewpcap, ewpcapd) of
        {ok, Path} when is_list(Path); is_binary(Path) ->
            unicode:characters_to_list(Path);
        _ ->
            case os:getenv("EWPCAPD") of
                Env when Env =:= false; Env =:= "" ->
                    filename:join(priv_dir(), "ewpcapd");
                Env ->
                    Env
            end
    end.

%% code:priv_dir/1 only finds an application whose directory is named
%% ewpcap or ewpcap-Vsn; else use the directory next to our ebin.
priv_dir() ->
    case code:priv_dir(ewpcap) of
        {error, bad_name} ->
            Ebin = filename:dirname(code:which(?MODULE)),
            filename:join(filename:dirname(Ebin), "priv");
        Dir ->
            Dir
    end.

daemon_name(Host) ->
    Alive = "ewpcapd_" ++ os:getpid() ++ "_" ++
        integer_to_list(erlang:unique_integer([positive])),
    Flag =
        case ewpcap_dist:long_names(Host) of
            true -> "-name";
            false -> "-sname"
        end,
    {Flag, Alive ++ "@" ++ Host}.

wait_ready(Port, Name, Deadline) ->
    Timeout = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {eol, <<"ready ", Node/binary>>}}} ->
            case binary_to_list(Node) of
                Name ->
                    ok;
                Other ->
                    logger:warning("ewpcapd: asked for ~ts, registered as ~ts",
                                   [Name, Other])
            end,
            {ok, binary_to_atom(Node, utf8)};
        {Port, {data, Data}} ->
            log_output(Name, Data),
            wait_ready(Port, Name, Deadline);
        {Port, {exit_status, Status}} ->
            {error, {ewpcapd_exit, Status}}
    after Timeout ->
        {error, {ewpcapd, timeout}}
    end.

log_output(Name, {eol, Line}) ->
    logger:notice("ewpcapd ~ts: ~ts", [Name, Line]);
log_output(Name, {noeol, Line}) ->
    logger:notice("ewpcapd ~ts: ~ts...", [Name, Line]).

stop_port(Port) ->
    try
        port_close(Port)
    catch
        error:badarg -> ok
    end,
    receive
        {'EXIT', Port, _} -> ok
    after 0 -> ok
    end,
    ok.

%%% ---- TLS distribution (issue 11, begin) ----------------------------

%% @doc The `--tls-*' flags that make ewpcapd accept what this node's own
%% TLS distribution accepts: [] unless the node runs `inet_tls' or
%% `inet6_tls'. The server options are the ones the node uses: those
%% `ssl' read from `-ssl_dist_optfile' (its table `ssl_dist_opts'), else
%% the `-ssl_dist_opt server_*' flags.
-spec tls_args() -> [string()].
tls_args() ->
    Protos = case init:get_argument(proto_dist) of
                 {ok, Ps} -> lists:append(Ps);
                 error -> []
             end,
    case [P || P <- Protos, lists:member(P, ["inet_tls", "inet6_tls"])] of
        [] -> [];
        _ -> tls_flags(tls_server_opts())
    end.

tls_server_opts() ->
    try ets:lookup(ssl_dist_opts, server) of
        [{server, Opts}] -> Opts;
        [] -> tls_opt_flags()
    catch
        error:badarg -> tls_opt_flags()
    end.

%% -ssl_dist_opt server_certfile F server_keyfile K ...: pairs
tls_opt_flags() ->
    case init:get_argument(ssl_dist_opt) of
        {ok, Args} -> tls_pairs(lists:append(Args));
        error -> []
    end.

tls_pairs(["server_" ++ Key, Value | Rest]) ->
    V = case Key of
            "verify" -> list_to_atom(Value);
            "fail_if_no_peer_cert" -> list_to_atom(Value);
            _ -> Value
        end,
    [{list_to_atom(Key), V} | tls_pairs(Rest)];
tls_pairs([_, _ | Rest]) ->
    tls_pairs(Rest);
tls_pairs(_) ->
    [].

%% @doc ssl server options as ewpcapd flags (file names made absolute);
%% options ewpcapd has no flag for are logged and left out.
-spec tls_flags([{atom(), term()}]) -> [string()].
tls_flags(Opts) ->
    lists:append([tls_flag(K, V) || {K, V} <- Opts]).

tls_flag(certfile, F) -> ["--tls-cert", tls_path(F)];
tls_flag(keyfile, F) -> ["--tls-key", tls_path(F)];
tls_flag(cacertfile, F) -> ["--tls-cacert", tls_path(F)];
tls_flag(verify, verify_peer) -> ["--tls-verify", "peer"];
tls_flag(verify, verify_none) -> ["--tls-verify", "none"];
tls_flag(fail_if_no_peer_cert, true) -> ["--tls-fail-if-no-peer-cert"];
tls_flag(fail_if_no_peer_cert, false) -> [];
tls_flag(Key, _) ->
    logger:notice("ewpcap: TLS server option ~p not passed to ewpcapd", [Key]),
    [].

tls_path(F) ->
    filename:absname(unicode:characters_to_list(F)).

%%% ---- TLS distribution (issue 11, end) ------------------------------
