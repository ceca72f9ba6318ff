%%% @doc A large receive buffer on the distribution connection to each
%%% ewpcapd this node talks to, and on no other connection.
%%%
%%% Packets arrive as distribution messages, one per packet by default.
%%% inet_drv reads a connection through a user-space buffer of about one
%%% MTU (its default `buffer'), so the receiving node makes one read per
%%% message or two at 1000 B: that, not ewpcapd, is most of the CPU a
%%% packet costs (see the README, Performance). A larger buffer reads many
%%% messages at once.
%%%
%%% The buffer is set with `net_kernel:setopts(Node, Opts)', which goes to
%%% the connection's own distribution module, so it works over
%%% `inet_tcp_dist' and `inet6_tcp_dist' (an inet port) and over
%%% `inet_tls_dist' (`ssl:setopts/2' on the TLS connection's TCP socket,
%%% read by the TLS receiver process). A distribution module that refuses
%%% the options is logged once per connection and left alone. Options are
%%% only ever raised: a connection that already has a buffer as large (say
%%% from `-kernel inet_dist_connect_options') is not touched. The node's
%%% other connections are never touched.
%%%
%%% When:
%%% <ul>
%%% <li>ensure/1, when the library has talked to a daemon (the embedded
%%%     daemon once it answers its ping, a handle's guard once its open
%%%     succeeded, any other call that reached a daemon): before the first
%%%     packet of a handle can matter;</li>
%%% <li>on `nodeup' of a daemon node this server has seen, so a connection
%%%     that drops and comes back (by a ping, an rpc, anything) is set
%%%     again at once.</li>
%%% </ul>
%%% This server runs under ewpcap_sup. Without it (open/3 before the
%%% application is started), ensure/1 sets the options in the caller, each
%%% time.
%%%
%%% Application environment: `{dist_buffer, Bytes | false}' (default
%%% 1048576): the `buffer' and `recbuf' of each daemon connection;
%%% `false' turns this off. Linux caps `recbuf' at
%%% `net.core.rmem_max' (and fixes it from then on, where it would
%%% otherwise grow by itself up to `net.ipv4.tcp_rmem'): the user-space
%%% buffer is what saves the CPU.
%%% @end
-module(ewpcap_distbuf).

-behaviour(gen_server).

-export([start_link/0, ensure/1, setting/0]).

-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(DEFAULT, 1048576).
-define(UP_WAIT, 2000). % ms: longest wait for net_kernel to mark a connection up
-define(UP_POLL, 5).    % ms between two asks

-record(state, {
    daemons = #{} :: #{node() => term()}  % daemon node => controller tuned (or none)
}).

%%% ===================================================================
%%% API
%%% ===================================================================

%% @doc Starts the server, registered as `ewpcap_distbuf'.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Sets the buffers on the connection to the daemon `Node' (unless
%% they are set already on this connection) and remembers `Node' as a
%% daemon, to set them again on its next `nodeup'. `ok' also when there is
%% nothing to do: the setting is `false', `Node' is this node, there is no
%% connection; a failure to set them is logged, never returned.
-spec ensure(node()) -> ok.
ensure(Node) when Node =:= node() ->
    ok;
ensure(Node) ->
    case whereis(?MODULE) of
        undefined ->
            _ = tune_up(Node, controller(Node)),
            ok;
        Pid ->
            try
                gen_server:call(Pid, {ensure, Node}, infinity)
            catch
                exit:_ -> ok
            end
    end.

