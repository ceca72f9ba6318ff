%%% @doc The local side of a capture handle: the calls to its daemon,
%%% its guard process and its state. Internal to ewpcap (see the module
%%% documentation of ewpcap for the guard's job and the call's bound).
%%%
%%% A socket made here is `#ewpcap_resource{ref = Ref, res = {Node, Guard,
%%% State}}': `State' is an atomics array shared by every copy of the
%%% socket on this node (it is garbage collected with the last one), so
%%% close/1 knows whether close/1 came before, read/1,2 whether the handle
%%% can still deliver (eof, daemon lost), and stats/1 and filter/2,3
%%% whether there is a relay to wait for.
%%% @end
-module(ewpcap_handle).

-include("ewpcap.hrl").

-export([open/3, close/4, read/3, call/2, reply/1, synced/2]).

%% The handle's state, in the first atomic of its socket.
-define(ST_OPEN, 0).      % open, as far as this node knows
-define(ST_CLOSED, 1).    % close/1 was called (or ewpcapd closed it for another process)
-define(ST_EOF, 2).       % read/1,2 returned {error, eof}
-define(ST_NODEDOWN, 3).  % the daemon was lost
%% The second atomic: 1 once the guard was told {ewpcap_closed, Ref}.
-define(TOLD_CLOSED, 2).
%% The third: 1 when the guard relays the packets (see guard/6).
-define(RELAYED, 3).

-define(CLOSE_WAIT, 5000).

%% Packets per batch between ewpcapd and a handle's relay (see guard/6).
-define(RELAY_BATCH, 64).

%%% ===================================================================
%%% API
%%% ===================================================================