%% @doc The buffer size the application environment asks for (`dist_buffer'),
%% or `false'. A value that is neither a positive integer nor `false' is
%% logged and counts as `false'.
-spec setting() -> pos_integer() | false.
setting() ->
    case application:get_env(ewpcap, dist_buffer, ?DEFAULT) of
        N when is_integer(N), N > 0 ->
            N;
        false ->
            false;
        Other ->
            logger:warning("ewpcap: dist_buffer ~tp is neither a positive integer nor false: "
                           "not set", [Other]),
            false
    end.

%%% ===================================================================
%%% gen_server callbacks
%%% ===================================================================

%% @private
-spec init([]) -> {ok, #state{}}.
init([]) ->
    ok = net_kernel:monitor_nodes(true, [{node_type, all}]),
    Daemons =
        case application:get_env(ewpcap, node) of
            {ok, Node} when is_atom(Node) -> #{Node => none};
            _ -> #{}
        end,
    {ok, retune(#state{daemons = Daemons})}.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, ok, #state{}}.
handle_call({ensure, Node}, _From, #state{daemons = Daemons} = State) ->
    Done = maps:get(Node, Daemons, none),
    Ctrl = controller(Node),
    Tuned =
        case Ctrl of
            Done when Done =/= none -> Done;
            none -> none;
            _ -> tuned(Node, Ctrl)
        end,
    {reply, ok, State#state{daemons = Daemons#{Node => Tuned}}};
handle_call(_Request, _From, State) ->
    {reply, ok, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({nodeup, Node, _Info}, #state{daemons = Daemons} = State) when
    is_map_key(Node, Daemons)
->
    {noreply, State#state{daemons = Daemons#{Node => tuned(Node, controller(Node))}}};
handle_info({nodedown, Node, _Info}, #state{daemons = Daemons} = State) when
    is_map_key(Node, Daemons)
->
    {noreply, State#state{daemons = Daemons#{Node => none}}};
handle_info(_Info, State) ->
    {noreply, State}.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

%% At start: the daemons already connected (the configured node).
retune(#state{daemons = Daemons} = State) ->
    State#state{daemons = maps:map(fun(Node, _) -> tuned(Node, controller(Node)) end, Daemons)}.

%% The controller tuned: Ctrl once set (or refused: not retried on this
%% connection), none when there was no connection.
tuned(_Node, none) ->
    none;
tuned(Node, Ctrl) ->
    case tune_up(Node, Ctrl) of
        noconnection -> none;
        _ -> Ctrl
    end.

%% tune/2 on the connection Ctrl. The runtime announces a connection
%% (nodeup, and a send that connected returns) a moment before net_kernel
%% marks it up, and net_kernel:getopts/2 says noconnection until then:
%% while Ctrl is still the connection's controller, ask again, for at most
%% ?UP_WAIT ms.
tune_up(_Node, none) ->
    noconnection;
tune_up(Node, Ctrl) ->
    tune_up(Node, Ctrl, erlang:monotonic_time(millisecond) + ?UP_WAIT).

tune_up(Node, Ctrl, Deadline) ->
    case tune(Node, setting()) of
        noconnection ->
            case controller(Node) =:= Ctrl andalso
                erlang:monotonic_time(millisecond) < Deadline of
                true ->
                    timer:sleep(?UP_POLL),
                    tune_up(Node, Ctrl, Deadline);
                false ->
                    noconnection
            end;
        Result ->
            Result
    end.

%% The connection's controller (an inet port, or the TLS sender's pid):
%% what tells one connection to Node from the next.
controller(Node) ->
    case lists:keyfind(Node, 1, erlang:system_info(dist_ctrl)) of
        {Node, Ctrl} -> Ctrl;
        false -> none
    end.

%% Raises buffer and recbuf to N where they are smaller.
tune(_Node, false) ->
    ok;
tune(Node, N) ->
    case net_kernel:getopts(Node, [buffer, recbuf]) of
        {ok, Opts} ->
            case [{K, N} || {K, V} <- Opts, is_integer(V), V < N] of
                [] -> ok;
                Set -> set(Node, Set)
            end;
        {error, noconnection} ->
            noconnection;
        Other ->
            refused(Node, getopts, Other)
    end.

set(Node, Opts) ->
    case net_kernel:setopts(Node, Opts) of
        ok -> ok;
        {error, noconnection} -> noconnection;
        Other -> refused(Node, Opts, Other)
    end.

refused(Node, What, Reply) ->
    logger:notice("ewpcap: distribution buffer of the connection to ~p not set "
                  "(~tp: ~tp)", [Node, What, Reply]),
    refused.