%% @doc Opens a handle through a guard (see guard/6): `{ok, Socket}' or the
%% daemon's error, with ewpcapd's `badarg'/`ebadf' raised as `badarg'.
-spec open(node(), binary() | {file, binary()}, [ewpcap:open_option()]) ->
    {ok, ewpcap:socket()} | {error, ewpcap:reason()}.
open(Node, Dev, Options) ->
    open_handle(Node, Dev, Options).

%% @doc Closes: `ok', or `badarg' for the second close/1 of a socket (or,
%% without a usable `State', a handle the daemon does not know).
-spec close(node(), pid(), reference(), atomics:atomics_ref() | none) -> ok | badarg.
close(Node, Guard, Ref, State) ->
    case set_state(State, ?ST_CLOSED) of
        ?ST_CLOSED ->
            badarg;
        unknown ->
            % no state, or the atomic of another node: the daemon decides
            close_handle(Node, Guard, Ref);
        _ ->
            Reply = call(Node, {close, Ref}),
            stop_guard(Node, Guard, Ref),
            % ebadf: closed already. By a close made for another process
            % (an rpc close: the guard, ended now, was told so first on
            % the same connection), this one is the second close; else by
            % the owner's exit or a daemon lost, and this is the first.
            case Reply =:= {error, ebadf} andalso told_closed(State) of
                true -> badarg;
                false -> ok
            end
    end.

%% @doc The next packet of the handle in the caller's mailbox (see
%% ewpcap:read/2).
-spec read(reference(), tuple(), timeout()) -> {ok, binary()} | {error, ewpcap:reason()}.
read(Ref, Res, Timeout) ->
    State = res_state(Res),
    case get_state(State) of
        ?ST_EOF -> read_done(State, Ref, eof);
        ?ST_NODEDOWN -> read_done(State, Ref, nodedown);
        _ -> read_mailbox(State, Ref, Timeout)
    end.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

%% @doc A call to the daemon; a lost or impossible connection is
%% {error, nodedown}, a node without ewpcapd {error, {no_ewpcapd, Node}}.
%% gen_server:call/3 monitors the daemon's registered name: the call ends
%% when the connection is lost, so without a timeout it still waits at
%% most for the distribution's tick (see the module documentation).
-spec call(node(), term()) -> term().
call(Node, Request) ->
    case is_alive() orelse Node =:= erlang:node() of
        false ->
            {error, not_distributed};
        true ->
            case ewpcap_dist:check_name(Node) of
                ok -> call_node(Node, Request);
                {error, _} = Error -> Error
            end
    end.

call_node(Node, Request) ->
    try gen_server:call({ewpcap, Node}, Request, infinity) of
        Reply ->
            % the connection is up: its receive buffer (ewpcap_distbuf)
            ok = ewpcap_distbuf:ensure(Node),
            Reply
    catch
        exit:{{nodedown, _}, _} -> {error, nodedown};
        exit:{noconnection, _} -> {error, nodedown};
        exit:{noproc, _} -> {error, {no_ewpcapd, Node}}
    end.

%% @doc Reply, once the handle's guard has handed the owner everything
%% ewpcapd sent it before Reply (a relayed handle's packets, see guard/6):
%% as without the relay, what was captured before a stats/1 or filter/3
%% answer is in the owner's mailbox when the call returns. The guard works
%% through its mailbox in order, and ewpcapd's messages to it came before
%% the reply, so its answer to a sync comes after them. Nothing to wait
%% for when the handle is not relayed (ewpcapd's packets and its reply
%% come to the owner in order on one connection), or the guard is on
%% another node (rpc) or gone.
-spec synced(tuple(), term()) -> term().
synced(Res, Reply) ->
    case Res of
        {_Node, Guard, State} when is_pid(Guard), node(Guard) =:= node() ->
            case relayed(State) of
                true -> sync(Guard);
                false -> ok
            end;
        {_Node, Guard} when is_pid(Guard), node(Guard) =:= node() -> sync(Guard);
        _ -> ok
    end,
    Reply.

sync(Guard) ->
    MRef = erlang:monitor(process, Guard),
    Guard ! {sync, self(), MRef},
    receive
        {MRef, synced} -> erlang:demonitor(MRef, [flush]);
        {'DOWN', MRef, process, Guard, _} -> ok
    end.

%% @doc ebadf (closed handle) and badarg (a request the daemon refused)
%% are programmer errors: raises `badarg'; any other reply is returned.
-spec reply(term()) -> term().
reply({error, ebadf}) -> erlang:error(badarg);
reply({error, badarg}) -> erlang:error(badarg);
reply(Reply) -> Reply.

%% Spawns the guard, which makes the open call, and waits for its answer
%% (or its end: its call is bounded as every call is, see call/2).
open_handle(Node, Dev, Options) ->
    Owner = self(),
    Tag = make_ref(),
    State = atomics:new(3, [{signed, false}]),
    {Guard, MRef} =
        spawn_monitor(fun() -> guard(Owner, Tag, Node, Dev, Options, State) end),
    receive
        {Tag, {ok, Ref}} ->
            erlang:demonitor(MRef, [flush]),
            {ok, #ewpcap_resource{ref = Ref, res = {Node, Guard, State}}};
        {Tag, Reply} ->
            erlang:demonitor(MRef, [flush]),
            reply(Reply);
        {'DOWN', MRef, process, Guard, Reason} ->
            exit(Reason)
    end.

%% A socket without a usable state: the daemon's answer decides.
close_handle(Node, Guard, Ref) ->
    case call(Node, {close, Ref}) of
        ok -> stop_guard(Node, Guard, Ref);
        {error, nodedown} -> stop_guard(Node, Guard, Ref);
        _ -> badarg
    end.

%% The state atomic of a socket: a socket opened through rpc has none, a
%% socket from another node one that cannot be used here.
res_state({_Node, _Guard, State}) -> State;
res_state(_) -> none.

get_state(State) ->
    atomic(State, fun(A) -> atomics:get(A, 1) end, unknown).

%% Sets the state and returns the one before.
set_state(State, New) ->
    atomic(State, fun(A) -> atomics:exchange(A, 1, New) end, unknown).

%% The guard was told {ewpcap_closed, Ref} (see close/4).
-spec told(atomics:atomics_ref()) -> ok.
told(State) ->
    atomic(State, fun(A) -> atomics:put(A, ?TOLD_CLOSED, 1) end, ok).

told_closed(State) ->
    atomic(State, fun(A) -> atomics:get(A, ?TOLD_CLOSED) =:= 1 end, false).

%% The guard relays: set before the owner has the socket. Unknown (an
%% array without it): a sync, which is always right.
relaying(State) ->
    atomic(State, fun(A) -> atomics:put(A, ?RELAYED, 1) end, ok).

relayed(State) ->
    atomic(State, fun(A) -> atomics:get(A, ?RELAYED) =:= 1 end, true).

%% eof and nodedown are kept unless close/1 came first.
-spec mark(atomics:atomics_ref() | none, non_neg_integer()) -> ok.
mark(State, New) ->
    atomic(State, fun(A) -> _ = atomics:compare_exchange(A, 1, ?ST_OPEN, New), ok end, ok).

%% Fun on the socket's atomics, or Default where they cannot be used: a
%% socket without them (`none': opened through rpc), or another node's.
atomic(none, _Fun, Default) ->
    Default;
atomic(State, Fun, Default) ->
    try
        Fun(State)
    catch
        error:badarg -> Default
    end.

read_mailbox(State, Ref, Timeout) ->
    receive
        {ewpcap, Ref, _DatalinkType, _Time, _Length, Packet} ->
            {ok, Packet};
        {ewpcap_batch, Ref, _DatalinkType, [{_Time, _Length, Packet} | Rest]} ->
            Rest =/= [] andalso put({ewpcap_batch, Ref}, Rest),
            {ok, Packet};
        {ewpcap_error, Ref, nodedown} ->
            mark(State, ?ST_NODEDOWN),
            {error, nodedown};
        {ewpcap_error, Ref, Reason} ->
            {error, Reason};
        {ewpcap_eof, Ref} ->
            mark(State, ?ST_EOF),
            {error, eof}
    after Timeout ->
        {error, eagain}
    end.

%% No packet can come any more: what is in the mailbox, then Reason.
read_done(State, Ref, Reason) ->
    case read_mailbox(State, Ref, 0) of
        {error, eagain} -> {error, Reason};
        Result -> Result
    end.

stop_guard(Node, Guard, _Ref) when node(Guard) =:= Node ->
    %% a handle opened through rpc: "Guard" is the handle's pid on the
    %% daemon node, and the close call has already ended it
    ok;
stop_guard(_Node, Guard, Ref) ->
    %% here or on the node of an owner that passed the socket on: the
    %% guard hands over what it has and ends (a guard left would tell its
    %% owner nodedown for a closed handle when the connection drops)
    MRef = erlang:monitor(process, Guard),
    Guard ! {close, Ref},
    receive
        {'DOWN', MRef, process, Guard, _} -> ok
    after ?CLOSE_WAIT ->
        erlang:demonitor(MRef, [flush]),
        ok
    end.

%%% -------------------------------------------------------------------
%%% The guard process
%%% -------------------------------------------------------------------

%% ewpcapd links the handle to the process that makes the open call: that
%% is the guard, so that the owner is never killed by a link it did not
%% ask for. The guard monitors the owner first, so an owner that exits
%% during the call still closes the handle.
%%
%% The relay (see relay/2): a handle that delivers one packet per message
%% is opened with `{batch, ?RELAY_BATCH}' and the guard as the receiver;
%% the guard hands the owner each packet of a batch as its own
%% `{ewpcap, ...}' message, in order, and passes every other message of
%% the daemon on as it came. Everything the daemon sent before a reply is
%% in the guard's mailbox before that reply reaches the owner, and the
%% guard works through its mailbox in order before it ends (close/1 waits
%% for that), so the owner sees the same messages in the same order as
%% without it.
guard(Owner, Tag, Node, Dev, Options, State) ->
    process_flag(trap_exit, true),
    OwnerMRef = erlang:monitor(process, Owner),
    % (the message queue stays on the heap: off_heap may let signals of
    % different senders be taken in another order than they were sent,
    % and the relay's order rests on ewpcapd's batches being ahead of a
    % close or sync that follows a reply)
    {To, Sent} = relay(Options, Owner),
    {Relayed, Reply} =
        case open_call(Node, Dev, Sent, Owner) of
            {error, badarg} when To =/= Owner ->
                % an ewpcapd from before the relay refuses {relay, Pid}:
                % the handle goes without (its options were checked here)
                logger:notice("ewpcap: ~p does not relay: its packets go to the owner", [Node]),
                {Owner, Plain} = relay([{relay, false} | Options], Owner),
                {false, open_call(Node, Dev, Plain, Owner)};
            Other ->
                {To =/= Owner, Other}
        end,
    case Reply of
        {ok, Ref} when is_reference(Ref) ->
            ok = case Relayed of
                     true -> relaying(State);
                     false -> ok
                 end,
            Owner ! {Tag, Reply},
            true = erlang:monitor_node(Node, true),
            guard_loop(Owner, OwnerMRef, Node, Ref, State);
        _ ->
            Owner ! {Tag, Reply}
    end.

open_call(Node, Dev, Sent, Owner) ->
    Request =
        case Dev of
            {file, Path} -> {open_file, Path, Sent, Owner};
            _ -> {open, Dev, Sent, Owner}
        end,
    call(Node, Request).

%% Who the daemon sends the packets to, and the options it gets: the
%% guard (`{relay, self()}', the owner staying the owner in the daemon's
%% info) with a batch when the relay applies, else the owner; the caller's
%% `{relay, Bool}' is the library's, never sent. The relay applies to a
%% handle of one packet per message (no `{batch, N}' above 1) unless
%% `{relay, false}'; without a `relay' option, the application
%% environment's `relay' decides (default `true'; a value that is not a
%% boolean is logged and counts as `true'), and immediate mode, which asks
%% for the least latency, goes without (the hop through the guard is one
%% more scheduling round).
relay(Options, Owner) ->
    Default =
        case lists:keyfind(timeout, 1, Options) of
            {timeout, immediate} -> false;
            _ -> env_relay()
        end,
    Relay = proplists:get_value(relay, Options, Default),
    Batch = proplists:get_value(batch, Options, 1),
    Rest = [Opt || {Key, _} = Opt <- Options, Key =/= relay],
    case Relay =:= true andalso Batch =:= 1 of
        true ->
            {self(), [{relay, self()}, {batch, ?RELAY_BATCH} | [O || {K, _} = O <- Rest, K =/= batch]]};
        false ->
            {Owner, Rest}
    end.

env_relay() ->
    case application:get_env(ewpcap, relay, true) of
        B when is_boolean(B) ->
            B;
        Other ->
            logger:warning("ewpcap: relay ~tp is not a boolean: the relay stays on", [Other]),
            true
    end.

-spec guard_loop(pid(), reference(), node(), reference(), atomics:atomics_ref()) ->
    no_return().
guard_loop(Owner, OwnerMRef, Node, Ref, State) ->
    receive
        {ewpcap_batch, Ref, Dlt, Packets} ->
            relay_batch(Owner, Ref, Dlt, Packets),
            guard_loop(Owner, OwnerMRef, Node, Ref, State);
        {ewpcap_error, Ref, _} = Msg ->
            Owner ! Msg,
            guard_loop(Owner, OwnerMRef, Node, Ref, State);
        {ewpcap_eof, Ref} = Msg ->
            Owner ! Msg,
            guard_loop(Owner, OwnerMRef, Node, Ref, State);
        {sync, From, Tag} ->
            From ! {Tag, synced},
            guard_loop(Owner, OwnerMRef, Node, Ref, State);
        {'DOWN', OwnerMRef, process, Owner, _} ->
            % ewpcapd sees the link break and closes the handle
            exit(normal);
        {close, Ref} ->
            % closed by close/1; ewpcapd has already unlinked, and what it
            % sent before is relayed (it came first)
            exit(normal);
        {ewpcap_closed, Ref} ->
            % ewpcapd closed the handle for another process (an rpc
            % close, the owner's close/1), after what it sent before; a
            % close/1 after an rpc close is a second close (badarg)
            told(State),
            mark(State, ?ST_CLOSED),
            exit(normal);
        {'EXIT', Pid, _} when node(Pid) =:= Node ->
            lost(Owner, Ref, State);
        {nodedown, Node} ->
            lost(Owner, Ref, State);
        {'EXIT', _, normal} ->
            guard_loop(Owner, OwnerMRef, Node, Ref, State);
        {'EXIT', _, Reason} ->
            % an exit signal from elsewhere: behave as if not trapping
            exit(Reason);
        _ ->
            guard_loop(Owner, OwnerMRef, Node, Ref, State)
    end.

relay_batch(Owner, Ref, Dlt, [{Time, Length, Packet} | Rest]) ->
    Owner ! {ewpcap, Ref, Dlt, Time, Length, Packet},
    relay_batch(Owner, Ref, Dlt, Rest);
relay_batch(_Owner, _Ref, _Dlt, _) ->
    ok.

%% The connection to the daemon is gone, and with it the handle. A close/1
%% that raced with the loss needs no message.
-spec lost(pid(), reference(), atomics:atomics_ref()) -> no_return().
lost(Owner, Ref, State) ->
    receive
        {close, Ref} -> exit(normal)
    after 0 ->
        mark(State, ?ST_NODEDOWN),
        Owner ! {ewpcap_error, Ref, nodedown},
        exit(normal)
    end.
